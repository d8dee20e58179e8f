/** Streaming format v1 constants. docs/STREAMING.md is the normative description. */

/** "ENVS": never the first bytes of a single-shot envelope (0x01) or its text form ("ev1:"). */
export const STREAM_MAGIC = Buffer.from([0x45, 0x4e, 0x56, 0x53]);
export const STREAM_VERSION = 0x01;
/** Suite 1: AES-256-GCM chunks, HKDF-SHA256 chunk key, stream key sealed in a v1 envelope. */
export const STREAM_SUITE = 0x01;

/** magic[4] version suite flags chunkSize(u32) keyEnvelopeLength(u32). */
export const FIXED_HEADER_LENGTH = 15;

export const DEFAULT_CHUNK_SIZE = 64 * 1024;
export const MIN_CHUNK_SIZE = 1024;
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
/** A key envelope holds ≤16 entries of ≤ 2+64+2+2048+2+4096 bytes, plus a context. */
export const MAX_KEY_ENVELOPE_LENGTH = 256 * 1024;
/** Chunk indexes are u64 in the nonce; capped at 2^32 chunks (256 TiB at 64 KiB). */
export const MAX_CHUNKS = 2 ** 32;

export const CHUNK_MORE = 0x00;
export const CHUNK_FINAL = 0x01;
/** marker u8 + ciphertext length u32. */
export const CHUNK_HEADER_LENGTH = 5;
export const TAG_LENGTH = 16;
export const STREAM_KEY_LENGTH = 32;

export const CHUNK_KEY_INFO = "envelope:stream1:chunk-key";
