import { isRetryableTxError, type Row } from "../adapters/types.js";
import { readCheckpoint } from "../state/checkpoints.js";
import { type Claim, memoryClaimer, sessionClaimer } from "../state/claims.js";
import type { KeyRange } from "../state/jobs.js";
import { keyOrder } from "../state/key-order.js";
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
  const order = keyOrder(rt.table);
  const claimer = rt.db.sessions
    ? await sessionClaimer(rt.db, t, rt.job.id, order)
    : memoryClaimer(rt.db, t, rt.job.id, order);
  try {
    for (;;) {
      if (rt.options.signal?.aborted) return { stopped: true };
      // Busy from the claim on: a claim takes a few queries (see clipToSplitOffs), and a
      // worker finding nothing meanwhile must wait for this one, not end.
      state.demand.busy++;
      let claim: Claim | undefined;
      try {
        claim = await claimer.next();
      } finally {
        if (!claim) state.demand.busy--;
      }
      if (!claim) {
        if (state.demand.busy === 0) {
          state.demand.notify(); // the others waiting on a claim in progress: none is coming
          break;
        }
        await state.demand.idle();
        continue;
      }
      let result: "done" | "stopped" | "lost";
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

/** Batches read ahead of the one committing: while batch i commits, i+1 is in the KMS slots and i+2 is read. */
export const READ_AHEAD = 3;

type Batch = { rows: Row[]; outcomes: Promise<RowOutcome[]> };
/** The range has no rows left, or (STOP) the signal aborted before the read. */
const END: Batch = { rows: [], outcomes: Promise.resolve([]) };
const STOP: Batch = { rows: [], outcomes: Promise.resolve([]) };

async function workRange(scope: WorkerScope, claim: Claim, slots: Slots) {
  const { rt, t, state } = scope;
  const { range } = claim;
  let last = await readCheckpoint(rt.db, t, rt.job.id, range.rangeId);
  const lastKey = (b: Batch) => String(b.rows.at(-1)![rt.table.pk]);
  // Pipelined: up to READ_AHEAD batches are read in key order, each as soon as the one
  // before it is, and their values queue for the worker's KMS slots (FIFO, never more than
  // `concurrency` in flight). So the CPU/KMS work of the next batches runs while a batch
  // commits, and the read after them runs too: neither the KMS nor the database waits for
  // the other.
  const start = async (from: string | null): Promise<Batch> => {
    const rows = await fetchBatch(rt, range, from);
    if (rows.length === 0) return END;
    const outcomes = Promise.all(rows.map((row) => slots.run(() => processRow(rt, row))));
    outcomes.catch(() => {}); // awaited when its turn comes
    return { rows, outcomes };
  };
  let reads: Promise<Batch>[] = [];
  const topUp = () => {
    while (reads.length < READ_AHEAD) {
      const prev = reads.at(-1);
      const read = prev
        ? prev.then((b) =>
            b === END || b === STOP ? b : rt.options.signal?.aborted ? STOP : start(lastKey(b)),
          )
        : start(last);
      read.catch(() => {}); // awaited when its turn comes
      reads.push(read);
    }
  };
  const drop = async () => {
    const pending = reads;
    reads = [];
    for (const r of pending) await r.then((b) => b.outcomes).catch(() => {});
  };
  // KMS calls are counted per batch over back-to-back windows (a batch's calls start
  // before the batch before it commits).
  let mark = rt.limits.limiter.calls;
  for (;;) {
    // Stopping (Ctrl-C): no new reads, but the batches already read are in the KMS slots or
    // done; commit them rather than throw their KMS work away, then stop.
    const stopping = Boolean(rt.options.signal?.aborted);
    for (let attempt = 1; ; attempt++) {
      let committing = false;
      try {
        if (!stopping) topUp();
        else if (reads.length === 0) return "stopped" as const; // all committed, or dropped
        const current = await reads[0]!;
        if (current === STOP || current === END) {
          await drop();
          return current === STOP ? ("stopped" as const) : ("done" as const);
        }
        const outcomes = await current.outcomes;
        committing = true;
        const { counters, failed } = await rt.db.transaction((tx) =>
          commitBatch(scope, tx, {
            rangeId: range.rangeId,
            expectedLast: last,
            outcomes,
            callsBefore: mark,
          }),
        );
        committing = false;
        mark += counters.kmsCalls;
        reads.shift();
        account(state, counters, failed);
        last = lastKey(current);
        state.onBatch();
        if (state.demand.waiting > 0 && !stopping) {
          // Split beyond everything read so far (the reads in flight finish first).
          const read = await Promise.all(reads);
          const tail = read.length === 0 ? current : read.at(-1)!;
          await offerSplit(rt, claim, tail, state.demand);
        }
        break;
      } catch (error) {
        const retry = isRetryableTxError(error) && attempt < 5;
        // A deadlock rolled the commit back, but the batch's new values still hold (each
        // write compares the old value): commit them again rather than redo their KMS work.
        if (retry && committing) continue;
        await drop();
        if (error instanceof LostClaim) return "lost" as const;
        if (!retry) throw error;
      }
    }
  }
}

/**
 * A worker of this run is idle: give it the upper half of what is left of this range
 * (beyond the batches already read ahead).
 */
async function offerSplit(
  rt: Runtime,
  claim: Claim,
  lastRead: { rows: Row[] },
  demand: Demand,
): Promise<void> {
  const tail = lastRead.rows.at(-1);
  if (!tail) return; // the range is finished: nothing to give
  const at = await splitPoint(rt, claim.range, String(tail[rt.table.pk]));
  if (at === undefined) return;
  await claim.split(at);
  demand.notify();
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
