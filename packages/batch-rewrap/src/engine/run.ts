import { ConfigError } from "@envelope/core";
import type { SqlAdapter } from "../adapters/types.js";
import { quote } from "../sql/identifiers.js";
import { sumCheckpoints } from "../state/checkpoints.js";
import { failureCounts, sampleFailures } from "../state/failures.js";
import { countPendingRanges, markJobResumed, markJobStopped } from "../state/job-status.js";
import { createOrLoadJob, planRangeCount, planRanges, type RangeSizing } from "../state/jobs.js";
import { reopenIfFinished } from "../state/reopen.js";
import { ensureStateTables, type StateTables, stateTables } from "../state/tables.js";
import { findUnfinishedJobs } from "../state/unfinished.js";
import { addCounters, type Counters, zeroCounters } from "./counters.js";
import type { MigrateTableOptions, RewrapTableOptions } from "./options.js";
import { preflight } from "./preflight.js";
import { prepareMigrate, prepareRewrap } from "./prepare.js";
import type { Runtime } from "./runtime.js";
import { type ScanResult, scanTable } from "./scan.js";
import { Demand } from "./split.js";
import { type RunState, work } from "./worker.js";

/** The final report of a run. Counters count values (row × column) unless named rows. */
export interface JobReport {
  jobId: string;
  kind: "rewrap" | "migrate";
  /** false: a dry run; nothing was written and `wouldRewrite` says what a real run would change. */
  apply: boolean;
  table: string;
  columns: string[];
  targets: string[];
  /**
   * Apply: every range done, no failure outstanding, and the read of the column(s) that
   * follows found no value still to move (`verified.remaining` 0). Dry run: nothing to do.
   */
  complete: boolean;
  /**
   * Apply: ranges not yet done when this run ended. A worker that finds nothing left to
   * claim ends while other workers still hold ranges: then this is above 0 and the job
   * is not complete although nothing failed.
   */
  pendingRanges?: number;
  /**
   * Apply: the job id named a job whose ranges were all done, so this run went over the
   * whole table again (a new pass) instead of doing nothing. An apply run always moves
   * every value not yet on the target key; the job id only lets it resume.
   */
  reopened?: boolean;
  /**
   * Apply: this run resumed a stopped (or killed) job, and once its ranges were done went
   * over the whole table once more, so that values written under an old key behind the
   * job's checkpoints while it was stopped were moved too: what that pass did. `run`
   * includes it; `total` counts each row once and adds what the pass moved.
   */
  swept?: Counters;
  /**
   * Apply: the check made before `complete` is claimed, once every range is done and no
   * failure is outstanding: the job's column(s) read again over the whole table, in key
   * order, and each value's header parsed (no KMS call, no write). `remaining` counts the
   * values still not on the target key(s), or not usable, when it read them: above 0, the
   * run is not complete whatever the state tables say (values written under an old key
   * while the run went on, or state tables edited to mark work done that was not), and the
   * next apply run goes over the whole table again. Absent when the run did not get that
   * far (stopped, ranges pending, failures outstanding), or was stopped during the check.
   */
  verified?: { scanned: number; remaining: number };
  /** Stopped early by the abort signal (Ctrl-C); rerun to resume from the checkpoints. */
  stopped: boolean;
  /** What this run did. */
  run: Counters;
  /** What the whole job has done, across workers and runs (apply only). */
  total?: Counters;
  /** Dry run: values that would be rewritten. */
  wouldRewrite?: number;
  /** Dry run: values per `provider:keyRef`. */
  byKeyRef?: Record<string, number>;
  /** Outstanding failures by error code (apply: from the failures table; dry run: unusable values). */
  failures: Record<string, number>;
  /** Up to 20 failed values: primary key, column, code, message. */
  sampleFailures: { pk: string; column: string; code: string; message?: string }[];
  /** Throttling answers from the KMS in this run (each paused the whole process, cut its adaptive rate, then was retried). */
  kmsThrottled: number;
  /**
   * KMS (provider) calls per value rewritten in this run, the preflight's calls left out:
   * the cost of one value, e.g. 2 for a native rewrap (rewrap, then unwrap the new entry:
   * the proof that it opens to the value's data key, whose key also checks the body), 1 for
   * a local key. 0 when nothing was rewritten.
   */
  kmsCallsPerValue: number;
  /** Values fully checked before the run (decrypt + target round trip). */
  preflightChecked: number;
  durationMs: number;
  /** Rows scanned per second in this run. */
  rowsPerSecond: number;
}

