import { createCipheriv, createDecipheriv } from "node:crypto";
import { ConfigError, DecryptionError } from "../errors.js";
import { blockKeyUnwrap, blockKeyWrap } from "./key-wrap-blocks.js";
import { secretBytes } from "./secret-bytes.js";

// RFC 3394 default initial value, as node's id-aes256-wrap expects. AES-KW is
// deterministic and needs no nonce: one key-wrapping key can wrap any number of keys.
const KW_IV = Buffer.from("A6A6A6A6A6A6A6A6", "hex");
// As key-wrap-blocks.ts: far above any data key; both implementations refuse the same sizes.
const MAX_KEY_BYTES = 4096;

// OpenSSL's AES-KW under the first name this runtime's node:crypto accepts: Node knows
// both, Deno only the alias, Bun (BoringSSL) neither — there the same algorithm runs over
// single AES blocks (key-wrap-blocks.ts). Probed once, on first use.
let wrapCipher: string | null | undefined;

function nativeWrapCipher(): string | null {
  if (wrapCipher === undefined) {
    wrapCipher = null;
    for (const name of ["id-aes256-wrap", "aes256-wrap"]) {
      try {
        createCipheriv(name, Buffer.alloc(32), KW_IV);
        wrapCipher = name;
        break;
      } catch {
        // not in this runtime's crypto; try the next name
      }
    }
  }
  return wrapCipher;
}

/**
 * AES-256 Key Wrap (RFC 3394) of `key` under `kek`: 8 bytes longer than `key`.
 * Throws `ENVELOPE_BAD_KEY` for a `kek` that is not 32 bytes and `ENVELOPE_BAD_INPUT`
 * for a `key` AES-KW cannot carry (not 16 to 4096 bytes in steps of 8).
 *
 * @example
 * const wrapped = aesKeyWrap(kek, dataKey); // 40 bytes for a 32-byte data key
 */
export function aesKeyWrap(kek: Uint8Array, key: Uint8Array): Buffer {
  checkKek(kek);
  if (key.length < 16 || key.length > MAX_KEY_BYTES || key.length % 8 !== 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `AES key wrap: the key to wrap must be 16 to ${MAX_KEY_BYTES} bytes, a multiple of 8, not ${key.length}.`,
    );
  }
  const name = nativeWrapCipher();
  if (!name) return blockKeyWrap(kek, key);
  const cipher = createCipheriv(name, kek, KW_IV);
  return Buffer.concat([cipher.update(key), cipher.final()]);
}

/**
 * AES-256 Key Unwrap (RFC 3394). Throws `ENVELOPE_UNWRAP_FAILED` when the integrity check
 * fails (wrong key-wrapping key, or altered bytes) or the length cannot be a wrapped key,
 * and `ENVELOPE_BAD_KEY` for a `kek` that is not 32 bytes. Providers rethrow it with
 * their own message (which key, which provider).
 */
export function aesKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Buffer {
  checkKek(kek);
  try {
    // OpenSSL "unwraps" an empty input to an empty key without an error: refuse every
    // length that cannot be a wrapped key before it gets there.
    if (wrapped.length < 24 || wrapped.length > MAX_KEY_BYTES + 8 || wrapped.length % 8 !== 0) {
      throw new RangeError(`not a wrapped key length: ${wrapped.length} bytes`);
    }
    const name = nativeWrapCipher();
    if (!name) return blockKeyUnwrap(kek, wrapped);
    const decipher = createDecipheriv(name, kek, KW_IV);
    // update's output has an ArrayBuffer of its own; Buffer.concat would copy the key
    // into node's shared pool (crypto/secret-bytes.ts).
    const key = decipher.update(wrapped);
    let tail: Buffer;
    try {
      tail = decipher.final();
    } catch (error) {
      key.fill(0);
      throw error;
    }
    if (tail.length === 0) return key; // OpenSSL's AES-KW gives everything in update
    const joined = secretBytes(key.length + tail.length);
    joined.set(key);
    joined.set(tail, key.length);
    key.fill(0);
    tail.fill(0);
    return joined;
  } catch (cause) {
    throw new DecryptionError(
      "ENVELOPE_UNWRAP_FAILED",
      "AES key unwrap failed: the wrapped key was altered or wrapped under another key-wrapping key.",
      { cause },
    );
  }
}

// AES-256 only, on every runtime: Deno's aes256-wrap takes a 16- or 24-byte key too and
// then silently runs AES-128/192-KW, where Node and the block version refuse it.
function checkKek(kek: Uint8Array): void {
  if (kek.length !== 32) {
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      `AES key wrap: the key-wrapping key must be 32 bytes (AES-256), not ${kek.length}.`,
    );
  }
}
