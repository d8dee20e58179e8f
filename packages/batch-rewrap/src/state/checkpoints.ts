import type { SqlExecutor } from "../adapters/types.js";
import type { Counters } from "../engine/counters.js";
import { RETRY_RANGE_ID } from "./jobs.js";
import type { StateTables } from "./tables.js";

/** Where a range was left: the last primary key done, or null when none is done yet. */
export async function readCheckpoint(
  q: SqlExecutor,
  t: StateTables,
  jobId: string,
  rangeId: number,
): Promise<string | null> {
  const { rows } = await q.query(
    `SELECT last_pk FROM ${t.checkpoints} WHERE job_id = ? AND range_id = ?`,
    [jobId, rangeId],
  );
  return lastPk(rows[0]?.last_pk);
}

/**
 * Locks a range's checkpoint row for the rest of the transaction and returns where it was
 * left; undefined when the row does not exist (the state tables were changed by hand).
 */
export async function lockCheckpoint(
  tx: SqlExecutor,
  t: StateTables,
  jobId: string,
  rangeId: number,
): Promise<{ lastPk: string | null } | undefined> {
  const { rows } = await tx.query(
    `SELECT last_pk FROM ${t.checkpoints} WHERE job_id = ? AND range_id = ? FOR UPDATE`,
    [jobId, rangeId],
  );
  return rows.length === 0 ? undefined : { lastPk: lastPk(rows[0]!.last_pk) };
}

/** One committed batch: where the range now stands, what the batch did, who did it. */
export interface CheckpointStep {
  lastPk: string | null;
  counters: Counters;
  workerId: string;
}

/** Moves a range's checkpoint and adds the batch's counters to it (inside the batch's transaction). */
export async function advanceCheckpoint(
  tx: SqlExecutor,
  t: StateTables,
  jobId: string,
  rangeId: number,
  step: CheckpointStep,
): Promise<void> {
  const c = step.counters;
  await tx.query(
    `UPDATE ${t.checkpoints} SET last_pk = ?, scanned = scanned + ?, rewrapped = rewrapped + ?, skipped = skipped + ?, nulls = nulls + ?, conflicts = conflicts + ?, failed = failed + ?, kms_calls = kms_calls + ?, worker = ?, updated_at = ${t.now} WHERE job_id = ? AND range_id = ?`,
    [
      step.lastPk,
      c.scanned,
      c.rewrapped,
      c.skipped,
      c.nulls,
      c.conflicts,
      c.failed,
      c.kmsCalls,
      step.workerId,
      jobId,
      rangeId,
    ],
  );
}

/**
 * The job's counters summed over its checkpoints. `scanned` counts the ranges' rows only:
 * the retry step re-reads rows a range already counted.
 */
export async function sumCheckpoints(
  q: SqlExecutor,
  t: StateTables,
  jobId: string,
): Promise<Counters> {
  const sums = await q.query(
    `SELECT SUM(scanned) AS scanned, SUM(rewrapped) AS rewrapped, SUM(skipped) AS skipped, SUM(nulls) AS nulls, SUM(conflicts) AS conflicts, SUM(failed) AS failed, SUM(kms_calls) AS kms_calls FROM ${t.checkpoints} WHERE job_id = ?`,
    [jobId],
  );
  const total = countersFromSums(sums.rows[0]);
  const rangeRows = await q.query(
    `SELECT SUM(scanned) AS n FROM ${t.checkpoints} WHERE job_id = ? AND range_id <> ?`,
    [jobId, RETRY_RANGE_ID],
  );
  total.scanned = Number(rangeRows.rows[0]?.n ?? 0);
  return total;
}

/** Counters from a `SELECT SUM(scanned) AS scanned, …, SUM(kms_calls) AS kms_calls` row of the checkpoints table. */
export function countersFromSums(row: Record<string, unknown> | undefined): Counters {
  const n = (v: unknown) => Number(v ?? 0);
  const s = row ?? {};
  return {
    scanned: n(s.scanned),
    rewrapped: n(s.rewrapped),
    skipped: n(s.skipped),
    nulls: n(s.nulls),
    conflicts: n(s.conflicts),
    failed: n(s.failed),
    kmsCalls: n(s.kms_calls),
  };
}

const lastPk = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
