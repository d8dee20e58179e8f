import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { resolve } from "node:path";
import { type Readable, type Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { CliIo } from "./io.js";

/** Largest single envelope (not a stream) read whole: 1 GiB of body plus room for its entries. */
export const SINGLE_ENVELOPE_MAX = 1024 * 1024 * 1024 + 300 * 1024;

/** The input: a file, or stdin for `-` / no argument. */
export function inputStream(io: CliIo, file: string | undefined): Readable {
  return !file || file === "-" ? io.stdin : createReadStream(resolve(io.cwd, file));
}

/**
 * Pipes input through `transforms` into `out` (a file, or stdout for `-` / none). A file
 * is written to a temporary name and renamed only when everything verified, so a failed
 * or interrupted decrypt never leaves a partial plaintext under the real name.
 */
export async function pipeTo(
  io: CliIo,
  input: Readable,
  transforms: Transform[],
  out: string | undefined,
  mode = 0o600,
): Promise<void> {
  if (!out || out === "-") {
    await pipeline([input, ...transforms, toStdout(io.stdout)]);
    return;
  }
  out = resolve(io.cwd, out);
  const temp = `${out}.tmp-${process.pid}`;
  try {
    await pipeline([input, ...transforms, createWriteStream(temp, { mode })]);
    await rename(temp, out);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}

/**
 * A pipeline sink that writes to stdout without handing stdout itself to `pipeline`. When a
 * stage fails (a tampered chunk, a wrong context), `pipeline` destroys every stream it was
 * given with that error: stdout destroyed that way emitted the decryption error as a stdout
 * `error` event, which crashed the process with a stack trace and exit 1, and the typed error
 * (or its `--json` form) could no longer be printed. Stdout must outlive the command.
 */
function toStdout(stdout: Writable): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (stdout.write(chunk)) done();
      else once(stdout, "drain").then(() => done(), done);
    },
  });
}

/** Up to `max` first bytes of a file or stdin (for inspect and format detection). */
export async function readHead(io: CliIo, file: string | undefined, max: number): Promise<Buffer> {
  if (!file || file === "-") {
    const parts: Buffer[] = [];
    let length = 0;
    for await (const chunk of io.stdin) {
      parts.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length >= max) break;
    }
    return Buffer.concat(parts).subarray(0, max);
  }
  const handle = await open(resolve(io.cwd, file), "r");
  try {
    const buffer = Buffer.alloc(max);
    const { bytesRead } = await handle.read(buffer, 0, max, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Reads at least `n` bytes (or all, if shorter) from `input` and returns them with a
 * stream that replays them followed by the rest: format detection without seeking.
 */
export async function peek(
  input: Readable,
  n: number,
): Promise<{ head: Buffer; stream: Readable }> {
  const { Readable: R } = await import("node:stream");
  const iterator = input[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let length = 0;
  let done = false;
  while (length < n) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    parts.push(chunk);
    length += chunk.length;
  }
  const head = Buffer.concat(parts);
  const stream = R.from(
    (async function* () {
      if (head.length) yield head;
      if (done) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    })(),
  );
  return { head, stream };
}

/** Reads a whole stream, refusing more than `max` bytes. */
export async function readAll(input: Readable, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of input) {
    length += (chunk as Buffer).length;
    if (length > max) throw new RangeError("input too large");
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts);
}
