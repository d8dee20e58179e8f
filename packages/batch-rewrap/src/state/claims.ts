import type { SqlAdapter, SqlSession } from "../adapters/types.js";
import type { KeyRange } from "./jobs.js";
import type { StateTables } from "./tables.js";

/** A range this worker owns until `release`. */
export interface Claim {
  readonly range: KeyRange;
  /** Marks the range done (or leaves it pending) and lets others see it again. */
  release(done: boolean): Promise<void>;
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
      return {
        range,
        async release(done) {
          if (done) {
            await session.query(
              `UPDATE ${t.ranges} SET status = 'done' WHERE job_id = ? AND range_id = ?`,
              [jobId, range.rangeId],
            );
          }
          await session.query(done ? "COMMIT" : "ROLLBACK");
          open = false;
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

export function memoryClaimer(db: SqlAdapter, t: StateTables, jobId: string): Claimer {
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
      };
    },
    async close() {},
  };
}
