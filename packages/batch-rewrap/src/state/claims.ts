import type { SqlAdapter, SqlExecutor, SqlSession } from "../adapters/types.js";
import type { KeyRange } from "./jobs.js";
import type { KeyOrder } from "./key-order.js";
import type { StateTables } from "./tables.js";

/** A range this worker owns until `release`. */
export interface Claim {
  /**
   * The range; `hi` moves down when the range is split, or when the claim finds ranges
   * split off it whose new end a crash lost (see {@link clipToSplitOffs}).
   */
  readonly range: KeyRange;
  /** Marks the range done (or leaves it pending) and lets others see it again. */
  release(done: boolean): Promise<void>;
  /**
   * Gives the keys from `at` up to this range's end to a new pending range (with its own
   * checkpoint), committed at once so an idle worker can claim it; this range then ends
   * at `at`, committed with the claim. The claim is kept throughout.
   */
  split(at: string): Promise<void>;
}

/**
 * Publishes the keys from `at` up to `range.hi` as a new pending range with its own
 * checkpoint. The job row is locked first, so two workers splitting at once pick
 * different range ids. The caller then ends its own range at `at` (setRangeEnd).
 */
async function insertSplitOff(
  q: SqlExecutor,
  t: StateTables,
  jobId: string,
  range: KeyRange,
  at: string,
): Promise<void> {
  await q.query(`SELECT job_id FROM ${t.jobs} WHERE job_id = ? FOR UPDATE`, [jobId]);
  const { rows } = await q.query(`SELECT MAX(range_id) AS m FROM ${t.ranges} WHERE job_id = ?`, [
    jobId,
  ]);
  const id = Number(rows[0]?.m ?? 0) + 1;
  await q.query(
    `INSERT INTO ${t.ranges} (job_id, range_id, lo, hi, status) VALUES (?, ?, ?, ?, 'pending')`,
    [jobId, id, at, range.hi],
  );
  await q.query(`INSERT INTO ${t.checkpoints} (job_id, range_id) VALUES (?, ?)`, [jobId, id]);
}

const setRangeEnd = (q: SqlExecutor, t: StateTables, jobId: string, range: KeyRange, at: string) =>
  q.query(`UPDATE ${t.ranges} SET hi = ? WHERE job_id = ? AND range_id = ?`, [
    at,
    jobId,
    range.rangeId,
  ]);

/**
 * Ends `range` at the first other range that starts inside it, in the claim's own
 * transaction (`q`). A split commits its split-off [at, hi) at once but this range's new
 * end only with the claim, so a worker killed in between leaves this range still ending
 * at hi: without this, the keys from `at` would be scanned (and counted) twice. The keys
 * below `at` are this range's: the checkpoint never passed `at` (after a split the worker
 * reads only up to it), so the clipped range goes on from its checkpoint.
 *
 * Cheap in the usual case: only a range a crash left like that has a newer range with
 * the same end (the first split-off copied it, and the top piece of every later split of
 * that one copies it again); a consistent set of ranges never shares an end. Only then
 * are the bounds compared, in the key's order.
 */
async function clipToSplitOffs(
  q: SqlExecutor,
  t: StateTables,
  jobId: string,
  range: KeyRange,
  order: KeyOrder,
): Promise<void> {
  const sameEnd = await q.query(
    `SELECT range_id FROM ${t.ranges} WHERE job_id = ? AND range_id > ? AND ${range.hi === null ? "hi IS NULL" : "hi = ?"} LIMIT 1`,
    range.hi === null ? [jobId, range.rangeId] : [jobId, range.rangeId, range.hi],
  );
  if (sameEnd.rows.length === 0) return;
  // Ranges split off this one (or off those) are newer: a range id is MAX + 1 when split off.
  const { rows } = await q.query(
    `SELECT lo FROM ${t.ranges} WHERE job_id = ? AND range_id > ? AND lo IS NOT NULL`,
    [jobId, range.rangeId],
  );
  const los = rows.map((r) => String(r.lo));
  const end = await order.firstBetween(q, los, range.lo, range.hi);
  if (end === undefined) return;
  await setRangeEnd(q, t, jobId, range, end);
  range.hi = end;
}

