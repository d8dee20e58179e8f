/**
 * @envelope/core/internal — helpers the sibling packages share. Not part of the public
 * API: they may change in any release.
 */

export {
  type LeaveReason,
  type SecretEntry,
  SecretKeyCache,
  type SecretKeyCacheCounters,
  type SecretKeyCacheOptions,
} from "./cache/secret-key-cache.js";
export { mapLimit } from "./concurrency.js";
export { padRule } from "./config/padding.js";
export { redactSecrets } from "./config/uri.js";
export {
  aesKeyFromText,
  secretBytes,
  secretCopy,
  secretFromFile,
  secretFromInput,
  secretFromText,
} from "./crypto/secret-bytes.js";
export { MAX_PRINTABLE_LENGTH, printable } from "./format/printable.js";
export {
  checkKeyFileMode,
  KEY_FILE_WARNING_CODE,
  type KeyFileCheck,
  STRICT_KEY_FILES_ENV,
  strictKeyFiles,
} from "./providers/key-file.js";
