import {
  FORMAT_VERSION,
  MAX_ENTRIES,
  MAX_KEY_REF_LENGTH,
  MAX_PROVIDER_ID_LENGTH,
  MAX_WRAPPED_KEY_LENGTH,
  OFFSET_ENTRY_COUNT,
  OFFSET_ENTRY_COUNT_SIGNED,
  SUITE_AES256GCM_HKDF_SHA256_COMMIT,
  SUITE_AES256GCM_SHA512_COMMIT,
  SUITE_SIGNED_ED25519,
} from "../constants.js";

/** Each entry's length fields: its width in bytes and the largest length §2.1 step 6 allows. */
const FIELDS = [
  [1, MAX_PROVIDER_ID_LENGTH],
  [2, MAX_KEY_REF_LENGTH],
  [2, MAX_WRAPPED_KEY_LENGTH],
] as const;

/**
 * The bytes of a v1 value's wrapped-key entries, `entryCount` included (docs/FORMAT.md §2:
 * from `entryCount` to the end of the last entry), found by following their length fields.
 * Two values hold the same entries exactly when these bytes are equal (every field is
 * length-prefixed). Not a decoder: it checks the version, the suite, the count and each
 * length against §2.1's limits, not the bytes themselves (provider id characters, UTF-8),
 * so a value this accepts may still be malformed; `decryptMany` groups values by it, and
 * each is then parsed and checked in full (§2.1) before any key is used. Undefined when
 * the bytes cannot be a v1 value.
 */
export function entryBytes(bytes: Uint8Array): Uint8Array | undefined {
  const suite = bytes[1];
  if (
    bytes[0] !== FORMAT_VERSION ||
    (suite !== SUITE_AES256GCM_HKDF_SHA256_COMMIT &&
      suite !== SUITE_SIGNED_ED25519 &&
      suite !== SUITE_AES256GCM_SHA512_COMMIT)
  ) {
    return undefined;
  }
  const start = suite === SUITE_SIGNED_ED25519 ? OFFSET_ENTRY_COUNT_SIGNED : OFFSET_ENTRY_COUNT;
  const count = bytes[start];
  if (count === undefined || count === 0 || count > MAX_ENTRIES) return undefined;
  let at = start + 1;
  for (let i = 0; i < count; i++) {
    for (const [width, max] of FIELDS) {
      if (at + width > bytes.length) return undefined;
      const length = width === 1 ? bytes[at]! : (bytes[at]! << 8) | bytes[at + 1]!;
      if (length === 0 || length > max) return undefined;
      at += width + length;
    }
  }
  return at <= bytes.length ? bytes.subarray(start, at) : undefined;
}
