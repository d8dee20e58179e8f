import { ConfigError } from "@envelope/core";
import { mapLimit } from "@envelope/core/internal";
import { isRetryableTxError, type Row, type SqlExecutor } from "../adapters/types.js";
import { memoryClaimer, sessionClaimer } from "../state/claims.js";
import { type KeyRange, RETRY_RANGE_ID } from "../state/jobs.js";
import type { StateTables } from "../state/tables.js";
import { casUpdateMany, casUpdateOne } from "./cas.js";
import { addCounters, type Counters, zeroCounters } from "./counters.js";
import type { Runtime } from "./prepare.js";
import { processRow, type RowOutcome } from "./process.js";
import { Slots } from "./slots.js";

/** Shared by the worker loops of one run: counters and the stop signal. */
export interface RunState {
  run: Counters;
  onBatch: () => void;
  /**
   * Values (`pk \0 column`) this run left failed. `run.failed` is its size, so a value that
   * fails in a range and again in the retry step counts once, and one the retry step
   * fixes counts as not failed.
   */
  failedKeys: Set<string>;
  /** Rows a range of this run already counted as scanned (the retry step does not recount them). */
  failedRows: Set<string>;
}

const failureKey = (pk: string, column: string) => `${pk.slice(0, 255)}\u0000${column}`;

/** Adds a committed batch to the run's counters, counting each failed value once. */
function account(
  state: RunState,
  counters: Counters,
  failed: readonly { pk: string; column: string }[],
  retried?: readonly { pk: string; column: string }[],
): void {
  for (const r of retried ?? []) state.failedKeys.delete(failureKey(r.pk, r.column));
  for (const f of failed) {
    state.failedKeys.add(failureKey(f.pk, f.column));
    state.failedRows.add(f.pk.slice(0, 255));
  }
  addCounters(state.run, { ...counters, failed: 0 });
  state.run.failed = state.failedKeys.size;
}

class LostClaim extends Error {}

const retrying = new WeakMap<object, Set<string>>();

/**
 * One worker: claims ranges until none are left, works each in batches (fetch by keyset
 * → KMS work → one transaction with the compare-and-swap updates and the checkpoint),
 * then, once all ranges are done, retries recorded failures. Returns whether it stopped
 * early because the signal aborted.
 */
export async function work(
  rt: Runtime,
  t: StateTables,
  state: RunState,
  workerId: string,
): Promise<{ stopped: boolean }> {
  const slots = new Slots(rt.concurrency);
  const claimer = rt.db.sessions
    ? await sessionClaimer(rt.db, t, rt.jobId)
    : memoryClaimer(rt.db, t, rt.jobId);
  try {
    for (;;) {
      if (rt.options.signal?.aborted) return { stopped: true };
      const claim = await claimer.next();
      if (!claim) break;
      let result: "done" | "stopped" | "lost";
      try {
        result = await workRange(rt, t, state, workerId, claim.range, slots);
      } catch (error) {
        await claim.release(false).catch(() => {});
        throw error;
      }
      await claim.release(result === "done");
      if (result === "stopped") return { stopped: true };
    }
  } finally {
    await claimer.close();
  }
  if (rt.options.signal?.aborted) return { stopped: true };
  await retryFailures(rt, t, state, workerId);
  return { stopped: Boolean(rt.options.signal?.aborted) };
}

async function workRange(
  rt: Runtime,
  t: StateTables,
  state: RunState,
  workerId: string,
  range: KeyRange,
  slots: Slots,
) {
  const { rows: cp } = await rt.db.query(
    `SELECT last_pk FROM ${t.checkpoints} WHERE job_id = ? AND range_id = ?`,
    [rt.jobId, range.rangeId],
  );
  let last = cp[0]?.last_pk === null || cp[0]?.last_pk === undefined ? null : String(cp[0].last_pk);
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
        const before = rt.limiter.calls;
        const next = String(current.rows.at(-1)![rt.pk]);
        if (!rt.options.signal?.aborted) ahead = await start(next);
        const outcomes = await current.outcomes;
        const { counters, failed } = await rt.db.transaction((tx) =>
          commitBatch(rt, t, tx, range.rangeId, last, outcomes, workerId, before),
        );
        account(state, counters, failed);
        last = next;
        state.onBatch();
        break;
      } catch (error) {
        await drop();
        if (error instanceof LostClaim) return "lost" as const;
        if (!isRetryableTxError(error) || attempt >= 5) throw error;
      }
    }
  }
}

