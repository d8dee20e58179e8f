import { Transform } from "node:stream";
import type { DecryptOptions, Envelope } from "../client.js";
import { FormatError } from "../errors.js";
import type { EncryptionContext } from "../format/context.js";
import { decodeEnvelope } from "../format/decode.js";
import { PURPOSE, type Purpose, type WithPurpose } from "../format/purpose.js";
import { ByteQueue } from "./byte-queue.js";
import { type ChunkAadBase, deriveChunkKey, openChunk } from "./chunk-crypto.js";
import {
  CHUNK_FINAL,
  CHUNK_HEADER_LENGTH,
  CHUNK_MORE,
  MAX_CHUNKS,
  STREAM_KEY_LENGTH,
  TAG_LENGTH,
} from "./constants.js";
import { headerPrefix, readStreamHeader, type StreamHeader } from "./header.js";

export interface DecryptStreamOptions {
  /** The context given to `encryptStream` (optional if the key envelope stores it). */
  context?: EncryptionContext;
  /**
   * Also accept a key envelope without the stream-key purpose flag (flags bit 1), as
   * written by @envelope/core 0.1 before the flag existed. **Weaker**: with it, any value
   * envelope that seals 32 bytes under the same context (a value an attacker who can
   * write to the database may be able to plant) is accepted as the stream key. Use it
   * only for files whose origin you trust, to read them once and re-encrypt them.
   * Default false: such a stream fails with `ENVELOPE_WRONG_PURPOSE`.
   */
  allowLegacyKeyEnvelope?: boolean;
}

/**
 * A Transform that decrypts an Envelope stream. Each chunk is released only after its
 * tag verifies; a stream cut short, reordered, spliced or with the final chunk removed
 * ends in a typed error (`FormatError` / `DecryptionError`). On error, discard what was
 * written so far (the CLI writes to a temporary file and renames it only on success).
 *
 * @example
 * await pipeline(createReadStream("db.dump.env"), decryptStream(envelope, { context: { file: "db.dump" } }), createWriteStream("db.dump"));
 */
export function decryptStream(envelope: Envelope, options: DecryptStreamOptions = {}): Transform {
  const queue = new ByteQueue();
  let header: StreamHeader | undefined;
  let key: Buffer | undefined;
  let base: ChunkAadBase | undefined;
  let index = 0;
  let done = false;

  const wipe = () => {
    key?.fill(0);
    key = undefined;
  };

  const purpose: Purpose = options.allowLegacyKeyEnvelope ? "legacy-stream-key" : "stream-key";

  // STREAMING.md "Decoding" step 3: the key envelope is fully verified (decode, purpose,
  // context, unwrap, commitment, GCM tag: FORMAT.md §7) here, before any chunk is looked at.
  const openHeader = async (): Promise<boolean> => {
    const parsed = readStreamHeader(queue);
    if (!parsed) return false;
    const keyEnvelope = Buffer.from(parsed.keyEnvelope);
    queue.skip(parsed.length);
    header = parsed;
    const decryptOptions: DecryptOptions<"bytes"> & WithPurpose = {
      ...(options.context ? { context: options.context } : {}),
      as: "bytes",
      [PURPOSE]: purpose,
    };
    const streamKey = await envelope.decrypt(keyEnvelope, decryptOptions);
    try {
      // Step 3, last check: the stream key is exactly 32 bytes.
      if (streamKey.length !== STREAM_KEY_LENGTH) {
        throw new FormatError(
          "ENVELOPE_BAD_FORMAT",
          "Malformed stream: the key envelope does not hold a 32-byte stream key.",
          {
            details: { field: "keyEnvelope" },
          },
        );
      }
      const { messageId } = decodeEnvelope(keyEnvelope);
      key = deriveChunkKey(streamKey, messageId);
      base = {
        prefix: headerPrefix(parsed.flags, parsed.chunkSize),
        messageId: Buffer.from(messageId),
      };
    } finally {
      streamKey.fill(0);
    }
    return true;
  };

  const openChunks = (self: Transform) => {
    const chunkSize = header!.chunkSize;
    while (!done && queue.length >= CHUNK_HEADER_LENGTH) {
      const head = queue.peek(CHUNK_HEADER_LENGTH);
      const marker = head[0]!;
      const length = head.readUInt32BE(1);
      // Step 4, on the 5-byte chunk header, before the chunk's body is buffered: the marker,
      // the length against chunkSize (exact unless final), at most 2^32 chunks.
      if (marker !== CHUNK_MORE && marker !== CHUNK_FINAL)
        malformed(index, `unknown chunk marker 0x${marker.toString(16)}`);
      const final = marker === CHUNK_FINAL;
      if (final ? length > chunkSize : length !== chunkSize)
        malformed(index, `chunk length ${length} does not match the chunk size ${chunkSize}`);
      if (index >= MAX_CHUNKS) malformed(index, "more than 2^32 chunks");
      const need = CHUNK_HEADER_LENGTH + length + TAG_LENGTH;
      if (queue.length < need) return;
      const sealed = queue.take(need).subarray(CHUNK_HEADER_LENGTH);
      // Step 4, once length + 16 bytes are there: released only after the tag verifies.
      self.push(openChunk(key!, base!, index, final, sealed));
      index++;
      if (final) {
        done = true;
        wipe();
      }
    }
    // Step 5: nothing after the final chunk (its tag was checked first).
    if (done && queue.length > 0) {
      throw new FormatError(
        "ENVELOPE_BAD_FORMAT",
        "Malformed stream: bytes follow the final chunk. The file was altered or two files were concatenated.",
        {
          details: { field: "trailing" },
        },
      );
    }
  };

  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      queue.push(chunk);
      const step = async () => {
        if (!header && !(await openHeader())) return;
        openChunks(this);
      };
      step().then(
        () => callback(),
        (error) => {
          wipe();
          callback(error);
        },
      );
    },
    flush(callback) {
      if (done) return callback();
      // Step 6: input ended before a final chunk verified (in the header, or after a chunk).
      wipe();
      callback(
        new FormatError(
          "ENVELOPE_BAD_FORMAT",
          header
            ? `Stream is truncated: it ends after chunk ${index - 1} without a final chunk. Discard the output written so far and restore the file from its source.`
            : "Stream is truncated: it ends inside the header.",
          { details: { field: header ? "final" : "header", chunk: index } },
        ),
      );
    },
    destroy(error, callback) {
      wipe();
      callback(error);
    },
  });
}

function malformed(index: number, problem: string): never {
  throw new FormatError("ENVELOPE_BAD_FORMAT", `Malformed stream at chunk ${index}: ${problem}.`, {
    details: { field: "chunk", chunk: index },
  });
}