export interface Claimer {
  next(): Promise<Claim | undefined>;
  close(): Promise<void>;
}

const toRange = (r: Record<string, unknown>): KeyRange => ({
  rangeId: Number(r.range_id),
  lo: r.lo === null || r.lo === undefined ? null : String(r.lo),
  hi: r.hi === null || r.hi === undefined ? null : String(r.hi),
});

/**
 * Claims with `SELECT … FOR UPDATE SKIP LOCKED` inside a transaction this worker keeps
 * open while it works the range. Other workers skip the locked row; if this process
 * dies, the database drops its connection, rolls the transaction back and the range is
 * claimable again at once (progress lives in the checkpoints table, committed per batch).
 */
export async function sessionClaimer(
  db: SqlAdapter,
  t: StateTables,
  jobId: string,
  order: KeyOrder,
): Promise<Claimer> {
  const session: SqlSession = await db.session();
  let open = false;
  return {
    async next() {
      await session.query("START TRANSACTION");
      open = true;
      const { rows } = await session.query(
        `SELECT range_id, lo, hi FROM ${t.ranges} WHERE job_id = ? AND status = 'pending' ORDER BY range_id LIMIT 1 FOR UPDATE SKIP LOCKED`,
        [jobId],
      );
      if (rows.length === 0) {
        await session.query("COMMIT");
        open = false;
        return undefined;
      }
      const range = toRange(rows[0]!);
      await clipToSplitOffs(session, t, jobId, range, order); // on error, close() rolls back
      return {
        range,
        async release(done) {
          if (done) {
            await session.query(
              `UPDATE ${t.ranges} SET status = 'done' WHERE job_id = ? AND range_id = ?`,
              [jobId, range.rangeId],
            );
          }
          // COMMIT either way: the transaction holds only the claim, its splits' new end and
          // the done flag, and a range left pending must keep the end it was split at.
          await session.query("COMMIT");
          open = false;
        },
        async split(at) {
          // The new range is committed on another connection; this range's new end is
          // written in the claim's own transaction, which keeps holding its lock (no other
          // worker can take the range, and with it the batches read ahead, in between).
          // A crash before the claim commits restores the old end; the next claim of this
          // range ends it at the split-off again (clipToSplitOffs).
          try {
            await db.transaction((tx) => insertSplitOff(tx, t, jobId, range, at));
          } catch {
            return; // only an optimization: if it fails (a deadlock, say), the range stays whole
          }
          await setRangeEnd(session, t, jobId, range, at);
          range.hi = at;
        },
      };
    },
    async close() {
      if (open) await session.query("ROLLBACK").catch(() => {});
      await session.release();
    },
  };
}

// PGlite: one connection in one process, so claims are an in-memory set per adapter.
const claimed = new WeakMap<SqlAdapter, Set<string>>();

export function memoryClaimer(
  db: SqlAdapter,
  t: StateTables,
  jobId: string,
  order: KeyOrder,
): Claimer {
  const mine = claimed.get(db) ?? new Set<string>();
  claimed.set(db, mine);
  return {
    async next() {
      const { rows } = await db.query(
        `SELECT range_id, lo, hi FROM ${t.ranges} WHERE job_id = ? AND status = 'pending' ORDER BY range_id`,
        [jobId],
      );
      const row = rows.find((r) => !mine.has(`${jobId}/${r.range_id}`));
      if (!row) return undefined;
      const range = toRange(row);
      const key = `${jobId}/${range.rangeId}`;
      mine.add(key);
      try {
        // A split commits both halves at once here, but the state may come from elsewhere.
        await clipToSplitOffs(db, t, jobId, range, order);
      } catch (error) {
        mine.delete(key);
        throw error;
      }
      return {
        range,
        async release(done) {
          try {
            if (done)
              await db.query(
                `UPDATE ${t.ranges} SET status = 'done' WHERE job_id = ? AND range_id = ?`,
                [jobId, range.rangeId],
              );
          } finally {
            mine.delete(key);
          }
        },
        async split(at) {
          await db.transaction(async (tx) => {
            await insertSplitOff(tx, t, jobId, range, at);
            await setRangeEnd(tx, t, jobId, range, at);
          });
          range.hi = at;
        },
      };
    },
    async close() {},
  };
}
