import {
  FORMAT_VERSION,
  MAX_ENTRIES,
  OFFSET_ENTRY_COUNT,
  OFFSET_ENTRY_COUNT_SIGNED,
  SUITE_SIGNED_ED25519,
} from "../constants.js";

/**
 * The bytes of a v1 value's wrapped-key entries, `entryCount` included (docs/FORMAT.md §2:
 * from `entryCount` to the end of the last entry), found by following their length fields.
 * Two values hold the same entries exactly when these bytes are equal (every field is
 * length-prefixed). Not a decoder: only the bounds are checked, so a value this accepts may
 * still be malformed; `decryptMany` groups values by it, and each is then parsed and checked
 * in full (§2.1) before any key is used. Undefined when the bytes cannot be a v1 value.
 */
export function entryBytes(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes[0] !== FORMAT_VERSION) return undefined;
  const start = bytes[1] === SUITE_SIGNED_ED25519 ? OFFSET_ENTRY_COUNT_SIGNED : OFFSET_ENTRY_COUNT;
  const count = bytes[start];
  if (count === undefined || count === 0 || count > MAX_ENTRIES) return undefined;
  let at = start + 1;
  for (let i = 0; i < count; i++) {
    // providerIdLength (u8), keyRefLength (u16), wrappedLength (u16), each before its bytes.
    if (at >= bytes.length) return undefined;
    at += 1 + bytes[at]!;
    for (let field = 0; field < 2; field++) {
      if (at + 2 > bytes.length) return undefined;
      at += 2 + ((bytes[at]! << 8) | bytes[at + 1]!);
    }
  }
  return at <= bytes.length ? bytes.subarray(start, at) : undefined;
}
