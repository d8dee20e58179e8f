import { createCipheriv, createDecipheriv } from "node:crypto";
import { DecryptionError } from "../errors.js";
import { NONCE_LENGTH, TAG_LENGTH } from "../format/constants.js";

// Each message key is derived from a fresh random 32-byte message id and encrypts exactly
// one body, so a fixed all-zero nonce never repeats under one key and need not be stored.
const NONCE = Buffer.alloc(NONCE_LENGTH);

// Large values are encrypted in slices copied straight into the output buffer: one
// allocation of the envelope's size instead of ciphertext + concat + header copies.
const SLICE = 64 * 1024;

/** AES-256-GCM encrypt of `plaintext` into `out` at `offset`: ciphertext, then the tag. */
export function sealBodyInto(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  out: Buffer,
  offset: number,
): void {
  const cipher = createCipheriv("aes-256-gcm", key, NONCE, { authTagLength: TAG_LENGTH });
  cipher.setAAD(aad);
  let at = offset;
  for (let start = 0; start < plaintext.length; start += SLICE) {
    const chunk = cipher.update(plaintext.subarray(start, start + SLICE));
    at += chunk.copy(out, at);
  }
  at += cipher.final().copy(out, at);
  cipher.getAuthTag().copy(out, at);
}

/** AES-256-GCM decrypt of ciphertext || tag. OpenSSL checks the tag in constant time. */
export function openBody(key: Uint8Array, body: Uint8Array, aad: Uint8Array): Buffer {
  const split = body.length - TAG_LENGTH;
  const decipher = createDecipheriv("aes-256-gcm", key, NONCE, { authTagLength: TAG_LENGTH });
  decipher.setAAD(aad);
  decipher.setAuthTag(body.subarray(split));
  const head = decipher.update(body.subarray(0, split));
  try {
    const tail = decipher.final();
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch (cause) {
    head.fill(0);
    throw new DecryptionError(
      "ENVELOPE_DECRYPT_FAILED",
      "Could not decrypt: authentication failed. The encryption context differs from the one used to encrypt (check table/column/id), or the stored value was altered.",
      { cause },
    );
  }
}
