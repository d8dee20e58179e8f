/**
 * @envelope/vault — HashiCorp Vault transit master keys for @envelope/core, on node-vault:
 * datakey for new data keys, encrypt for extra wraps, decrypt, and rewrap inside Vault.
 */

export type { VaultAuth } from "./auth.js";
export {
  createNodeVaultClient,
  type VaultClient,
  type VaultRequestOptions,
  type VaultTlsOptions,
} from "./client.js";
export type { ContextMapping } from "./context.js";
export { optionsFromUri, providerFactory } from "./factory.js";
export { formatKeyRef, PROVIDER_ID, parseKeyRef, type VaultKeyRef } from "./key-ref.js";
export {
  type VaultKeyInfo,
  type VaultTransitOptions,
  type VaultTransitProvider,
  vaultTransitProvider,
} from "./provider.js";
