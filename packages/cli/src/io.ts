import type { Readable, Writable } from "node:stream";

/** Where a command reads and writes: the process by default, buffers in tests. */
export interface CliIo {
  stdin: Readable;
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  env: Record<string, string | undefined>;
  cwd: string;
}

export function processIo(): CliIo {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
  };
}

/** Prints `value` as JSON with `--json`, else the human text. */
export function output(io: CliIo, json: boolean, value: unknown, human: () => string): void {
  io.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}
