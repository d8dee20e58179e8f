// Streams (node:stream Transforms): a multi-chunk file round trip, rewrap of the stream key
// envelope, and a truncated stream failing with a typed error.
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  decryptStream,
  Envelope,
  encryptStream,
  inspectStream,
  localAesProvider,
  MIN_CHUNK_SIZE,
  rewrapStream,
} from "@envelope/core";
import { check, rejectsWith, sameBytes } from "../assert.mjs";

const context = { file: "export.csv" };

/** Pipes `input` (a Buffer) through `transform` and collects the output. */
async function through(input, transform) {
  const out = [];
  await pipeline(Readable.from(slices(input, 7_777)), transform, async (source) => {
    for await (const chunk of source) out.push(chunk);
  });
  return Buffer.concat(out);
}

function* slices(buffer, size) {
  for (let i = 0; i < buffer.length; i += size) yield buffer.subarray(i, i + size);
}

async function streams() {
  const oldKey = localAesProvider({ keys: randomBytes(32) });
  const newKey = localAesProvider({ keys: randomBytes(32) });
  const writer = new Envelope({ encrypt: oldKey });
  const file = randomBytes(5 * MIN_CHUNK_SIZE + 123);
  const sealed = await through(file, encryptStream(writer, { context, chunkSize: MIN_CHUNK_SIZE }));
  const info = inspectStream(sealed);
  check(info.chunkSize === MIN_CHUNK_SIZE, "inspectStream reads the header");
  sameBytes(await through(sealed, decryptStream(writer, { context })), file, "stream round trip");

  const rotated = new Envelope({ encrypt: newKey, decrypt: [oldKey] });
  const moved = await through(sealed, rewrapStream(rotated, { context }));
  const newOnly = new Envelope({ encrypt: newKey });
  sameBytes(
    await through(moved, decryptStream(newOnly, { context })),
    file,
    "rewrapped stream opens under the new key",
  );

  const truncated = sealed.subarray(0, sealed.length - 40);
  await rejectsWith(
    "ENVELOPE_BAD_FORMAT",
    () => through(truncated, decryptStream(writer, { context })),
    "truncated stream",
  );
}

export const streamChecks = [["core: streams (multi-chunk, rewrap, truncation)", streams]];
