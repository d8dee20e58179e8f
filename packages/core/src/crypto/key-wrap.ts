import { createCipheriv, createDecipheriv } from "node:crypto";

// RFC 3394 default initial value, as node's id-aes256-wrap expects. AES-KW is
// deterministic and needs no nonce: one key-wrapping key can wrap any number of keys.
const KW_IV = Buffer.from("A6A6A6A6A6A6A6A6", "hex");

/**
 * AES-256 Key Wrap (RFC 3394) of `key` under `kek`: 8 bytes longer than `key`.
 *
 * @example
 * const wrapped = aesKeyWrap(kek, dataKey); // 40 bytes for a 32-byte data key
 */
export function aesKeyWrap(kek: Uint8Array, key: Uint8Array): Buffer {
  const cipher = createCipheriv("id-aes256-wrap", kek, KW_IV);
  return Buffer.concat([cipher.update(key), cipher.final()]);
}

/**
 * AES-256 Key Unwrap (RFC 3394). Throws OpenSSL's error when the integrity check fails
 * (wrong key-wrapping key, or altered bytes); callers turn it into their typed error.
 */
export function aesKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Buffer {
  const decipher = createDecipheriv("id-aes256-wrap", kek, KW_IV);
  return Buffer.concat([decipher.update(wrapped), decipher.final()]);
}
