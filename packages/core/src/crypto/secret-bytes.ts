// Keys live in memory that holds nothing but keys. Node's `Buffer.from(x)`,
// `Buffer.allocUnsafe(n)` and `Buffer.concat` place small buffers in one shared 8 KiB
// pool (64 KiB on Node 24), so a key copied there shares its ArrayBuffer with unrelated
// values: the envelope an encrypt returns, a driver's row, a log line's bytes. Code that
// stores, logs or transfers `value.buffer` instead of the view (a known class of driver
// and serializer bug) would carry the key with it. These slabs are never handed out whole
// and are never the backing store of anything but a secret.
import { readFileSync } from "node:fs";
import * as workerThreads from "node:worker_threads";

// A slab lives on while any key cut from it does, so a cache of N long-lived keys can pin
// up to N slabs: 8 KiB, as node's own pool on Node 20 and 22 (64 KiB on Node 24).
const SLAB_SIZE = 8 * 1024;
// Larger secrets (a PEM passphrase, say) get an ArrayBuffer of their own.
const MAX_SLAB_ITEM = 1024;

// A caller given one key (generateDataKey's materials, say) could otherwise transfer its
// `.buffer` to a worker, and the slab with it: every other key in it would be detached.
// Node marks its own pool so; Bun and Deno may not have the function.
const untransferable: (buffer: ArrayBuffer) => void =
  typeof workerThreads.markAsUntransferable === "function"
    ? (buffer) => workerThreads.markAsUntransferable(buffer)
    : () => {};

function newSlab(): Buffer {
  const slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
  untransferable(slab.buffer);
  return slab;
}

let slab = newSlab();
let used = 0;

/**
 * `length` bytes for a secret, in memory that holds only secrets. The content is
 * undefined (fill it at once); the caller zeroes it when done, as with any key.
 */
export function secretBytes(length: number): Buffer {
  if (length > MAX_SLAB_ITEM) return Buffer.allocUnsafeSlow(length);
  if (used + length > SLAB_SIZE) {
    // The old slab lives on while a key in it does; it still holds only secrets.
    slab = newSlab();
    used = 0;
  }
  const out = slab.subarray(used, used + length);
  // 8-byte steps keep each key in its own words (and keep the offsets aligned).
  used += (length + 7) & ~7;
  return out;
}

/**
 * A copy of `source` in secret-only memory (see `secretBytes`). Any binary input that
 * `Buffer.from` copied is taken (an ArrayBuffer or another view, from JavaScript callers);
 * anything else is refused, where `set` would silently make a key of zeros.
 */
export function secretCopy(source: Uint8Array): Buffer {
  const given: unknown = source;
  let bytes: Uint8Array;
  if (given instanceof Uint8Array) bytes = given;
  else if (ArrayBuffer.isView(given))
    bytes = new Uint8Array(given.buffer, given.byteOffset, given.byteLength);
  else if (given instanceof ArrayBuffer) bytes = new Uint8Array(given);
  else throw new TypeError(`a secret must be bytes, not ${typeof given}`);
  const out = secretBytes(bytes.length);
  out.set(bytes);
  return out;
}

/** Encodes secret text (hex, base64 or base64url, UTF-8) straight into secret-only memory. */
export function secretFromText(text: string, encoding: "hex" | "base64" | "utf8"): Buffer {
  const out = secretBytes(Buffer.byteLength(text, encoding));
  return out.subarray(0, out.write(text, encoding));
}

/**
 * A 32-byte key written as 64 hex characters or as base64 / base64url (43 characters and
 * an optional "="), decoded into secret-only memory; undefined for any other text.
 */
export function aesKeyFromText(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return secretFromText(trimmed, "hex");
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) return secretFromText(trimmed, "base64");
  return undefined;
}

/** A secret given as text (read as UTF-8, as `Buffer.from` reads it) or as bytes. */
export function secretFromInput(input: string | Uint8Array): Buffer {
  return typeof input === "string" ? secretFromText(input, "utf8") : secretCopy(input);
}

/**
 * A secret file's bytes in secret-only memory. node reads a small file into its shared pool;
 * that copy is zeroed before this returns, with nothing else run in between.
 */
export function secretFromFile(path: string): Buffer {
  const read = readFileSync(path);
  try {
    return secretCopy(read);
  } finally {
    read.fill(0);
  }
}
