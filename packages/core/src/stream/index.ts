/** The streaming format: chunked AES-256-GCM for files of any size. See docs/STREAMING.md. */
export { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, STREAM_MAGIC } from "./constants.js";
export { type DecryptStreamOptions, decryptStream } from "./decrypt.js";
export { type EncryptStreamOptions, encryptStream } from "./encrypt.js";
export { isStream, parseStreamHeader, type StreamHeader } from "./header.js";
export { inspectStream, type StreamInfo } from "./inspect.js";
export { rewrapStream } from "./rewrap.js";
