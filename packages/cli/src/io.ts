import type { Readable, Writable } from "node:stream";
import { printable } from "@envelope/core/internal";

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
  io.stdout.write(json ? `${jsonText(value)}\n` : `${human()}\n`);
}

// JSON.stringify escapes U+0000–U+001F but leaves DEL, the C1 controls (U+009B is a
// one-character CSI on some terminals), the line separators and the bidi overrides raw.
const JSON_UNSAFE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * `value` as indented JSON with every control character escaped (`\uNNNN`), so JSON shown
 * on a terminal cannot carry an escape sequence from a stored value. Parses to the same value.
 */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    JSON_UNSAFE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * A string read from a stored value (key reference, provider id, primary key, error
 * message naming them), made safe for human output: control characters and terminal
 * escape sequences escaped, length capped (see `printable` in @envelope/core/internal).
 */
export function shown(value: unknown, max?: number): string {
  return printable(String(value), max);
}
