import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { ConfigError } from "@envelope/core";

type Env = Readonly<Record<string, string | undefined>>;

/** What the CLI answered: its exit code and its `--json` output. */
export interface CliResult {
  exitCode: number;
  json: Record<string, unknown>;
}

/**
 * The `envelope` CLI failed and said why (`--json` prints `{ error: { code, message } }`).
 * The message is the CLI's own, written to carry no key material or plaintext.
 */
export class EnvelopeCliError extends Error {
  readonly code: string;
  readonly exitCode: number;
  /** The subcommand that failed (`rotate`, `rewrap`, `status`). */
  readonly command: string;

  constructor(command: string, exitCode: number, code: string, message: string) {
    super(`envelope ${command}: ${message}`);
    this.name = "EnvelopeCliError";
    this.command = command;
    this.exitCode = exitCode;
    this.code = code;
  }
}

/**
 * The built CLI's entry point (`dist/cli.js` of `@envelope/cli`, what its `envelope` bin
 * runs), found the way Node finds the dependency — the workspace package here, the npm
 * package in a copy of this example. In this repository, `pnpm build` makes it.
 */
export function envelopeCliPath(): string {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve("@envelope/cli/package.json");
  const path = join(dirname(manifest), "dist/cli.js");
  if (!existsSync(path)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `The envelope CLI is not built (${path} is missing). Run \`pnpm build\` (or \`pnpm --filter "@envelope/cli..." build\`) from the repository root first.`,
      { details: { field: "@envelope/cli" } },
    );
  }
  return path;
}

/**
 * Runs `node <@envelope/cli>/dist/cli.js --json [--config <file>] <command> <args…>` and
 * parses what it prints. Resolves with the exit code and JSON for the codes in
 * `okExitCodes` (default 0); any other exit is an `EnvelopeCliError` carrying the CLI's
 * error code and message. Arguments must not carry secrets (they are visible in the
 * process list): give the database URL as `ENVELOPE_DB_URL` in `env`.
 *
 * @example
 * const { json } = await runEnvelopeCli("status", [], { env, cwd: keysDir, config });
 */
export async function runEnvelopeCli(
  command: string,
  args: readonly string[],
  options: { env: Env; cwd: string; config?: string; okExitCodes?: readonly number[] },
): Promise<CliResult> {
  const cli = envelopeCliPath();
  const { exitCode, stdout, stderr } = await new Promise<{
    exitCode: number;
    stdout: string;
    stderr: string;
  }>((resolve, reject) => {
    const global = ["--json", ...(options.config ? ["--config", options.config] : [])];
    const child = spawn(process.execPath, [cli, ...global, command, ...args], {
      cwd: options.cwd,
      env: options.env as NodeJS.ProcessEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    child.once("error", reject);
    // Killed by a signal (no exit code): 128 + signal, as a shell reports it.
    child.once("close", (code, signal) =>
      resolve({ exitCode: code ?? (signal === "SIGINT" ? 130 : 1), stdout: out, stderr: err }),
    );
  });

  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  const error = json?.error as { code?: string; message?: string } | undefined;
  if (error) {
    throw new EnvelopeCliError(
      command,
      exitCode,
      error.code ?? "UNKNOWN",
      error.message ?? "failed",
    );
  }
  if (json && (options.okExitCodes ?? [0]).includes(exitCode)) return { exitCode, json };
  // Interrupted, or crashed (then its stderr's last line is the CLI's one-line reason).
  const reason =
    exitCode === 130
      ? "interrupted (stopped at a checkpoint; rerun to resume)"
      : json
        ? `exited with code ${exitCode}`
        : stderr.trim().split("\n").at(-1) || `exited with code ${exitCode}`;
  throw new EnvelopeCliError(command, exitCode, `EXIT_${exitCode}`, reason);
}
