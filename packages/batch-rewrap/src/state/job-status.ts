import type { SqlExecutor, SqlSession } from "../adapters/types.js";
import type { StateTables } from "./tables.js";

/** Ranges of the job no worker has finished yet. */
export async function countPendingRanges(
  q: SqlExecutor,
  t: StateTables,
  jobId: string,
): Promise<number> {
  const { rows } = await q.query(
    `SELECT COUNT(*) AS n FROM ${t.ranges} WHERE job_id = ? AND status = 'pending'`,
    [jobId],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Marks the job done (every range done and its failures retried). */
export async function markJobDone(q: SqlExecutor, t: StateTables, jobId: string): Promise<void> {
  await q.query(`UPDATE ${t.jobs} SET status = 'done', updated_at = ${t.now} WHERE job_id = ?`, [
    jobId,
  ]);
}

/**
 * Tries to lock the job row in the session's open transaction without waiting: true when
 * this session holds it now, false when another worker does.
 */
export async function tryLockJob(
  session: SqlSession,
  t: StateTables,
  jobId: string,
): Promise<boolean> {
  const { rows } = await session.query(
    `SELECT job_id FROM ${t.jobs} WHERE job_id = ? FOR UPDATE SKIP LOCKED`,
    [jobId],
  );
  return rows.length > 0;
}
