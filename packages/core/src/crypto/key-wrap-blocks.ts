import { createCipheriv, createDecipheriv, timingSafeEqual } from "node:crypto";
import { secretCopy } from "./secret-bytes.js";

// RFC 3394 AES Key Wrap built from single AES-256 blocks, for runtimes whose node:crypto
// has no AES-KW cipher (Bun, on BoringSSL). Byte-for-byte the same output as OpenSSL's
// id-aes256-wrap; key-wrap.ts uses it only where that cipher is missing.

const KW_IV = Buffer.from("A6A6A6A6A6A6A6A6", "hex");
// Far above any data key, and keeps the step counter t = 6n within 32 bits.
const MAX_KEY_BYTES = 4096;

/** RFC 3394 §2.2.1 (index form): wraps `key` (16..4096 bytes, a multiple of 8) under `kek`. */
export function blockKeyWrap(kek: Uint8Array, key: Uint8Array): Buffer {
  if (key.length < 16 || key.length > MAX_KEY_BYTES || key.length % 8 !== 0) {
    throw new RangeError("AES key wrap: the key must be 16 to 4096 bytes, a multiple of 8.");
  }
  const n = key.length / 8;
  const cipher = createCipheriv("aes-256-ecb", kek, null).setAutoPadding(false);
  const out = Buffer.alloc(8 + key.length); // A || R[1..n], filled in place
  KW_IV.copy(out, 0);
  out.set(key, 8);
  const block = Buffer.alloc(16);
  try {
    for (let j = 0; j <= 5; j++) {
      for (let i = 1; i <= n; i++) {
        out.copy(block, 0, 0, 8);
        out.copy(block, 8, i * 8, i * 8 + 8);
        const b = cipher.update(block);
        b.copy(out, 0, 0, 8);
        xorCounter(out, n * j + i);
        b.copy(out, i * 8, 8, 16);
        b.fill(0);
      }
    }
    cipher.final();
    return out;
  } catch (error) {
    out.fill(0); // holds part of the key until the last round
    throw error;
  } finally {
    block.fill(0);
  }
}

/**
 * RFC 3394 §2.2.2: unwraps, then checks the integrity value. Throws (no key bytes in the
 * message) when the KEK is wrong or the bytes were altered; callers map it to a typed error.
 */
export function blockKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Buffer {
  if (wrapped.length < 24 || wrapped.length > MAX_KEY_BYTES + 8 || wrapped.length % 8 !== 0) {
    throw new RangeError(
      "AES key unwrap: the wrapped key must be 24 to 4104 bytes, a multiple of 8.",
    );
  }
  const n = wrapped.length / 8 - 1;
  const decipher = createDecipheriv("aes-256-ecb", kek, null).setAutoPadding(false);
  const work = secretCopy(wrapped); // A || R[1..n], rewritten in place
  const block = Buffer.alloc(16);
  try {
    for (let j = 5; j >= 0; j--) {
      for (let i = n; i >= 1; i--) {
        xorCounter(work, n * j + i);
        work.copy(block, 0, 0, 8);
        work.copy(block, 8, i * 8, i * 8 + 8);
        const b = decipher.update(block);
        b.copy(work, 0, 0, 8);
        b.copy(work, i * 8, 8, 16);
        b.fill(0);
      }
    }
    decipher.final();
    if (!timingSafeEqual(work.subarray(0, 8), KW_IV)) {
      throw new Error("AES key unwrap: integrity check failed (wrong key or altered bytes).");
    }
    return secretCopy(work.subarray(8));
  } finally {
    block.fill(0);
    work.fill(0);
  }
}

/** A ^= t, with t as a 64-bit big-endian integer (t < 2^32 here). */
function xorCounter(a: Buffer, t: number): void {
  a.writeUInt32BE((a.readUInt32BE(4) ^ t) >>> 0, 4);
}
