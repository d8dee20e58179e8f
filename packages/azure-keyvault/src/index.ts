/**
 * @envelope/azure-keyvault — Azure Key Vault and Managed HSM master keys for
 * @envelope/core, on @azure/keyvault-keys and @azure/identity.
 */

export { ALGORITHMS, type WrapAlgorithm } from "./algorithm.js";
export { AzureKeyVaultServiceError } from "./errors.js";
export { providerFactory } from "./factory.js";
export { formatKeyId, type KeyId, parseKeyId } from "./key-id.js";
export type { AzureClientOptions, AzureKeyVaultOptions } from "./options.js";
export { type AzureKeyVaultProvider, azureKeyVaultProvider, PROVIDER_ID } from "./provider.js";
