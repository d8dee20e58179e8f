import { mkdir, rename } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ConfigError, EnvelopeError } from "@envelope/core";
import { CONTEXT_TEMPLATE, ENCRYPTED_COLUMNS } from "../schema.js";
import { checkTableName } from "../settings.js";
import { type CliResult, EnvelopeCliError, runEnvelopeCli } from "./envelope-cli.js";
import { newKeyName, readKeyRing, writeCliConfig, writeKeyRing } from "./key-ring.js";

type Env = Readonly<Record<string, string | undefined>>;

export interface RotateLocalKeyOptions {
  databaseUrl: string;
  table: string;
  keysDir: string;
  /** The environment of this script and of the `envelope` processes. Default process.env. */
  env?: Env;
  /**
   * A running API's base URL: after each key-ring change, wait until its /health reports
   * the new keys. Unreachable or not given: wait `settleMs` instead.
   */
  apiUrl?: string;
  /** How long running APIs get to reload the key ring when none can be asked. Default 2000 ms. */
  settleMs?: number;
  /** Rewrap passes before giving up (a pass repeats only for values written under an old key meanwhile). Default 5. */
  maxPasses?: number;
  /** Rows per rewrap batch (one transaction each): `envelope rewrap --batch-size`. Default 200. */
  batchSize?: number;
  onStep?: (step: RotationStep) => void;
  /** Aborted (Ctrl-C): no further `envelope` command is started; rerun to resume. */
  signal?: AbortSignal;
}

/** What `rotateLocalKey` reports as it goes: ids, counts and CLI command lines only. */
export type RotationStep =
  /** An `envelope` command about to run (the database URL is passed in its environment, not here). */
  | { step: "cli"; command: string }
  | { step: "new key"; key: string; resumed: boolean }
  | { step: "api reloaded"; via: "health" | "wait" }
  | {
      step: "pass";
      pass: number;
      rewrapped: number;
      skipped: number;
      conflicts: number;
      remaining: number;
    }
  | { step: "switched"; key: string; retired: string[] };

export interface RotationReport {
  /** `local-rsa:<fingerprint>` of the key now sealing and protecting everything. */
  key: string;
  /** Key files moved to `<keysDir>/retired/`. */
  retired: string[];
  passes: number;
  /** Values rewrapped across all passes. */
  rewrapped: number;
  /** Values per key reference at the end, as `envelope status` counted them (only the new key). */
  byKeyRef: Record<string, number>;
}

/** The parts of `envelope --json rewrap` (a @envelope/batch-rewrap JobReport) read here. */
interface RewrapJson {
  complete: boolean;
  stopped: boolean;
  run: { rewrapped: number; skipped: number; conflicts: number; failed: number };
  failures: Record<string, number>;
}

/** The parts of `envelope --json status` read here. */
interface StatusJson {
  keys: { role: "encrypt" | "decrypt"; provider: string; keyRef: string }[];
  column?: { byKeyRef: Record<string, number>; invalid: Record<string, number> };
}

/** `envelope rewrap` exit code: the job finished but some values failed (listed in the report). */
const EXIT_PARTIAL = 5;

/**
 * Rotates the example's generated local RSA key with zero downtime, driving the
 * `envelope` CLI (@envelope/cli, `--json`) against `<keysDir>/envelope.config.json`, the
 * CLI's mirror of the key ring:
 * 1. `envelope rotate` generates a new key and makes it the config's encrypting key, the
 *    old ones kept for decrypt; the key ring gets the same — the running API reloads it and
 *    seals every new write under the new key;
 * 2. `envelope rewrap --apply` rewraps every encrypted column to the new key (only the
 *    wrapped data keys change; compare-and-swap writes never overwrite the API's writes),
 *    and `envelope status` counts what is left under an old key; repeated until nothing is;
 * 3. drops the old keys from the ring and the config (moved to `<keysDir>/retired/`).
 * A crash at any point is safe: rerun it and it resumes with the same new key.
 *
 * @example
 * await rotateLocalKey({ databaseUrl, table: "example_users", keysDir: ".keys", apiUrl: "http://127.0.0.1:3000" });
 */
