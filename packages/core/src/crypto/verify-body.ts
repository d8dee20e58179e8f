import { createDecipheriv } from "node:crypto";
import { DecryptionError } from "../errors.js";
import { NONCE_LENGTH, TAG_LENGTH } from "../format/constants.js";

const NONCE = Buffer.alloc(NONCE_LENGTH);
const SLICE = 64 * 1024;

/**
 * Authenticates a body (ciphertext || tag) under `key` and `aad` without keeping the
 * plaintext: deciphers in 64 KiB slices and zeroes each one at once, so checking a
 * 1 GiB value costs 64 KiB of memory. Throws `ENVELOPE_DECRYPT_FAILED`, exactly as a
 * decrypt of the same value would.
 */
export function verifyBody(key: Uint8Array, body: Uint8Array, aad: Uint8Array): void {
  const split = body.length - TAG_LENGTH;
  const decipher = createDecipheriv("aes-256-gcm", key, NONCE, { authTagLength: TAG_LENGTH });
  decipher.setAAD(aad);
  decipher.setAuthTag(body.subarray(split));
  for (let start = 0; start < split; start += SLICE) {
    decipher.update(body.subarray(start, Math.min(start + SLICE, split))).fill(0);
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
}
