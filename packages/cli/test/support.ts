import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { type CliIo, main } from "@envelope/cli";

export interface Run {
  code: number;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
  // biome-ignore lint/suspicious/noExplicitAny: parsed CLI JSON of many shapes, read by tests
  json: () => any;
}

/** Runs the CLI in-process with a temp working directory and captured output. */
export async function cli(
  args: string[],
  options: { cwd: string; stdin?: Buffer; env?: Record<string, string | undefined> },
): Promise<Run> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on("data", (d) => out.push(Buffer.from(d)));
  stderr.on("data", (d) => err.push(Buffer.from(d)));
  const io: CliIo = {
    stdin: Readable.from(options.stdin ? [options.stdin] : []),
    stdout,
    stderr,
    env: { PATH: process.env.PATH, ...options.env },
    cwd: options.cwd,
  };
  const code = await main(args, io);
  await new Promise((r) => setImmediate(r));
  const stdoutBytes = Buffer.concat(out);
  return {
    code,
    stdoutBytes,
    stdout: stdoutBytes.toString("utf8"),
    stderr: Buffer.concat(err).toString("utf8"),
    json: () => JSON.parse(stdoutBytes.toString("utf8")),
  };
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "envelope-cli-"));
}