/**
 * Rewraps every value of the column(s) under the target key(s): the batch half of a key
 * rotation. Dry run unless `apply: true`. Crash-safe and resumable (rerun the same call),
 * shareable by several workers and processes, and never overwrites a value the
 * application changed meanwhile. Throws before writing anything if the preflight finds a
 * problem (unknown table or column, a value that is not an envelope, a context that does
 * not match, a key that cannot unwrap).
 *
 * @example
 * const report = await rewrapTable({
 *   db: await connect("postgres://localhost/app"), table: "users", primaryKey: "id", columns: ["email"],
 *   to: newKey, decrypt: [oldKey], apply: true,
 * });
 */
export async function rewrapTable(options: RewrapTableOptions): Promise<JobReport> {
  return runJob(await prepareRewrap(options));
}

/**
 * Seals legacy values (plaintext, or hand-rolled AES-GCM JSON / AES-CBC under a static
 * key) into envelopes in place, with the same engine, checks and guarantees as
 * `rewrapTable`. Values that already are envelopes are skipped.
 *
 * @example
 * const report = await migrateTable({
 *   db, table: "users", primaryKey: "id", columns: ["ssn"], to: key,
 *   from: legacyDecoder({ format: "aes-256-cbc", key: { env: "LEGACY_KEY" } }), apply: true,
 * });
 */
export async function migrateTable(options: MigrateTableOptions): Promise<JobReport> {
  return runJob(await prepareMigrate(options));
}

async function runJob(rt: Runtime): Promise<JobReport> {
  try {
    return await runPrepared(rt);
  } finally {
    await rt.close?.();
  }
}

