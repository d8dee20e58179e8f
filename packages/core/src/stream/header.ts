import { FormatError } from "../errors.js";
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
  const out = Buffer.alloc(11);
  STREAM_MAGIC.copy(out, 0);
  out[4] = STREAM_VERSION;
  out[5] = STREAM_SUITE;
  out[6] = flags;
  out.writeUInt32BE(chunkSize, 7);
  return out;
}

/** Serializes the header: prefix, u32 key-envelope length, key envelope. */
export function encodeStreamHeader(chunkSize: number, keyEnvelope: Uint8Array): Buffer {
  checkChunkSize(chunkSize);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(keyEnvelope.length, 0);
  return Buffer.concat([headerPrefix(0, chunkSize), length, keyEnvelope]);
}

/**
 * Parses a header from the first bytes of a stream. Returns `undefined` while more bytes
 * are needed (never more than 15 + 256 KiB); throws `FormatError` for anything malformed.
 *
 * @example
 * const header = parseStreamHeader(firstBytes); // undefined → read more
 */
export function parseStreamHeader(bytes: Uint8Array): StreamHeader | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const magicBytes = Math.min(b.length, STREAM_MAGIC.length);
  if (!STREAM_MAGIC.subarray(0, magicBytes).equals(b.subarray(0, magicBytes))) {
    throw new FormatError(
      "ENVELOPE_BAD_FORMAT",
      'Not an Envelope stream: it must start with "ENVS". Single values use `decrypt`; streams come from `encryptStream` / `envelope encrypt`.',
      { details: { field: "magic" } },
    );
  }
  if (b.length < FIXED_HEADER_LENGTH) return undefined;
  const version = b[4]!;
  if (version !== STREAM_VERSION) {
    throw new FormatError(
      "ENVELOPE_UNSUPPORTED_VERSION",
      `Unsupported stream format version ${version}; this library reads version ${STREAM_VERSION}. Upgrade @envelope/core.`,
      { details: { field: "version", version } },
    );
  }
  const suite = b[5]!;
  if (suite !== STREAM_SUITE) {
    throw new FormatError(
      "ENVELOPE_UNSUPPORTED_SUITE",
      `Unsupported stream suite ${suite}; this library knows suite ${STREAM_SUITE}. Upgrade @envelope/core.`,
      { details: { field: "suite", suite } },
    );
  }
  const flags = b[6]!;
  if (flags !== 0) bad("flags", `unknown flag bits 0x${flags.toString(16)}`);
  const chunkSize = b.readUInt32BE(7);
  checkChunkSize(chunkSize);
  const envelopeLength = b.readUInt32BE(11);
  if (envelopeLength === 0 || envelopeLength > MAX_KEY_ENVELOPE_LENGTH) {
    throw new FormatError(
      "ENVELOPE_LIMIT_EXCEEDED",
      `Malformed stream: key envelope length ${envelopeLength} is outside 1 … ${MAX_KEY_ENVELOPE_LENGTH}.`,
      { details: { field: "keyEnvelopeLength" } },
    );
  }
  const length = FIXED_HEADER_LENGTH + envelopeLength;
  if (b.length < length) return undefined;
  return {
    version,
    suite,
    flags,
    chunkSize,
    keyEnvelope: b.subarray(FIXED_HEADER_LENGTH, length),
    length,
  };
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
  const length = FIXED_HEADER_LENGTH + fixed.readUInt32BE(11);
  if (queue.length < length) return undefined;
  return parseStreamHeader(queue.peek(length));
}

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