async function fetchBatch(rt: Runtime, range: KeyRange, last: string | null): Promise<Row[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (last !== null) {
    where.push(`${rt.pkq} > ?`);
    params.push(last);
  } else if (range.lo !== null) {
    where.push(`${rt.pkq} >= ?`);
    params.push(range.lo);
  }
  if (range.hi !== null) {
    where.push(`${rt.pkq} < ?`);
    params.push(range.hi);
  }
  const sql = `SELECT ${rt.selectList} FROM ${rt.tq} ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY ${rt.pkq} LIMIT ?`;
  return (await rt.db.query(sql, [...params, rt.batchSize])).rows;
}

/**
 * One transaction: check this worker still owns the range (the checkpoint is where it
 * left it), compare-and-swap each changed row, redo rows the application changed
 * meanwhile (locked, so they cannot change again), record failures, and move the
 * checkpoint. A crash before COMMIT loses the whole batch and nothing else.
 */
async function commitBatch(
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

/**
 * Once every range is done, one worker (the one that locks the job row) retries the
 * values recorded as failed: a rerun of the same job finishes what a failing KMS left.
 */
async function retryFailures(
  rt: Runtime,
  t: StateTables,
  state: RunState,
  workerId: string,
): Promise<void> {
  const run = async (q: SqlExecutor) => {
    const pending = await q.query(
      `SELECT COUNT(*) AS n FROM ${t.ranges} WHERE job_id = ? AND status = 'pending'`,
      [rt.jobId],
    );
    if (Number(pending.rows[0]?.n ?? 0) > 0) return;
    const { rows: failed } = await q.query(
      `SELECT pk, column_name FROM ${t.failures} WHERE job_id = ? ORDER BY pk, column_name`,
      [rt.jobId],
    );
    const byPk = new Map<string, Set<string>>();
    for (const f of failed) {
      const key = String(f.pk);
      if (!byPk.has(key)) byPk.set(key, new Set());
      byPk.get(key)!.add(String(f.column_name));
    }
    const keys = [...byPk.keys()];
    for (let i = 0; i < keys.length; i += rt.batchSize) {
      if (rt.options.signal?.aborted) return;
      const slice = keys.slice(i, i + rt.batchSize);
      const { rows } = await rt.db.query(
        `SELECT ${rt.selectList} FROM ${rt.tq} WHERE ${rt.pkq} IN (${slice.map(() => "?").join(", ")})`,
        slice,
      );
      const before = rt.limiter.calls;
      const outcomes = await mapLimit(rows, rt.concurrency, (row) =>
        processRow(rt, row, byPk.get(String(row[rt.pk]))),
      );
      const { counters, failed } = await rt.db.transaction(async (tx) => {
        // Clear the old records of this slice; commitBatch re-records what still fails.
        for (const pk of slice)
          await tx.query(`DELETE FROM ${t.failures} WHERE job_id = ? AND pk = ?`, [rt.jobId, pk]);
        return commitBatch(rt, t, tx, RETRY_RANGE_ID, undefined, outcomes, workerId, before);
      });
      // Rows a range of this run already read are not scanned twice.
      counters.scanned = rows.filter(
        (r) => !state.failedRows.has(String(r[rt.pk]).slice(0, 255)),
      ).length;
      const retried = slice.flatMap((pk) =>
        [...(byPk.get(pk) ?? [])].map((column) => ({ pk, column })),
      );
      account(state, counters, failed, retried);
      state.onBatch();
    }
    await q.query(`UPDATE ${t.jobs} SET status = 'done', updated_at = ? WHERE job_id = ?`, [
      new Date().toISOString(),
      rt.jobId,
    ]);
  };
  if (!rt.db.sessions) {
    // PGlite: one process, so an in-memory flag keeps a second worker loop out.
    const busy = retrying.get(rt.db) ?? new Set<string>();
    retrying.set(rt.db, busy);
    if (busy.has(rt.jobId)) return;
    busy.add(rt.jobId);
    try {
      return await run(rt.db);
    } finally {
      busy.delete(rt.jobId);
    }
  }
  const session = await rt.db.session();
  try {
    await session.query("START TRANSACTION");
    const { rows } = await session.query(
      `SELECT job_id FROM ${t.jobs} WHERE job_id = ? FOR UPDATE SKIP LOCKED`,
      [rt.jobId],
    );
    if (rows.length > 0) await run(session);
    await session.query("COMMIT");
  } catch (error) {
    await session.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    await session.release();
  }
}
