import { randomFillSync } from "node:crypto";
import { secretBytes } from "./secret-bytes.js";

// node's randomBytes costs ~2 µs per call for 32 bytes; filling a pool and copying out
// slices costs a fraction of that on the hot path. The pool is overwritten after use.
const POOL_SIZE = 8192;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let offset = POOL_SIZE;

/**
 * `length` cryptographically random bytes (≤ 256 per call) in a fresh Buffer, in
 * secret-only memory: data keys come from here.
 */
export function randomBytesPooled(length: number): Buffer {
  if (offset + length > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = secretBytes(length);
  pool.copy(out, 0, offset, offset + length);
  pool.fill(0, offset, offset + length);
  offset += length;
  return out;
}
