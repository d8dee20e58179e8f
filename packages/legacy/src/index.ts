/**
 * @envelope/legacy — decoders for hand-rolled legacy encryption, so `migrateTable` /
 * `envelope migrate` (and a transitional read path) can take over existing columns.
 */
export { type LegacyOptions, legacyDecoder, type StaticKeyFormat } from "./decoder.js";
export { type CbcOptions, cbcDecoder, looksLikeCbc } from "./formats/cbc.js";
export { fernetDecoder, looksLikeFernet, MAX_FERNET_TOKEN_CHARS } from "./formats/fernet.js";
export {
  deriveFernetKey,
  FERNET_KEY_BYTES,
  type Pbkdf2FernetOptions,
  parseFernetKey,
} from "./formats/fernet-key.js";
export { gcmJsonDecoder, looksLikeGcmJson } from "./formats/gcm-json.js";
export { type MixedDecoder, type MixedOptions, mixedDecoder } from "./formats/mixed.js";
export {
  looksLikePgcrypto,
  type PgcryptoOptions,
  type PgQueryable,
  pgcryptoDecoder,
} from "./formats/pgcrypto.js";
export { plaintextDecoder } from "./formats/plaintext.js";
export {
  DEFAULT_VERSION_PREFIX,
  type VersionedOptions,
  versionedDecoder,
} from "./formats/versioned.js";
export type { AwsSecretSource, SecretsManagerLike } from "./keys/aws-secrets-manager.js";
export type { KeyInput } from "./keys/key-input.js";
export { deriveFernetKeyFrom, loadAesKey, loadFernetKey } from "./keys/load-keys.js";
export {
  describeSecretSource,
  loadSecret,
  loadSecretText,
  parseSecretSpec,
  type SecretSource,
} from "./keys/secret-source.js";
export { type Env, type LegacyKeySource, loadLegacyKey } from "./keys/static-key.js";
export type { VaultKvClient, VaultKvSource } from "./keys/vault-kv.js";
export {
  RECORD_VALUE_TAGS,
  type RecordValueType,
  recordValueDecoder,
  recordValueTypeOf,
} from "./record-value.js";
export type {
  AnyLegacyDecoder,
  AsyncLegacyDecoder,
  LegacyDecoder,
  LegacyFormat,
  LegacyRow,
} from "./types.js";
