import { isRetryableTxError, type Row } from "../adapters/types.js";
import { readCheckpoint } from "../state/checkpoints.js";
import { type Claim, memoryClaimer, sessionClaimer } from "../state/claims.js";
import type { KeyRange } from "../state/jobs.js";
import { commitBatch, LostClaim } from "./commit.js";
import { processRow, type RowOutcome } from "./process.js";
import { retryFailures } from "./retry.js";
import { account } from "./run-state.js";
import type { Runtime } from "./runtime.js";
import { Slots } from "./slots.js";
import { type Demand, splitPoint } from "./split.js";
import type { WorkerScope } from "./worker-scope.js";

export type { RunState } from "./run-state.js";

/**
 * One worker: claims ranges until none are left, works each in batches (fetch by keyset
 * → KMS work → one transaction with the compare-and-swap updates and the checkpoint),
 * then, once all ranges are done, retries recorded failures. With nothing left to claim
 * while other workers of this run still work, it waits for one of them to split its range
 * (see {@link Demand}). Returns whether it stopped early because the signal aborted.
 */
export async function work(scope: WorkerScope): Promise<{ stopped: boolean }> {
  const { rt, t, state } = scope;
  const slots = new Slots(rt.limits.concurrency);
  const claimer = rt.db.sessions
    ? await sessionClaimer(rt.db, t, rt.job.id)
    : memoryClaimer(rt.db, t, rt.job.id);
  try {
    for (;;) {
      if (rt.options.signal?.aborted) return { stopped: true };
      const claim = await claimer.next();
      if (!claim) {
        if (state.demand.busy === 0) break;
        await state.demand.idle();
        continue;
      }
      let result: "done" | "stopped" | "lost";
      state.demand.busy++;
      try {
        result = await workRange(scope, claim, slots);
        await claim.release(result === "done");
      } catch (error) {
        await claim.release(false).catch(() => {});
        throw error;
      } finally {
        state.demand.busy--;
        state.demand.notify();
      }
      if (result === "stopped") return { stopped: true };
    }
  } finally {
    await claimer.close();
  }
  if (rt.options.signal?.aborted) return { stopped: true };
  await retryFailures(scope);
  return { stopped: Boolean(rt.options.signal?.aborted) };
}

async function workRange(scope: WorkerScope, claim: Claim, slots: Slots) {
  const { rt, t, state } = scope;
  const { range } = claim;
  let last = await readCheckpoint(rt.db, t, rt.job.id, range.rangeId);
  // Pipelined: the next batch is read as soon as this one is, and its values queue for the
  // worker's KMS slots behind this batch's, so the KMS is busy while a batch is read, while
  // its last values finish and while it commits (never more than `concurrency` in flight).
  type Batch = { rows: Row[]; outcomes: Promise<RowOutcome[]> };
  const start = async (from: string | null): Promise<Batch> => {
    const rows = await fetchBatch(rt, range, from);
    const outcomes = Promise.all(rows.map((row) => slots.run(() => processRow(rt, row))));
    outcomes.catch(() => {}); // awaited when its turn comes
    return { rows, outcomes };
  };
  let current: Batch | undefined;
  let ahead: Batch | undefined;
  const drop = async () => {
    for (const b of [current, ahead]) await b?.outcomes.catch(() => {});
    current = ahead = undefined;
  };
  for (;;) {
    if (rt.options.signal?.aborted) {
      await drop();
      return "stopped" as const;
    }
    for (let attempt = 1; ; attempt++) {
      current = ahead ?? (await start(last));
      ahead = undefined;
      if (current.rows.length === 0) return "done" as const;
      try {
        const before = rt.limits.limiter.calls;
        const next = String(current.rows.at(-1)![rt.table.pk]);
        if (!rt.options.signal?.aborted) ahead = await start(next);
        const outcomes = await current.outcomes;
        const { counters, failed } = await rt.db.transaction((tx) =>
          commitBatch(scope, tx, {
            rangeId: range.rangeId,
            expectedLast: last,
            outcomes,
            callsBefore: before,
          }),
        );
        account(state, counters, failed);
        last = next;
        state.onBatch();
        if (
          state.demand.waiting > 0 &&
          !(await offerSplit(rt, claim, ahead ?? current, state.demand))
        ) {
          await drop();
          return "lost" as const;
        }
        break;
      } catch (error) {
        await drop();
        if (error instanceof LostClaim) return "lost" as const;
        if (!isRetryableTxError(error) || attempt >= 5) throw error;
      }
    }
  }
}

/**
 * A worker of this run is idle: give it the upper half of what is left of this range
 * (beyond the batch already read ahead). False when this worker lost the range meanwhile.
 */
async function offerSplit(
  rt: Runtime,
  claim: Claim,
  lastRead: { rows: Row[] },
  demand: Demand,
): Promise<boolean> {
  const tail = lastRead.rows.at(-1);
  if (!tail) return true; // the range is finished: nothing to give
  const at = await splitPoint(rt, claim.range, String(tail[rt.table.pk]));
  if (at === undefined) return true;
  const kept = await claim.split(at);
  demand.notify();
  return kept;
}

async function fetchBatch(rt: Runtime, range: KeyRange, last: string | null): Promise<Row[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (last !== null) {
    where.push(`${rt.table.pkq} > ?`);
    params.push(last);
  } else if (range.lo !== null) {
    where.push(`${rt.table.pkq} >= ?`);
    params.push(range.lo);
  }
  if (range.hi !== null) {
    where.push(`${rt.table.pkq} < ?`);
    params.push(range.hi);
  }
  const sql = `SELECT ${rt.table.selectList} FROM ${rt.table.q} ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY ${rt.table.pkq} LIMIT ?`;
  return (await rt.db.query(sql, [...params, rt.limits.batchSize])).rows;
}