async function runPrepared(rt: Runtime): Promise<JobReport> {
  const started = performance.now();
  const rangeSize =
    rt.options.rangeSize === undefined ? undefined : rangeSizeOption(rt.options.rangeSize);
  // The limiter may be shared with other jobs (`rateLimit: Limiter`): count from here.
  const callsAtStart = rt.limits.limiter.calls;
  const throttledAtStart = rt.limits.limiter.throttled;
  const { checked } = await preflight(rt);
  const preflightCalls = rt.limits.limiter.calls - callsAtStart;
  const estimatedRows = await estimateRows(rt.db, rt.table.name);
  const base = {
    jobId: rt.job.id,
    kind: rt.job.spec.kind,
    apply: Boolean(rt.options.apply),
    table: rt.table.name,
    columns: rt.job.spec.columns,
    targets: rt.job.spec.targets,
    preflightChecked: checked,
  };
  const throttledCount = () => rt.limits.limiter.throttled - throttledAtStart;
  const perValue = (rewrapped: number) =>
    rewrapped > 0 ? (rt.limits.limiter.calls - callsAtStart - preflightCalls) / rewrapped : 0;
  const progress = (
    c: Pick<Counters, "scanned" | "rewrapped" | "skipped" | "failed" | "conflicts">,
  ) =>
    rt.options.onProgress?.({
      jobId: rt.job.id,
      ...c,
      estimatedRows,
      elapsedMs: performance.now() - started,
    });

  if (!rt.options.apply) {
    const scan = await scanTable(rt, (s) =>
      progress({ scanned: s.scanned, rewrapped: 0, skipped: s.skipped, failed: 0, conflicts: 0 }),
    );
    return dryReport(
      rt,
      { ...base, kmsThrottled: throttledCount(), kmsCallsPerValue: 0 },
      scan,
      started,
      rt.limits.limiter.calls - callsAtStart,
    );
  }

  const t = stateTables(rt.db, rt.options.stateTablePrefix ?? "envelope_rewrap");
  await ensureStateTables(rt.db, t);
  const workers = Math.max(1, rt.options.workers ?? 1);
  // Ranges are planned once, when the job is created; a resumed or joining run keeps them.
  const sizing: RangeSizing =
    rangeSize !== undefined
      ? { rangeSize }
      : {
          ranges: planRangeCount(estimatedRows, workers, rt.limits.batchSize),
          rows: estimatedRows,
        };
  const { created } = await createOrLoadJob(rt.db, t, rt.job.id, rt.job.spec, () =>
    planRanges(rt.db, rt.table.name, rt.table.pk, rt.table.integerKey, sizing),
  );
  const reopened = !created && (await reopenIfFinished(rt.db, t, rt.job.id));
  const interrupted = !created && !reopened && (await resumeJob(rt, t));
  const run = zeroCounters();
  const state: RunState = {
    run,
    onBatch: () => progress(run),
    failedKeys: new Set(),
    failedRows: new Set(),
    demand: new Demand(),
  };
  const pass = async () => {
    const results = await Promise.all(
      Array.from({ length: workers }, (_, i) =>
        work({ rt, t, state, workerId: `${rt.job.workerBase}:${i}` }),
      ),
    );
    return results.some((r) => r.stopped);
  };
  let stopped = await pass();
  // A resumed job started at its checkpoints: a value written under an old key behind them
  // while the job was stopped (an app instance still on the old config) was not seen. Once
  // the ranges are done, one more pass over the whole table moves it, so the run does what
  // the dry run announced. The job's totals stay those of the whole job.
  let sweep: { counters: Counters; before: Counters } | undefined;
  if (interrupted && !stopped) {
    const before = await sumCheckpoints(rt.db, t, rt.job.id);
    if (await reopenIfFinished(rt.db, t, rt.job.id)) {
      const runBefore = { ...run };
      stopped = await pass();
      const counters = { ...run };
      for (const k of Object.keys(counters) as (keyof Counters)[]) counters[k] -= runBefore[k];
      sweep = { counters, before };
    }
  }
  // `complete` is not taken from the state tables alone: anyone who can write to the
  // database can mark ranges done or move a checkpoint past the rows, and an app instance
  // still on an old key can write behind the checkpoints. Before it is claimed, the column
  // itself is read (headers only, no KMS call).
  let verified: JobReport["verified"];
  if (!stopped) {
    verified = await verifyDone(rt, t);
    if (rt.options.signal?.aborted) {
      stopped = true;
      verified = undefined;
    }
  }
  // Every worker has committed its last batch: say so, so that a retire or rotate sees a
  // stopped job (resume it) at once instead of a running one until the lease passes.
  if (stopped) await markJobStopped(rt.db, t, rt.job.id);
  // Includes the preflight's calls: everything this run asked of the KMS.
  run.kmsCalls = rt.limits.limiter.calls - callsAtStart;
  return applyReport(
    rt,
    t,
    {
      ...base,
      reopened,
      ...(sweep ? { swept: sweep.counters } : {}),
      ...(verified ? { verified } : {}),
      kmsThrottled: throttledCount(),
      kmsCallsPerValue: perValue(run.rewrapped),
    },
    run,
    stopped,
    started,
    sweep?.before,
  );
}

/**
 * Marks a stopped job running again, and says whether this run resumes an interrupted job
 * (stopped by its signal, or idle for longer than the lease: killed) rather than joining
 * one that other processes are working.
 */
async function resumeJob(rt: Runtime, t: StateTables): Promise<boolean> {
  const jobs = await findUnfinishedJobs(rt.db, {
    stateTablePrefix: rt.options.stateTablePrefix ?? "envelope_rewrap",
  });
  const interrupted = jobs.some((j) => j.jobId === rt.job.id && j.state === "incomplete");
  await markJobResumed(rt.db, t, rt.job.id);
  return interrupted;
}

/**
 * The check before `complete`: when every range of the job is done and no failure is
 * outstanding, reads the whole table in key order (as the dry run does: pk and the job's
 * columns, each value's header parsed, no KMS call) and counts the values the job would
 * still change or cannot use. Undefined when the job is not done by its own state (then it
 * is not complete anyway, and the read would be wasted).
 */
