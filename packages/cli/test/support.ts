import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import type { SqlAdapter } from "@envelope/batch-rewrap";
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

export interface BuiltBin {
  /** dist-like cli.js built from the current sources. */
  bin: string;
  remove(): void;
}

const PKG = fileURLToPath(new URL("../", import.meta.url));
const TSUP = fileURLToPath(
  new URL("../../../node_modules/tsup/dist/cli-default.js", import.meta.url),
);

/**
 * The `envelope` bin built from the current sources (as `pnpm build` does, into a private
 * directory under packages/cli so it resolves the package's own dependencies), to run
 * with plain `node`: no --import tsx, no type stripping (Node 20 has none).
 */
export function buildBin(): BuiltBin {
  const out = mkdtempSync(join(PKG, "node_modules", ".envelope-cli-test-"));
  execFileSync(
    process.execPath,
    [TSUP, "src/cli.ts", "--no-config", "--format", "esm", "--target", "node20", "--out-dir", out],
    { cwd: PKG, stdio: "pipe" },
  );
  return { bin: join(out, "cli.js"), remove: () => rmSync(out, { recursive: true, force: true }) };
}

/** A rewrap job run by the built `envelope` command (test/global-setup.ts keeps dist/ fresh). */
export interface BuiltJob {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Values the job has committed so far, from its checkpoints. */
  moved: () => Promise<number>;
}

/**
 * Starts `envelope --config <config> rewrap <args>` as an operator runs it, from the repo
 * root, and resolves once it has committed a first batch (throws with its output if it
 * exits first or commits nothing within 15 s). Slow the job (`--rate-limit`) so that it is
 * still mid-job when the test acts on it.
 */
export async function startBuiltRewrap(
  db: SqlAdapter,
  statePrefix: string,
  configPath: string,
  args: string[],
): Promise<BuiltJob> {
  const root = fileURLToPath(new URL("../../../", import.meta.url));
  const bin = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
  const child = spawn(process.execPath, [bin, "--config", configPath, "rewrap", ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env.PATH },
  });
  let out = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    out += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const moved = async () =>
    Number(
      (
        await db
          .query(`SELECT COALESCE(SUM(rewrapped), 0) AS n FROM ${statePrefix}_checkpoints`)
          .catch(() => ({ rows: [{ n: 0 }] }))
      ).rows[0]!.n,
    );
  const deadline = Date.now() + 15_000;
  while ((await moved()) === 0) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(out);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, output: () => out, exited, moved };
}
