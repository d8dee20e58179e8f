import { FormatError } from "../errors.js";
import { Reader, Writer } from "../format/reader.js";
import type { ByteQueue } from "./byte-queue.js";
import {
  FIXED_HEADER_LENGTH,
  MAX_CHUNK_SIZE,
  MAX_KEY_ENVELOPE_LENGTH,
  MIN_CHUNK_SIZE,
  STREAM_MAGIC,
  STREAM_SUITE,
  STREAM_VERSION,
} from "./constants.js";

/** magic[4] version suite flags chunkSize(u32): the part of the header every chunk's AAD repeats. */
const PREFIX_LENGTH = 11;

/** The parsed stream header. `keyEnvelope` is a format-v1 envelope sealing the stream key. */
export interface StreamHeader {
  readonly version: number;
  readonly suite: number;
  readonly flags: number;
  readonly chunkSize: number;
  /** Binary v1 envelope whose plaintext is the 32-byte stream key. Rewrap replaces only this. */
  readonly keyEnvelope: Uint8Array;
  /** Bytes the header occupies at the start of the stream. */
  readonly length: number;
}

/** True when `bytes` begins with the streaming magic ("ENVS"). */
export function isStream(bytes: Uint8Array): boolean {
  return (
    bytes.length >= STREAM_MAGIC.length &&
    STREAM_MAGIC.equals(bytes.subarray(0, STREAM_MAGIC.length))
  );
}

/** The 11 bytes every chunk's AAD starts with: magic, version, suite, flags, chunk size. */
export function headerPrefix(flags: number, chunkSize: number): Buffer {
  const w = new Writer(PREFIX_LENGTH);
  writePrefix(w, flags, chunkSize);
  return w.finish();
}

/** Serializes the header: prefix, u32 key-envelope length, key envelope (STREAMING.md "Layout"). */
export function encodeStreamHeader(chunkSize: number, keyEnvelope: Uint8Array): Buffer {
  checkChunkSize(chunkSize);
  const w = new Writer(FIXED_HEADER_LENGTH + keyEnvelope.length);
  writePrefix(w, 0, chunkSize);
  w.u32(keyEnvelope.length);
  w.put(keyEnvelope);
  return w.finish();
}

function writePrefix(w: Writer, flags: number, chunkSize: number): void {
  w.put(STREAM_MAGIC);
  w.u8(STREAM_VERSION);
  w.u8(STREAM_SUITE);
  w.u8(flags);
  w.u32(chunkSize);
}

/**
 * Parses a header from the first bytes of a stream. Returns `undefined` while more bytes
 * are needed (never more than 15 + 256 KiB); throws `FormatError` for anything malformed.
 * Checks in the order of docs/STREAMING.md "Decoding", steps 1 and 2; the key envelope
 * (step 3) is decoded by the caller.
 *
 * @example
 * const header = parseStreamHeader(firstBytes); // undefined → read more
 */
export function parseStreamHeader(bytes: Uint8Array): StreamHeader | undefined {
  // Step 1: the magic, on as many of its bytes as have arrived.
  const magicBytes = Math.min(bytes.length, STREAM_MAGIC.length);
  if (!STREAM_MAGIC.subarray(0, magicBytes).equals(bytes.subarray(0, magicBytes))) {
    throw new FormatError(
      "ENVELOPE_BAD_FORMAT",
      'Not an Envelope stream: it must start with "ENVS". Single values use `decrypt`; streams come from `encryptStream` / `envelope encrypt`.',
      { details: { field: "magic" } },
    );
  }
  // Step 2: the fixed header, field by field, once all 15 bytes are there.
  if (bytes.length < FIXED_HEADER_LENGTH) return undefined;
  const r = new Reader(bytes);
  r.bytesOf(STREAM_MAGIC.length, "magic");
  // Step 2, field by field: version 0x01 …
  const version = r.u8("version");
  if (version !== STREAM_VERSION) {
    throw new FormatError(
      "ENVELOPE_UNSUPPORTED_VERSION",
      `Unsupported stream format version ${version}; this library reads version ${STREAM_VERSION}. Upgrade @envelope/core.`,
      { details: { field: "version", version } },
    );
  }
  // … suite 0x01 …
  const suite = r.u8("suite");
  if (suite !== STREAM_SUITE) {
    throw new FormatError(
      "ENVELOPE_UNSUPPORTED_SUITE",
      `Unsupported stream suite ${suite}; this library knows suite ${STREAM_SUITE}. Upgrade @envelope/core.`,
      { details: { field: "suite", suite } },
    );
  }
  // … flags 0x00 (no stream flags are defined; the key envelope has its own flags) …
  const flags = r.u8("flags");
  if (flags !== 0) bad("flags", `unknown flag bits 0x${flags.toString(16)}`);
  // … chunkSize 1024 … 16 777 216 …
  const chunkSize = r.u32("chunkSize");
  checkChunkSize(chunkSize);
  // … keyEnvelopeLength 1 … 262 144, before any of the key envelope is awaited or buffered.
  const envelopeLength = r.u32("keyEnvelopeLength");
  if (envelopeLength === 0 || envelopeLength > MAX_KEY_ENVELOPE_LENGTH) {
    throw new FormatError(
      "ENVELOPE_LIMIT_EXCEEDED",
      `Malformed stream: key envelope length ${envelopeLength} is outside 1 … ${MAX_KEY_ENVELOPE_LENGTH}.`,
      { details: { field: "keyEnvelopeLength" } },
    );
  }
  // Step 3 begins once all of it has arrived: the caller decodes and opens the key envelope.
  if (r.remaining < envelopeLength) return undefined;
  const keyEnvelope = r.bytesOf(envelopeLength, "keyEnvelope");
  return { version, suite, flags, chunkSize, keyEnvelope, length: r.position };
}

/**
 * The header at the front of `queue`, once all of it has arrived; `undefined` until then.
 * Each call copies at most the 15 fixed bytes until the whole header is there, and then
 * the header once, so collecting a header from many small writes is linear in its size
 * (peeking everything queued on each write was quadratic). The fixed fields are checked
 * as soon as their bytes arrive. The caller skips `header.length` bytes afterwards.
 */
export function readStreamHeader(queue: ByteQueue): StreamHeader | undefined {
  const fixed = queue.peek(Math.min(queue.length, FIXED_HEADER_LENGTH));
  // Checks magic … keyEnvelopeLength; never complete at 15 bytes (the key envelope is ≥ 1).
  parseStreamHeader(fixed);
  if (fixed.length < FIXED_HEADER_LENGTH) return undefined;
  const length =
    FIXED_HEADER_LENGTH + new Reader(fixed.subarray(PREFIX_LENGTH)).u32("keyEnvelopeLength");
  if (queue.length < length) return undefined;
  return parseStreamHeader(queue.peek(length));
}

/** STREAMING.md "Layout" / "Decoding" step 2: chunkSize 1024 … 16 777 216 (encoder too). */
export function checkChunkSize(chunkSize: number): void {
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new FormatError(
      "ENVELOPE_LIMIT_EXCEEDED",
      `Stream chunk size ${chunkSize} is outside ${MIN_CHUNK_SIZE} … ${MAX_CHUNK_SIZE} bytes.`,
      { details: { field: "chunkSize" } },
    );
  }
}

function bad(field: string, problem: string): never {
  throw new FormatError(
    "ENVELOPE_BAD_FORMAT",
    `Malformed stream: field "${field}" is invalid (${problem}).`,
    {
      details: { field },
    },
  );
}
