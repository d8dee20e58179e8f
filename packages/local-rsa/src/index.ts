/**
 * @envelope/local-rsa — local RSA-OAEP-SHA256 master keys for @envelope/core, from PEM
 * text, files, directories (Docker/Kubernetes secrets) or env vars. Nothing leaves the
 * process.
 */

export {
  ALLOWED_MODULUS_LENGTHS,
  DEFAULT_MODULUS_LENGTH,
  type ModulusLength,
  PROVIDER_ID,
} from "./constants.js";
export { providerFactory } from "./factory.js";
export { type GeneratedKeyPair, type GenerateKeyPairOptions, generateKeyPair } from "./generate.js";
export { rsaKeyRef } from "./key-ref.js";
export { MAX_THREADS, type RsaThreadStats, type RsaThreads, THREADS_ENV } from "./pool.js";
export {
  type LocalRsaOptions,
  type LocalRsaProvider,
  localRsaProvider,
  type RsaKeyInfo,
} from "./provider.js";
export type { RsaKeySource } from "./sources.js";
export { parseLocalRsaUri, uriThreads } from "./uri.js";
