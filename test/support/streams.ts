// Stream helpers shared by the streaming tests and the stream vector family.
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";

/** Pipes `input` (one buffer or pieces) through `transform` and collects the output. */
export async function run(
  transform: NodeJS.ReadWriteStream,
  input: Buffer | Buffer[],
): Promise<Buffer> {
  return buffer(Readable.from(Array.isArray(input) ? input : [input]).pipe(transform));
}

/**
 * `bytes` cut into pieces of 1–3,000 bytes, the same cuts for the same `seed`, so framing
 * across buffer boundaries is exercised reproducibly.
 */
export function pieces(bytes: Buffer, seed: number): Buffer[] {
  const out: Buffer[] = [];
  let o = 0;
  let s = seed;
  while (o < bytes.length) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const n = 1 + (s % 3000);
    out.push(bytes.subarray(o, o + n));
    o += n;
  }
  return out;
}
