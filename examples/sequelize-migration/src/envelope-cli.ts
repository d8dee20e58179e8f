// Runs the `envelope` CLI (@envelope/cli, built by `pnpm build`) as an operator would.
// Secrets go in the environment, never in arguments (visible in the process list).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Env } from "./settings.js";

export interface CliRun {
  exitCode: number;
  json: Record<string, unknown>;
}

export function envelopeCliPath(): string {
  const manifest = createRequire(import.meta.url).resolve("@envelope/cli/package.json");
  const path = join(dirname(manifest), "dist/cli.js");
  if (!existsSync(path))
    throw new Error(`${path} is missing: run \`pnpm build\` at the repository root first.`);
  return path;
}

/** `envelope --json <args…>`; resolves with its exit code and JSON output. */
export function envelope(args: readonly string[], env: Env, cwd: string): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [envelopeCliPath(), "--json", ...args], {
      cwd,
      env: env as NodeJS.ProcessEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.once("error", reject);
    child.once("close", (code) => {
      try {
        resolve({ exitCode: code ?? 1, json: JSON.parse(out) });
      } catch {
        reject(new Error(`envelope ${args[0]} exited ${code}: ${err.trim().split("\n").at(-1)}`));
      }
    });
  });
}
