import type { KeyProvider } from "@envelope/core";
import type { SqlAdapter } from "../adapters/types.js";
import type { Counters } from "../engine/counters.js";
import type { ColumnSpec } from "../engine/options.js";
import { defaultJobId } from "../engine/prepare.js";
import { countersFromSums } from "./checkpoints.js";
import { type JobSpec, RETRY_RANGE_ID } from "./jobs.js";
import { stateTables } from "./tables.js";

/** A job as its state tables record it: read by `findJob`, never changed by it. */
export interface JobState {
  jobId: string;
  /** What the job does (kind, table, primary key, columns, target key references). */
  spec: JobSpec;
  /**
   * `running` until a run finishes every range and its failure-retry pass, then `done`;
   * `stopped` when the last run was stopped at a checkpoint (Ctrl-C) and not resumed yet.
   */
  status: string;
  createdAt: string;
  updatedAt: string;
  /** Primary-key ranges: all of them, and those not finished yet. */
  ranges: { total: number; pending: number };
  /** Values recorded as failed and not yet redone. */
  outstandingFailures: number;
  /** What the job has done so far, across runs and workers (the checkpoints' sums, as `JobReport.total`). */
  done: Counters;
  /** Rows the job's ranges have gone over so far (each row once; retry passes not counted). */
  rowsDone: number;
  /** Nothing left: every range done and no failure outstanding (a rerun would do nothing). */
  complete: boolean;
}

/**
 * Reads a job's state without writing anything (it does not even create the state
 * tables): `undefined` when there is no such job. Use it to decide whether a run would
 * start a job or resume one.
 *
 * @example
 * const job = await findJob(db, "rewrap-users-4f1c…");
 * if (job && !job.complete) console.log(`resuming: ${job.done.scanned} rows already done`);
 */
export async function findJob(
  db: SqlAdapter,
  jobId: string,
  options: { stateTablePrefix?: string } = {},
): Promise<JobState | undefined> {
  const prefix = options.stateTablePrefix ?? "envelope_rewrap";
  const t = stateTables(db, prefix);
  for (const suffix of ["jobs", "ranges", "checkpoints", "failures"]) {
    if (!(await tableExists(db, `${prefix}_${suffix}`))) return undefined;
  }
  const job = await db.query(
    `SELECT spec, status, created_at, updated_at FROM ${t.jobs} WHERE job_id = ?`,
    [jobId],
  );
  const row = job.rows[0];
  if (!row) return undefined;
  const ranges = await db.query(
    `SELECT COUNT(*) AS total, SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS pending FROM ${t.ranges} WHERE job_id = ?`,
    [jobId],
  );
  const failures = await db.query(`SELECT COUNT(*) AS n FROM ${t.failures} WHERE job_id = ?`, [
    jobId,
  ]);
  const sums = await db.query(
    `SELECT SUM(scanned) AS scanned, SUM(CASE WHEN range_id = ? THEN 0 ELSE scanned END) AS range_rows, SUM(rewrapped) AS rewrapped, SUM(skipped) AS skipped, SUM(nulls) AS nulls, SUM(conflicts) AS conflicts, SUM(failed) AS failed, SUM(kms_calls) AS kms_calls FROM ${t.checkpoints} WHERE job_id = ?`,
    [RETRY_RANGE_ID, jobId],
  );
  const s = sums.rows[0] ?? {};
  const done = countersFromSums(s);
  const pending = Number(ranges.rows[0]?.pending ?? 0);
  const outstandingFailures = Number(failures.rows[0]?.n ?? 0);
  // As JobReport.total: rows of the ranges only, failed = values failing now.
  done.scanned = Number(s.range_rows ?? 0);
  done.failed = outstandingFailures;
  return {
    jobId,
    spec: JSON.parse(String(row.spec)) as JobSpec,
    status: String(row.status),
    createdAt: String(row.created_at),
    updatedAt: String(row.updated_at),
    ranges: { total: Number(ranges.rows[0]?.total ?? 0), pending },
    outstandingFailures,
    done,
    rowsDone: Number(s.range_rows ?? 0),
    complete: pending === 0 && outstandingFailures === 0,
  };
}

/**
 * The job id `rewrapTable` / `migrateTable` use when no `jobId` is given: derived from the
 * kind, table, primary key, columns, target key references (and legacy format), so the same
 * command always names the same job.
 *
 * @example
 * const id = jobIdFor({ kind: "rewrap", table: "users", primaryKey: "id", columns: ["email"], to: newKey });
 */
export function jobIdFor(job: {
  kind: "rewrap" | "migrate";
  table: string;
  primaryKey: string;
  columns: readonly (string | ColumnSpec)[];
  to: KeyProvider | readonly KeyProvider[];
  /** migrate: the legacy format (`legacyDecoder(…).format`). */
  legacy?: string;
}): string {
  const to: readonly KeyProvider[] = Array.isArray(job.to) ? job.to : [job.to as KeyProvider];
  // Same fields in the same order as the spec prepare() builds and stores with the job.
  const spec: JobSpec = {
    kind: job.kind,
    table: job.table,
    primaryKey: job.primaryKey,
    columns: job.columns.map((c) => (typeof c === "string" ? c : c.name)),
    targets: to.map((p) => `${p.id}:${p.keyRef}`),
    ...(job.kind === "migrate" && job.legacy ? { legacy: job.legacy } : {}),
  };
  return defaultJobId(spec);
}

/** True when `table` (or `schema.table`) exists in the connected database. */
export async function tableExists(db: SqlAdapter, table: string): Promise<boolean> {
  const [schema, name] = table.includes(".") ? table.split(".") : [undefined, table];
  const current = db.dialect === "mysql" ? "DATABASE()" : "current_schema()";
  const { rows } = await db.query(
    `SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = COALESCE(?, ${current}) AND table_name = ?`,
    [schema ?? null, name],
  );
  const r = rows[0] ?? {};
  return Number(r.n ?? r.N ?? 0) > 0;
}