export async function rotateLocalKey(options: RotateLocalKeyOptions): Promise<RotationReport> {
  const env = options.env ?? process.env;
  const { table } = options;
  const keysDir = resolve(options.keysDir);
  checkTableName(table);
  if (env.ENVELOPE_ENCRYPT_KEYS?.trim()) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      'rotate rotates the example\'s generated local key, but ENVELOPE_ENCRYPT_KEYS is set. For configured keys, follow README "Rotating keys you configured" (deploy new+old keys, `envelope rewrap`, deploy the new key alone).',
      { details: { field: "ENVELOPE_ENCRYPT_KEYS" } },
    );
  }
  const ring = await readKeyRing(keysDir);
  if (!ring) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `No key ring in ${keysDir}: start the API once (it generates the first key), or set KEYS_DIR to the folder it uses.`,
      { details: { field: "KEYS_DIR" } },
    );
  }
  const step = options.onStep ?? (() => {});
  // The ring is the truth; the CLI's config is rebuilt from it (a config left by a crash
  // between `envelope rotate` and the ring write is discarded with its unused new key).
  const config = await writeCliConfig(keysDir, ring);
  const childEnv = cliEnv(env, options.databaseUrl);
  const cli = (command: string, args: string[], okExitCodes?: number[]): Promise<CliResult> => {
    if (options.signal?.aborted) {
      const reason = "interrupted before it started; rerun rotate to resume";
      return Promise.reject(new EnvelopeCliError(command, 130, "EXIT_130", reason));
    }
    const line = ["envelope", "--config", config, command, ...args].map(shellWord).join(" ");
    step({ step: "cli", command: line });
    return runEnvelopeCli(command, args, { env: childEnv, cwd: keysDir, config, okExitCodes });
  };
  const columns = ENCRYPTED_COLUMNS.join(",");
  const tableArgs = ["--table", table, "--pk", "id", "--column", columns];

  // 1. New key first (or resume a rotation that did not finish).
  const resumed = ring.rotatingFrom !== undefined;
  const oldFiles = ring.rotatingFrom ?? [ring.encrypt, ...ring.decrypt];
  let newFile = ring.encrypt;
  if (!resumed) {
    const name = newKeyName();
    const { json } = await cli("rotate", ["--dir", keysDir, "--name", name]);
    newFile = `${name}.pem`;
    if (json.privateKeyPath !== join(keysDir, newFile)) {
      throw new EnvelopeError(
        "ENVELOPE_BAD_CONFIG",
        `envelope rotate wrote its key somewhere else than ${join(keysDir, newFile)}; the key ring is unchanged.`,
        { details: { field: "KEYS_DIR" } },
      );
    }
    await writeKeyRing(keysDir, { encrypt: newFile, decrypt: oldFiles, rotatingFrom: oldFiles });
  }
  const keys = ((await cli("status", [])).json as unknown as StatusJson).keys;
  const encrypting = keys.filter((k) => k.role === "encrypt");
  if (encrypting.length !== 1 || keys.length !== 1 + oldFiles.length) {
    throw new EnvelopeError(
      "ENVELOPE_BAD_CONFIG",
      `envelope status shows ${encrypting.length} encrypting and ${keys.length - encrypting.length} decrypting key(s) in ${config}, expected 1 and ${oldFiles.length}.`,
      { details: { field: "envelope.config.json" } },
    );
  }
  const newRef = `${encrypting[0]!.provider}:${encrypting[0]!.keyRef}`;
  step({ step: "new key", key: newRef, resumed });
  step({ step: "api reloaded", via: await untilApiUses(options, (k) => k.encrypt[0] === newRef) });

  // 2. Rewrap until nothing is left under an old key.
  let rewrapped = 0;
  let byKeyRef: Record<string, number> = {};
  let passes = 0;
  for (let pass = 1; ; pass++) {
    passes = pass;
    const { json } = await cli(
      "rewrap",
      [
        ...tableArgs,
        // Exactly the context @envelope/records seals each field with.
        "--context",
        CONTEXT_TEMPLATE,
        "--apply",
        "--batch-size",
        String(options.batchSize ?? 200),
        // A new job per pass (a finished job would skip everything), the same on a rerun:
        // a crashed pass resumes from its checkpoints.
        "--job",
        `${table}:${newFile.replace(/\.pem$/, "")}:${pass}`,
        "--state-prefix",
        `${table}_rewrap`,
      ],
      [0, EXIT_PARTIAL],
    );
    const report = json as unknown as RewrapJson;
    if (Object.keys(report.failures).length > 0 || !report.complete) {
      const codes = Object.entries(report.failures).map(([code, n]) => `${code} × ${n}`);
      throw new EnvelopeError(
        "ENVELOPE_UNWRAP_FAILED",
        `Rewrap pass ${pass} could not rewrap some values (${codes.join(", ") || "incomplete"}); the old keys stay in the ring. Fix the cause and rerun rotate; it resumes.`,
        { details: { table, pass } },
      );
    }
    rewrapped += report.run.rewrapped;
    const scan = ((await cli("status", tableArgs)).json as unknown as StatusJson).column;
    if (!scan) {
      throw new EnvelopeError("ENVELOPE_BAD_CONFIG", "envelope status did not scan the table.", {
        details: { table },
      });
    }
    byKeyRef = scan.byKeyRef;
    const remaining = Object.entries(scan.byKeyRef)
      .filter(([ref]) => ref !== newRef)
      .reduce((n, [, count]) => n + count, 0);
    step({
      step: "pass",
      pass,
      rewrapped: report.run.rewrapped,
      skipped: report.run.skipped,
      conflicts: report.run.conflicts,
      remaining,
    });
    if (remaining === 0 && Object.keys(scan.invalid).length === 0) break;
    if (pass >= (options.maxPasses ?? 5)) {
      throw new EnvelopeError(
        "ENVELOPE_BAD_CONFIG",
        `${remaining} values are still under an old key after ${pass} passes: is an API instance still running with the old key ring? Restart it and rerun rotate; it resumes.`,
        { details: { table, remaining } },
      );
    }
  }

  // 3. Only the new key from now on, in the ring and in the CLI's config. The CLI has no
  // command to drop a decrypt key (its README says: edit `decrypt` once `status` shows the
  // key protects nothing), so writeKeyRing rewrites the config from the ring here.
  // Old key files are kept aside, not deleted (backups need them).
  await writeKeyRing(keysDir, { encrypt: newFile, decrypt: [] });
  const retired = await retire(keysDir, oldFiles);
  step({ step: "switched", key: newRef, retired });
  await untilApiUses(
    options,
    (k) => k.encrypt.length === 1 && k.decrypt.length === 1 && k.encrypt[0] === newRef,
  );
  return { key: newRef, retired, passes, rewrapped, byKeyRef };
}

