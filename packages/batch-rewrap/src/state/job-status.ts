import type { SqlAdapter, SqlExecutor, SqlSession } from "../adapters/types.js";
import { type StateTables, stateTables } from "./tables.js";

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
 * Marks the job stopped: this process was asked to stop (Ctrl-C, an aborted signal) and
 * every one of its workers has committed its last batch. Read by `findUnfinishedJobs` as
 * incomplete at once, not after the lease, unless another process of the job commits a
 * batch later. A done job stays done.
 */
export async function markJobStopped(q: SqlExecutor, t: StateTables, jobId: string): Promise<void> {
  await q.query(
    `UPDATE ${t.jobs} SET status = 'stopped', updated_at = ${t.now} WHERE job_id = ? AND status <> 'done'`,
    [jobId],
  );
}

/**
 * Public form of {@link markJobStopped}, for a process that leaves without waiting for its
 * batches (a CLI's second Ctrl-C): the batches it had not committed roll back with its
 * connections, and the job reads as incomplete at once instead of running until the
 * lease passes. A done job stays done and an unknown job changes nothing; without the state
 * tables it rejects (the database's error). It waits for the job row, which every batch
 * in flight holds (shared) until it commits, and the job's retry step (after every range is
 * done) holds until it ends.
 *
 * The row is locked first and marked after, in one transaction: the mark's time is then
 * read once those batches have committed. An UPDATE that waited for them itself would
 * carry the time it started at, older than their checkpoints, and the job would read as
 * running again (progress after the stop) until the lease passed.
 */
export async function stopJob(
  db: SqlAdapter,
  options: { jobId: string; stateTablePrefix?: string },
): Promise<void> {
  const t = stateTables(db, options.stateTablePrefix ?? "envelope_rewrap");
  await db.transaction(async (tx) => {
    await tx.query(`SELECT job_id FROM ${t.jobs} WHERE job_id = ? FOR UPDATE`, [options.jobId]);
    await markJobStopped(tx, t, options.jobId);
  });
}

/** Marks a stopped job running again: an apply run (a resume) has started on it. */
export async function markJobResumed(q: SqlExecutor, t: StateTables, jobId: string): Promise<void> {
  await q.query(
    `UPDATE ${t.jobs} SET status = 'running', updated_at = ${t.now} WHERE job_id = ? AND status = 'stopped'`,
    [jobId],
  );
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
