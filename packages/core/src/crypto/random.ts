import { randomFillSync } from "node:crypto";
import { secretBytes } from "./secret-bytes.js";

// node's randomBytes costs ~2 µs per call for 32 bytes; filling a pool and copying out
// slices costs a fraction of that on the hot path. The pool is overwritten after use.
const POOL_SIZE = 8192;
// Its own memory: node would cut 8 KiB from its shared pool on Node 24 (64 KiB there).
const pool = Buffer.allocUnsafeSlow(POOL_SIZE);
let offset = POOL_SIZE;

function take(out: Buffer): Buffer {
  const length = out.length;
  if (offset + length > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  pool.copy(out, 0, offset, offset + length);
  pool.fill(0, offset, offset + length);
  offset += length;
  return out;
}

/** `length` (≤ 256) random bytes for a key, in secret-only memory (crypto/secret-bytes.ts). */
export function randomBytesPooled(length: number): Buffer {
  return take(secretBytes(length));
}

/** `length` (≤ 256) random bytes that will be public (a message id), in ordinary memory. */
export function randomPublicBytes(length: number): Buffer {
  return take(Buffer.allocUnsafe(length));
}