/**
 * The CLI's environment: this one without ENVELOPE_ENCRYPT…/DECRYPT… (the config file
 * names the keys, as the key ring overrides them in the app) and with the database URL
 * as ENVELOPE_DB_URL — not `--db`, which would show its password in the process list.
 */
function cliEnv(env: Env, databaseUrl: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !/^ENVELOPE_(ENCRYPT|DECRYPT|DB_URL)/.test(name)) out[name] = value;
  }
  out.ENVELOPE_DB_URL = databaseUrl;
  return out;
}

/** An argument as a shell would need it to copy the command line (paths, `{…}` templates). */
function shellWord(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

async function retire(keysDir: string, files: string[]): Promise<string[]> {
  const dir = join(keysDir, "retired");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const file of files) {
    for (const f of [file, file.replace(/\.pem$/, ".pub.pem")]) {
      await rename(join(keysDir, f), join(dir, f)).catch((error: { code?: string }) => {
        if (error.code !== "ENOENT") throw error;
      });
    }
  }
  return files;
}

type Keys = { encrypt: string[]; decrypt: string[] };

/** Waits until the API's /health shows the wanted keys; without an API, waits settleMs. */
async function untilApiUses(
  options: RotateLocalKeyOptions,
  ok: (keys: Keys) => boolean,
): Promise<"health" | "wait"> {
  const deadline = Date.now() + 30_000;
  if (options.apiUrl) {
    while (Date.now() < deadline) {
      try {
        const res = await fetch(new URL("/health", options.apiUrl), {
          signal: AbortSignal.timeout(2000),
        });
        const body = (await res.json()) as { keys?: Keys };
        if (body.keys && ok(body.keys)) return "health";
      } catch {
        break; // no API there: fall back to waiting
      }
      await sleep(100);
    }
  }
  await sleep(options.settleMs ?? 2000);
  return "wait";
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
