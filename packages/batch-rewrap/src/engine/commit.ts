import { ConfigError } from "@envelope/core";
import type { SqlExecutor } from "../adapters/types.js";
import { RETRY_RANGE_ID } from "../state/jobs.js";
import type { StateTables } from "../state/tables.js";
import { casUpdateMany, casUpdateOne } from "./cas.js";
import { type Counters, zeroCounters } from "./counters.js";
import type { Runtime } from "./prepare.js";
import { processRow, type RowOutcome } from "./process.js";

/** The checkpoint moved since this worker read it: another worker owns the range now. */
export class LostClaim extends Error {}

/**
 * One transaction: check this worker still owns the range (the checkpoint is where it
 * left it), compare-and-swap each changed row, redo rows the application changed
 * meanwhile (locked, so they cannot change again), record failures, and move the
 * checkpoint. A crash before COMMIT loses the whole batch and nothing else.
 */
export async function commitBatch(
  rt: Runtime,
  t: StateTables,
  tx: SqlExecutor,
  rangeId: number,
  expectedLast: string | null | undefined,
  outcomes: RowOutcome[],
  workerId: string,
  callsBefore: number,
): Promise<{ counters: Counters; failed: { pk: string; column: string }[] }> {
  const lock = await tx.query(
    `SELECT last_pk FROM ${t.checkpoints} WHERE job_id = ? AND range_id = ? FOR UPDATE`,
    [rt.jobId, rangeId],
  );
  if (lock.rows.length === 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Job ${rt.jobId} has no checkpoint for range ${rangeId}; its state tables were changed by hand.`,
    );
  }
  const stored = lock.rows[0]!.last_pk;
  if (
    expectedLast !== undefined &&
    (stored === null || stored === undefined ? null : String(stored)) !== expectedLast
  )
    throw new LostClaim();

  const counters = zeroCounters();
  counters.scanned = outcomes.length;
  const finals: RowOutcome[] = [];
  // One multi-row compare-and-swap for the batch; only the rows it missed are redone one by one.
  const missed = await casUpdateMany(rt, tx, outcomes);
  for (let outcome of outcomes) {
    if (missed.has(outcome)) {
      // The application wrote this row since we read it: lock it, redo it from its current value.
      counters.conflicts++;
      const fresh = await tx.query(
        `SELECT ${rt.selectList} FROM ${rt.tq} WHERE ${rt.pkq} = ? FOR UPDATE`,
        [outcome.row[rt.pk]],
      );
      if (fresh.rows.length === 0) continue; // deleted meanwhile: nothing left to protect
      outcome = await processRow(rt, fresh.rows[0]!);
      if (outcome.updates.length > 0 && !(await casUpdateOne(rt, tx, outcome))) {
        outcome.failures.push(
          ...outcome.updates.map((u) => ({
            column: u.column.name,
            code: "CONFLICT",
            message: "The row changed under a row lock; retry the job.",
          })),
        );
        outcome.updates = [];
      }
    }
    finals.push(outcome);
  }
  const failed: { pk: string; column: string }[] = [];
  for (const o of finals) {
    counters.rewrapped += o.updates.length;
    counters.skipped += o.skipped;
    counters.nulls += o.nulls;
    counters.failed += o.failures.length;
    for (const f of o.failures) {
      await recordFailure(rt, t, tx, o.pkText, f);
      failed.push({ pk: o.pkText, column: f.column });
    }
  }
  counters.kmsCalls = rt.limiter.calls - callsBefore;
  const newLast =
    rangeId === RETRY_RANGE_ID
      ? null
      : outcomes.length
        ? String(outcomes.at(-1)!.row[rt.pk])
        : (expectedLast ?? null);
  await tx.query(
    `UPDATE ${t.checkpoints} SET last_pk = ?, scanned = scanned + ?, rewrapped = rewrapped + ?, skipped = skipped + ?, nulls = nulls + ?, conflicts = conflicts + ?, failed = failed + ?, kms_calls = kms_calls + ?, worker = ?, updated_at = ? WHERE job_id = ? AND range_id = ?`,
    [
      newLast,
      counters.scanned,
      counters.rewrapped,
      counters.skipped,
      counters.nulls,
      counters.conflicts,
      counters.failed,
      counters.kmsCalls,
      workerId,
      new Date().toISOString(),
      rt.jobId,
      rangeId,
    ],
  );
  return { counters, failed };
}

async function recordFailure(
  rt: Runtime,
  t: StateTables,
  tx: SqlExecutor,
  pk: string,
  f: { column: string; code: string; message: string },
) {
  await tx.query(`DELETE FROM ${t.failures} WHERE job_id = ? AND pk = ? AND column_name = ?`, [
    rt.jobId,
    pk.slice(0, 255),
    f.column,
  ]);
  await tx.query(
    `INSERT INTO ${t.failures} (job_id, pk, column_name, code, message, at) VALUES (?, ?, ?, ?, ?, ?)`,
    [
      rt.jobId,
      pk.slice(0, 255),
      f.column,
      f.code.slice(0, 64),
      f.message,
      new Date().toISOString(),
    ],
  );
}
