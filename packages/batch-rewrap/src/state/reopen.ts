import type { SqlAdapter, SqlExecutor } from "../adapters/types.js";
import { countPendingRanges } from "./job-status.js";
import { orphanedState } from "./jobs.js";
import type { StateTables } from "./tables.js";

/**
 * An apply run on a job whose ranges are all done starts a new pass over the table:
 * every range back to pending, checkpoints back to the start with their counters at zero
 * (the job's totals then describe this pass). Failure records are kept: the pass and its
 * retry step redo them. Without this, a finished job id made `--apply` skip values written
 * under an old key after the job finished, while the dry run (which reads every row)
 * counted them.
 *
 * Runs under a lock on the job row, so of several workers or processes starting together
 * exactly one reopens; the others then see pending ranges and join the pass. A job with
 * ranges still pending is left as it is (that is a resume). Returns whether it reopened.
 */
export async function reopenIfFinished(
  db: SqlAdapter,
  t: StateTables,
  jobId: string,
): Promise<boolean> {
  return db.transaction(async (tx: SqlExecutor) => {
    const job = await tx.query(`SELECT job_id FROM ${t.jobs} WHERE job_id = ? FOR UPDATE`, [jobId]);
    if (job.rows.length === 0) throw orphanedState(jobId);
    if ((await countPendingRanges(tx, t, jobId)) > 0) return false;
    await tx.query(
      `UPDATE ${t.ranges} SET status = 'pending' WHERE job_id = ? AND status = 'done'`,
      [jobId],
    );
    await tx.query(
      `UPDATE ${t.checkpoints} SET last_pk = NULL, scanned = 0, rewrapped = 0, skipped = 0, nulls = 0, conflicts = 0, failed = 0, kms_calls = 0, updated_at = ${t.now} WHERE job_id = ?`,
      [jobId],
    );
    await tx.query(
      `UPDATE ${t.jobs} SET status = 'running', updated_at = ${t.now} WHERE job_id = ?`,
      [jobId],
    );
    return true;
  });
}
