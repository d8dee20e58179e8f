import { createCipheriv, createDecipheriv, type DecipherGCM } from "node:crypto";
import { DecryptionError } from "../errors.js";
import { NONCE_LENGTH, TAG_LENGTH } from "../format/constants.js";
import { IN_PLACE_MIN, takeDecodedHere } from "../format/decoded-here.js";

// Each message key is derived from a fresh random 32-byte message id and encrypts exactly
// one body, so a fixed all-zero nonce never repeats under one key and need not be stored.
const NONCE = Buffer.alloc(NONCE_LENGTH);

// Large values are encrypted in slices copied straight into the output buffer: one
// allocation of the envelope's size instead of ciphertext + concat + header copies.
const SLICE = 64 * 1024;

/**
 * AES-256-GCM encrypt of `plaintext || tail` into `out` at `offset`: ciphertext, then the
 * tag. `tail` is the length padding (docs/FORMAT.md §2.3), fed to GCM after the value so
 * the value is never copied to be padded.
 */
export function sealBodyInto(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  out: Buffer,
  offset: number,
  tail?: Uint8Array,
): void {
  const cipher = createCipheriv("aes-256-gcm", key, NONCE, { authTagLength: TAG_LENGTH });
  cipher.setAAD(aad);
  let at = offset;
  for (let start = 0; start < plaintext.length; start += SLICE) {
    const chunk = cipher.update(plaintext.subarray(start, start + SLICE));
    at += chunk.copy(out, at);
  }
  if (tail && tail.length > 0) at += cipher.update(tail).copy(out, at);
  at += cipher.final().copy(out, at);
  cipher.getAuthTag().copy(out, at);
}

/** AES-256-GCM decrypt of ciphertext || tag. OpenSSL checks the tag in constant time. */
export function openBody(key: Uint8Array, body: Uint8Array, aad: Uint8Array): Buffer {
  const split = body.length - TAG_LENGTH;
  const decipher = createDecipheriv("aes-256-gcm", key, NONCE, { authTagLength: TAG_LENGTH });
  decipher.setAAD(aad);
  decipher.setAuthTag(body.subarray(split));
  if (split >= IN_PLACE_MIN && takeDecodedHere(body.buffer)) {
    return openInPlace(decipher, body, split);
  }
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

/**
 * Deciphers a body into its own bytes, 64 KiB at a time (GCM outputs exactly as many
 * bytes as it is given), and returns a view of them. On a bad tag the unauthenticated
 * plaintext is zeroed before the error is thrown.
 */
function openInPlace(decipher: DecipherGCM, body: Uint8Array, split: number): Buffer {
  const out = Buffer.from(body.buffer, body.byteOffset, split);
  for (let start = 0; start < split; start += SLICE) {
    const chunk = decipher.update(out.subarray(start, Math.min(start + SLICE, split)));
    chunk.copy(out, start);
    chunk.fill(0);
  }
  try {
    decipher.final();
    return out;
  } catch (cause) {
    out.fill(0);
    throw new DecryptionError(
      "ENVELOPE_DECRYPT_FAILED",
      "Could not decrypt: authentication failed. The encryption context differs from the one used to encrypt (check table/column/id), or the stored value was altered.",
      { cause },
    );
  }
}
