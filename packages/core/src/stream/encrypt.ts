import { randomBytes } from "node:crypto";
import { Transform } from "node:stream";
import type { EncryptOptions, Envelope } from "../client.js";
import { ConfigError } from "../errors.js";
import type { EncryptionContext } from "../format/context.js";
import { decodeEnvelope } from "../format/decode.js";
import { PURPOSE, type WithPurpose } from "../format/purpose.js";
import { ByteQueue } from "./byte-queue.js";
import { type ChunkAadBase, deriveChunkKey, sealChunk } from "./chunk-crypto.js";
import { DEFAULT_CHUNK_SIZE, MAX_CHUNKS, STREAM_KEY_LENGTH } from "./constants.js";
import { checkChunkSize, encodeStreamHeader, headerPrefix } from "./header.js";

export interface EncryptStreamOptions {
  /** Authenticated context, e.g. `{ file: "backup-2024-06-01.sql" }`. Needed again to decrypt. */
  context?: EncryptionContext;
  /** Plaintext bytes per chunk, 1024 … 16 777 216 (1 KiB … 16 MiB). Default 65 536. */
  chunkSize?: number;
}

/**
 * A Transform that encrypts a byte stream of any length in constant memory: a header
 * holding a v1 envelope that seals a fresh stream key (so the configured providers,
 * multi-wrap and rewrap all apply), then AES-256-GCM chunks. See docs/STREAMING.md.
 *
 * @example
 * await pipeline(createReadStream("db.dump"), encryptStream(envelope, { context: { file: "db.dump" } }), createWriteStream("db.dump.env"));
 */
export function encryptStream(envelope: Envelope, options: EncryptStreamOptions = {}): Transform {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  checkChunkSize(chunkSize);
  const queue = new ByteQueue();
  let key: Buffer | undefined;
  let base: ChunkAadBase | undefined;
  let index = 0;

  const seal = (self: Transform, final: boolean, plaintext: Buffer) => {
    if (index >= MAX_CHUNKS) {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        "Stream is too long: at most 2^32 chunks. Use a larger chunkSize.",
      );
    }
    self.push(sealChunk(key!, base!, index, final, plaintext));
    index++;
  };
  const wipe = () => {
    key?.fill(0);
    key = undefined;
  };

  return new Transform({
    async construct(callback) {
      const streamKey = randomBytes(STREAM_KEY_LENGTH);
      try {
        const encryptOptions: EncryptOptions<"binary"> & WithPurpose = {
          context: options.context ?? {},
          output: "binary",
          [PURPOSE]: "stream-key", // flags bit 1: `decrypt` will refuse this envelope
        };
        const keyEnvelope = await envelope.encrypt(streamKey, encryptOptions);
        const { messageId } = decodeEnvelope(keyEnvelope);
        key = deriveChunkKey(streamKey, messageId);
        base = { prefix: headerPrefix(0, chunkSize), messageId: Buffer.from(messageId) };
        this.push(encodeStreamHeader(chunkSize, keyEnvelope));
        callback();
      } catch (error) {
        callback(error as Error);
      } finally {
        streamKey.fill(0);
      }
    },
    transform(chunk: Buffer, _encoding, callback) {
      try {
        queue.push(chunk);
        // A full chunk is sealed as "more" only once a later byte proves it is not the last.
        while (queue.length > chunkSize) seal(this, false, queue.take(chunkSize));
        callback();
      } catch (error) {
        wipe();
        callback(error as Error);
      }
    },
    flush(callback) {
      try {
        seal(this, true, queue.drain());
        callback();
      } catch (error) {
        callback(error as Error);
      } finally {
        wipe();
      }
    },
    destroy(error, callback) {
      wipe();
      callback(error);
    },
  });
}
