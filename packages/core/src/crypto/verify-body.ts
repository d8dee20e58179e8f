import { createDecipheriv } from "node:crypto";
import { DecryptionError } from "../errors.js";
import { FLAG_PADDED, NONCE_LENGTH, PADDING_MARKER, TAG_LENGTH } from "../format/constants.js";
import { badPadding } from "../format/padding.js";

const NONCE = Buffer.alloc(NONCE_LENGTH);
const SLICE = 64 * 1024;

/**
 * Authenticates a body (ciphertext || tag) under `key` and `aad` without keeping the
 * plaintext: deciphers in 64 KiB slices and zeroes each one at once, so checking a
 * 1 GiB value costs 64 KiB of memory. Throws `ENVELOPE_DECRYPT_FAILED`, exactly as a
 * decrypt of the same value would; with flags bit 2 (padded) also `ENVELOPE_BAD_PADDING`
 * for a padding decrypt would refuse.
 */
export function verifyBody(key: Uint8Array, body: Uint8Array, aad: Uint8Array, flags = 0): void {
  const split = body.length - TAG_LENGTH;
  const decipher = createDecipheriv("aes-256-gcm", key, NONCE, { authTagLength: TAG_LENGTH });
  decipher.setAAD(aad);
  decipher.setAuthTag(body.subarray(split));
  // The last non-zero plaintext byte, all the padding check needs (-1: none yet).
  let lastNonZero = -1;
  for (let start = 0; start < split; start += SLICE) {
    const slice = decipher.update(body.subarray(start, Math.min(start + SLICE, split)));
    for (let i = slice.length - 1; i >= 0; i--) {
      if (slice[i] !== 0) {
        lastNonZero = slice[i]!;
        break;
      }
    }
    slice.fill(0);
  }
  try {
    decipher.final().fill(0);
  } catch (cause) {
    throw new DecryptionError(
      "ENVELOPE_DECRYPT_FAILED",
      "Could not decrypt: authentication failed. The encryption context differs from the one used to encrypt (check table/column/id), or the stored value was altered.",
      { cause },
    );
  }
  // The padding rule of stripPadding: the last non-zero byte is the 0x80 marker.
  if (flags & FLAG_PADDED && lastNonZero !== PADDING_MARKER) throw badPadding();
}
