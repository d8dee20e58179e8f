import { Transform } from "node:stream";
import type { Envelope, RewrapOptions } from "../client.js";
import { FormatError } from "../errors.js";
import { ByteQueue } from "./byte-queue.js";
import { encodeStreamHeader, readStreamHeader } from "./header.js";

/**
 * A Transform that rewraps an Envelope stream: only the header's key envelope changes
 * (re-protected under `to`); every chunk passes through byte for byte, so a multi-GB
 * backup is re-keyed at disk speed with one or two KMS calls.
 *
 * @example
 * await pipeline(createReadStream("a.env"), rewrapStream(envelope, { to: newKey }), createWriteStream("a.env.tmp"));
 */
export function rewrapStream(envelope: Envelope, options: RewrapOptions): Transform {
  const queue = new ByteQueue();
  let passing = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (passing) return callback(null, chunk);
      queue.push(chunk);
      const header = (() => {
        try {
          return readStreamHeader(queue);
        } catch (error) {
          callback(error as Error);
          return null;
        }
      })();
      if (header === null) return;
      if (header === undefined) return callback();
      const keyEnvelope = Buffer.from(header.keyEnvelope);
      envelope.rewrap(keyEnvelope, options).then(
        (next) => {
          queue.skip(header.length);
          passing = true;
          this.push(encodeStreamHeader(header.chunkSize, next));
          callback(null, queue.drain());
        },
        (error) => callback(error),
      );
    },
    flush(callback) {
      if (passing) return callback();
      callback(
        new FormatError("ENVELOPE_BAD_FORMAT", "Stream is truncated: it ends inside the header.", {
          details: { field: "header" },
        }),
      );
    },
  });
}
