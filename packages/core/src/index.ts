/**
 * @envelope/core — envelope encryption with per-record AES-256-GCM data keys wrapped by
 * a master key chosen by configuration. Imports no cloud SDK.
 */

export type { AuditEvent, AuditHook } from "./audit.js";
export type { BulkOptions, BulkResult, DecryptManyItem, EncryptManyItem } from "./bulk.js";
export type { PlaintextInput } from "./bytes.js";
export type { DataKeyReuseOptions } from "./cache/data-key-cache.js";
export {
  type RememberedMessageKey,
  UnwrapCache,
  type UnwrapCacheOptions,
  type UnwrapCacheStats,
} from "./cache/unwrap-cache.js";
export {
  type DataKeyMaterials,
  type DecryptOptions,
  type EncryptOptions,
  Envelope,
  type EnvelopeOptions,
  type RewrapOptions,
} from "./client.js";
export { configFromEnv, ENV_VARS, envelopeFromEnv } from "./config/env.js";
export { type PadOption, PII_PADDING } from "./config/padding.js";
export { createEnvelope, resolveKey } from "./config/parse.js";
export type { EnvelopeConfig, KeySpec, ProviderConfig } from "./config/schema.js";
export type { WriterSuite } from "./config/suite.js";
export { redactUri } from "./config/uri.js";
export { generateSigningKeyPair, type SigningKeyPair } from "./crypto/ed25519.js";
export { aesKeyUnwrap, aesKeyWrap } from "./crypto/key-wrap.js";
export type {
  SigningKeyInput,
  SigningOptions,
  TrustedSignerInput,
} from "./crypto/signing-keys.js";
export {
  ConfigError,
  DecryptionError,
  EnvelopeError,
  type EnvelopeErrorOptions,
  type ErrorCode,
  type ErrorDetails,
  FormatError,
  needs,
  ProviderError,
} from "./errors.js";
export {
  DATA_KEY_LENGTH,
  FORMAT_VERSION,
  MAX_ENTRIES,
  MAX_KEY_REF_LENGTH,
  MAX_WRAPPED_KEY_LENGTH,
  SUITE_AES256GCM_HKDF_SHA256_COMMIT,
  SUITE_AES256GCM_SHA512_COMMIT,
  SUITE_SIGNED_ED25519,
  TEXT_PREFIX,
} from "./format/constants.js";
export { decodeContext, type EncryptionContext, encodeContext } from "./format/context.js";
export { decodeEnvelope } from "./format/decode.js";
export { encodeEnvelope } from "./format/encode.js";
export type { EnvelopeParts, WrappedKey } from "./format/envelope.js";
export { type EnvelopeInfo, inspectEnvelope, type Sealed } from "./format/parse.js";
export { fromText, isTextForm, toText } from "./format/text.js";
export {
  bindsKmsContext,
  cachesUnwrap,
  delegatesReadiness,
  kmsContextKeyOf,
  providerCapabilities,
  supportsDataKeyGeneration,
  supportsNativeRewrap,
  supportsRefresh,
  unwrapsLocally,
} from "./providers/capabilities.js";
export {
  defineProviderFactory,
  type ProviderFactoryDefinition,
  parseUriQuery,
  type UriOptionType,
  type UriOptionValue,
} from "./providers/define-factory.js";
export {
  type AesKeyInput,
  type LocalAesOptions,
  localAesFactory,
  localAesProvider,
} from "./providers/local-aes.js";
export {
  isBuiltInScheme,
  knownSchemes,
  type RegisterProviderOptions,
  registerProvider,
} from "./providers/registry.js";
export {
  checkRetryOptions,
  MAX_RETRY_AFTER_MS,
  MAX_RETRY_ATTEMPTS,
  parseRetryAfter,
  providerError,
  type RetryOptions,
  type RetryTarget,
  withRetry,
} from "./providers/retry.js";
export type {
  DataKeyGeneration,
  GeneratedDataKey,
  KeyProvider,
  KeyRefresh,
  KeyRequest,
  KmsContextBinding,
  LocalUnwrap,
  NativeRewrap,
  ProviderFactory,
  ReadinessDelegation,
  ReadinessTargets,
} from "./providers/types.js";
export {
  type ProviderReadiness,
  READINESS_CONTEXT,
  type ReadinessOptions,
  type ReadinessReport,
  type ReadinessStatus,
  type ReadinessStep,
} from "./readiness.js";
export {
  DEFAULT_CHUNK_SIZE,
  type DecryptStreamOptions,
  decryptStream,
  type EncryptStreamOptions,
  encryptStream,
  inspectStream,
  isStream,
  MAX_CHUNK_SIZE,
  MIN_CHUNK_SIZE,
  parseStreamHeader,
  rewrapStream,
  STREAM_MAGIC,
  type StreamHeader,
  type StreamInfo,
} from "./stream/index.js";
