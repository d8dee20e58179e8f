import { ConfigError } from "@envelope/core";
import type { SqlExecutor } from "../adapters/types.js";
import { advanceCheckpoint, lockCheckpoint } from "../state/checkpoints.js";
import { recordFailure } from "../state/failures.js";
import { checkJobRow, RETRY_RANGE_ID } from "../state/jobs.js";
import { casUpdateMany, casUpdateOne } from "./cas.js";
import { type Counters, zeroCounters } from "./counters.js";
import { processRow, type RowOutcome } from "./process.js";
import type { WorkerScope } from "./worker-scope.js";

/** The checkpoint moved since this worker read it: another worker owns the range now. */
export class LostClaim extends Error {}

/** A batch ready to commit. */
export interface BatchToCommit {
  rangeId: number;
  /** Where the worker read the checkpoint; undefined skips the ownership check (retry step). */
  expectedLast: string | null | undefined;
  outcomes: RowOutcome[];
  /** The limiter's call count before the batch's KMS work: the batch's calls are the difference. */
  callsBefore: number;
}

/**
 * One transaction: check this worker still owns the range (the checkpoint is where it
 * left it), compare-and-swap each changed row, redo rows the application changed
 * meanwhile (locked, so they cannot change again), record failures, and move the
 * checkpoint. A crash before COMMIT loses the whole batch and nothing else.
 */
export async function commitBatch(
  { rt, t, workerId }: WorkerScope,
  tx: SqlExecutor,
  batch: BatchToCommit,
): Promise<{ counters: Counters; failed: { pk: string; column: string }[] }> {
  const { rangeId, expectedLast, outcomes } = batch;
  // The retry step's batches run while that step holds the job row (see checkJobRow).
  await checkJobRow(tx, t, rt.job.id, rt.job.spec, rangeId !== RETRY_RANGE_ID);
  const checkpoint = await lockCheckpoint(tx, t, rt.job.id, rangeId);
  if (!checkpoint) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Job ${rt.job.id} has no checkpoint for range ${rangeId}; its state tables were changed by hand.`,
    );
  }
  if (expectedLast !== undefined && checkpoint.lastPk !== expectedLast) throw new LostClaim();

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
        `SELECT ${rt.table.selectList} FROM ${rt.table.q} WHERE ${rt.table.pkq} = ? FOR UPDATE`,
        [outcome.row[rt.table.pk]],
      );
      if (fresh.rows.length === 0) continue; // deleted meanwhile: nothing left to protect
      outcome = await processRow(rt, fresh.rows[0]!);
      if (outcome.updates.length > 0 && !(await casUpdateOne(rt, tx, outcome))) {
        outcome.failures.push(
          ...outcome.updates
            .filter((u) => !u.setOnly)
            .map((u) => ({
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
    // A blind index written with its value is not a value of its own.
    counters.rewrapped += o.updates.filter((u) => !u.setOnly).length;
    counters.skipped += o.skipped;
    counters.nulls += o.nulls;
    counters.failed += o.failures.length;
    for (const f of o.failures) {
      await recordFailure(tx, t, rt.job.id, o.pkText, f);
      failed.push({ pk: o.pkText, column: f.column });
    }
  }
  counters.kmsCalls = rt.limits.limiter.calls - batch.callsBefore;
  const lastPk =
    rangeId === RETRY_RANGE_ID
      ? null
      : outcomes.length
        ? String(outcomes.at(-1)!.row[rt.table.pk])
        : (expectedLast ?? null);
  await advanceCheckpoint(tx, t, rt.job.id, rangeId, { lastPk, counters, workerId });
  return { counters, failed };
}
