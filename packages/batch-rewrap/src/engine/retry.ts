import { mapLimit } from "@envelope/core/internal";
import type { SqlExecutor } from "../adapters/types.js";
import { RETRY_RANGE_ID } from "../state/jobs.js";
import type { StateTables } from "../state/tables.js";
import { commitBatch } from "./commit.js";
import type { Runtime } from "./prepare.js";
import { processRow } from "./process.js";
import { account, type RunState } from "./run-state.js";

const retrying = new WeakMap<object, Set<string>>();

/**
 * Once every range is done, one worker (the one that locks the job row) retries the
 * values recorded as failed: a rerun of the same job finishes what a failing KMS left.
 */
export async function retryFailures(
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
