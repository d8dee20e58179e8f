import { mkdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { countKeyRefs, type Progress, postgresAdapter, rewrapTable } from "@envelope/batch-rewrap";
import { ConfigError, EnvelopeError, resolveKey } from "@envelope/core";
import { ENCRYPTED_COLUMNS } from "../schema.js";
import { checkTableName } from "../settings.js";
import { type KeyRing, keyUri, newKeyFile, readKeyRing, writeKeyRing } from "./key-ring.js";

type Env = Readonly<Record<string, string | undefined>>;

export interface RotateLocalKeyOptions {
  databaseUrl: string;
  table: string;
  keysDir: string;
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
  /** Rows per rewrap batch (one transaction each). Default 200. */
  batchSize?: number;
  onStep?: (step: RotationStep) => void;
}

/** What `rotateLocalKey` reports as it goes: ids and counts only. */
export type RotationStep =
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
  | { step: "progress"; pass: number; progress: Progress }
  | { step: "switched"; key: string; retired: string[] };

export interface RotationReport {
  /** `local-rsa:<fingerprint>` of the key now sealing and protecting everything. */
  key: string;
  /** Key files moved to `<keysDir>/retired/`. */
  retired: string[];
  passes: number;
  /** Values rewrapped across all passes. */
  rewrapped: number;
  /** Values per key reference at the end (only the new key). */
  byKeyRef: Record<string, number>;
}

/**
 * Rotates the example's generated local RSA key with zero downtime:
 * 1. generate a new key and put it first in the key ring, old keys kept for decrypt — the
 *    running API reloads the ring and seals every new write under the new key;
 * 2. rewrap every encrypted column to the new key with @envelope/batch-rewrap (only the
 *    wrapped data keys change; compare-and-swap writes never overwrite the API's writes),
 *    repeating until a scan finds no value under an old key;
 * 3. drop the old keys from the ring (moved to `<keysDir>/retired/`).
 * A crash at any point is safe: rerun it and it resumes with the same new key.
 *
 * @example
 * await rotateLocalKey({ databaseUrl, table: "example_users", keysDir: ".keys", apiUrl: "http://127.0.0.1:3000" });
 */
export async function rotateLocalKey(options: RotateLocalKeyOptions): Promise<RotationReport> {
  const env = options.env ?? process.env;
  const { keysDir, table } = options;
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

  // 1. New key first in the ring (or resume a rotation that did not finish).
  const resumed = ring.rotatingFrom !== undefined;
  const oldFiles = ring.rotatingFrom ?? [ring.encrypt, ...ring.decrypt];
  const newFile = resumed ? ring.encrypt : await newKeyFile(keysDir);
  const during: KeyRing = { encrypt: newFile, decrypt: oldFiles, rotatingFrom: oldFiles };
  if (!resumed) await writeKeyRing(keysDir, during);
  const to = await resolveKey(keyUri(keysDir, newFile), "new key", env);
  const decrypt = await Promise.all(
    oldFiles.map((f, i) => resolveKey(keyUri(keysDir, f), `old key ${i}`, env)),
  );
  const newRef = `${to.id}:${to.keyRef}`;
  step({ step: "new key", key: newRef, resumed });
  step({ step: "api reloaded", via: await untilApiUses(options, (k) => k.encrypt[0] === newRef) });

  // 2. Rewrap until nothing is left under an old key.
  const db = await postgresAdapter(options.databaseUrl);
  let rewrapped = 0;
  let byKeyRef: Record<string, number> = {};
  let passes = 0;
  try {
    for (let pass = 1; ; pass++) {
      passes = pass;
      const report = await rewrapTable({
        db,
        table,
        primaryKey: "id",
        columns: [...ENCRYPTED_COLUMNS],
        to,
        decrypt,
        apply: true,
        // Same id on a rerun: a crashed pass resumes from its checkpoints.
        jobId: `${table}:${newFile.replace(/\.pem$/, "")}:${pass}`,
        stateTablePrefix: `${table}_rewrap`,
        batchSize: options.batchSize ?? 200,
        onProgress: (progress) => step({ step: "progress", pass, progress }),
      });
      if (Object.keys(report.failures).length > 0) {
        const codes = Object.entries(report.failures).map(([code, n]) => `${code} × ${n}`);
        throw new EnvelopeError(
          "ENVELOPE_UNWRAP_FAILED",
          `Rewrap pass ${pass} could not rewrap some values (${codes.join(", ")}); the old keys stay in the ring. Fix the cause and rerun rotate; it resumes.`,
          { details: { table, pass } },
        );
      }
      rewrapped += report.run.rewrapped;
      const scan = await countKeyRefs({
        db,
        table,
        primaryKey: "id",
        columns: [...ENCRYPTED_COLUMNS],
      });
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
  } finally {
    await db.close();
  }

  // 3. Only the new key from now on; old key files kept aside, not deleted (backups need them).
  await writeKeyRing(keysDir, { encrypt: newFile, decrypt: [] });
  const retired = await retire(keysDir, oldFiles);
  step({ step: "switched", key: newRef, retired });
  await untilApiUses(
    options,
    (k) => k.encrypt.length === 1 && k.decrypt.length === 1 && k.encrypt[0] === newRef,
  );
  return { key: newRef, retired, passes, rewrapped, byKeyRef };
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