async function verifyDone(rt: Runtime, t: StateTables): Promise<JobReport["verified"]> {
  if ((await countPendingRanges(rt.db, t, rt.job.id)) > 0) return undefined;
  if (Object.keys(await failureCounts(rt.db, t, rt.job.id)).length > 0) return undefined;
  const scan = await scanTable(rt);
  const invalid = Object.values(scan.invalid).reduce((a, b) => a + b, 0);
  return { scanned: scan.scanned, remaining: scan.work + invalid };
}

async function applyReport(
  rt: Runtime,
  t: StateTables,
  base: Omit<
    JobReport,
    "complete" | "stopped" | "run" | "failures" | "sampleFailures" | "durationMs" | "rowsPerSecond"
  >,
  run: Counters,
  stopped: boolean,
  started: number,
  beforeSweep?: Counters,
): Promise<JobReport> {
  const checkpoints = await sumCheckpoints(rt.db, t, rt.job.id);
  // After a sweep the checkpoints count its pass only: the job had read each row once
  // before it (those counts stand), and what the sweep wrote comes on top.
  const total = beforeSweep
    ? {
        ...beforeSweep,
        rewrapped: beforeSweep.rewrapped + checkpoints.rewrapped,
        conflicts: beforeSweep.conflicts + checkpoints.conflicts,
        kmsCalls: beforeSweep.kmsCalls + checkpoints.kmsCalls,
      }
    : checkpoints;
  const failures = await failureCounts(rt.db, t, rt.job.id);
  // Failed: the values failing now (the failures table), not every failed attempt.
  total.failed = Object.values(failures).reduce((a, b) => a + b, 0);
  const samples = await sampleFailures(rt.db, t, rt.job.id);
  const pendingRanges = await countPendingRanges(rt.db, t, rt.job.id);
  const durationMs = performance.now() - started;
  return {
    ...base,
    complete:
      pendingRanges === 0 &&
      Object.keys(failures).length === 0 &&
      base.verified !== undefined &&
      base.verified.remaining === 0,
    pendingRanges,
    stopped,
    run,
    total,
    failures,
    sampleFailures: samples,
    durationMs,
    rowsPerSecond: run.scanned / Math.max(durationMs / 1000, 0.001),
  };
}

function dryReport(
  rt: Runtime,
  base: Omit<
    JobReport,
    "complete" | "stopped" | "run" | "failures" | "sampleFailures" | "durationMs" | "rowsPerSecond"
  >,
  scan: ScanResult,
  started: number,
  kmsCalls: number,
): JobReport {
  const durationMs = performance.now() - started;
  const run = zeroCounters();
  addCounters(run, {
    scanned: scan.scanned,
    skipped: scan.skipped,
    nulls: scan.nulls,
    kmsCalls,
  });
  return {
    ...base,
    complete: scan.work === 0 && Object.keys(scan.invalid).length === 0,
    stopped: Boolean(rt.options.signal?.aborted),
    run,
    wouldRewrite: scan.work,
    byKeyRef: scan.byKeyRef,
    failures: scan.invalid,
    sampleFailures: scan.invalidSamples,
    durationMs,
    rowsPerSecond: scan.scanned / Math.max(durationMs / 1000, 0.001),
  };
}

function rangeSizeOption(n: number): number {
  if (!Number.isInteger(n) || n < 1)
    throw new ConfigError("ENVELOPE_BAD_CONFIG", "rangeSize must be a positive integer.", {
      details: { field: "rangeSize" },
    });
  return n;
}

/** Rows in the table: the planner's estimate on large tables, an exact count on small ones. */
async function estimateRows(db: SqlAdapter, table: string): Promise<number> {
  try {
    const [schema, name] = table.includes(".") ? table.split(".") : [undefined, table];
    const estimate =
      db.dialect === "mysql"
        ? await db.query(
            "SELECT table_rows AS n FROM information_schema.tables WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?",
            [schema ?? null, name],
          )
        : await db.query("SELECT reltuples AS n FROM pg_class WHERE oid = to_regclass(?)", [table]);
    const n = Number(estimate.rows[0]?.n ?? -1);
    if (n > 1_000_000) return n;
    const exact = await db.query(`SELECT COUNT(*) AS n FROM ${quote(db, table)}`);
    return Number(exact.rows[0]?.n ?? 0);
  } catch {
    return 0;
  }
}
