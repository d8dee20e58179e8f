import { mapLimit } from "@envelope/core/internal";
import { isDataException, type Row, type SqlExecutor } from "../adapters/types.js";
import { clearRowFailures, failedValuesByPk } from "../state/failures.js";
import { countPendingRanges, markJobDone, tryLockJob } from "../state/job-status.js";
import { RETRY_RANGE_ID } from "../state/jobs.js";
import { commitBatch } from "./commit.js";
import { processRow } from "./process.js";
import { account } from "./run-state.js";
import type { WorkerScope } from "./worker-scope.js";

const retrying = new WeakMap<object, Set<string>>();

/**
 * Once every range is done, one worker (the one that locks the job row) retries the
 * values recorded as failed: a rerun of the same job finishes what a failing KMS left.
 */
export async function retryFailures(scope: WorkerScope): Promise<void> {
  const { rt, t, state } = scope;
  const run = async (q: SqlExecutor) => {
    if ((await countPendingRanges(q, t, rt.job.id)) > 0) return;
    const byPk = await failedValuesByPk(q, t, rt.job.id);
    const keys = [...byPk.keys()];
    for (let i = 0; i < keys.length; i += rt.limits.batchSize) {
      if (rt.options.signal?.aborted) return;
      const slice = keys.slice(i, i + rt.limits.batchSize);
      const rows = await rowsOf(scope, slice);
      const before = rt.limits.limiter.calls;
      const outcomes = await mapLimit(rows, rt.limits.concurrency, (row) =>
        processRow(rt, row, byPk.get(String(row[rt.table.pk]))),
      );
      const { counters, failed } = await rt.db.transaction(async (tx) => {
        // Clear the old records of this slice; commitBatch re-records what still fails.
        for (const pk of slice) await clearRowFailures(tx, t, rt.job.id, pk);
        return commitBatch(scope, tx, {
          rangeId: RETRY_RANGE_ID,
          expectedLast: undefined,
          outcomes,
          callsBefore: before,
        });
      });
      // Rows a range of this run already read are not scanned twice.
      counters.scanned = rows.filter(
        (r) => !state.failedRows.has(String(r[rt.table.pk]).slice(0, 255)),
      ).length;
      const retried = slice.flatMap((pk) =>
        [...(byPk.get(pk) ?? [])].map((column) => ({ pk, column })),
      );
      account(state, counters, failed, retried);
      state.onBatch();
    }
    await markJobDone(q, t, rt.job.id);
  };
  if (!rt.db.sessions) {
    // PGlite: one process, so an in-memory flag keeps a second worker loop out.
    const busy = retrying.get(rt.db) ?? new Set<string>();
    retrying.set(rt.db, busy);
    if (busy.has(rt.job.id)) return;
    busy.add(rt.job.id);
    try {
      return await run(rt.db);
    } finally {
      busy.delete(rt.job.id);
    }
  }
  const session = await rt.db.session();
  try {
    await session.query("START TRANSACTION");
    if (await tryLockJob(session, t, rt.job.id)) await run(session);
    await session.query("COMMIT");
  } catch (error) {
    await session.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    await session.release();
  }
}

/**
 * The rows of recorded failures, by primary key. A recorded key the key column's type cannot
 * hold (the failures table is the database's, and whoever can write it can put anything
 * there) names no row: PostgreSQL refuses the whole `IN` list for it, so the slice is read
 * again key by key and such a key is left out (its record is cleared with the slice's).
 */
async function rowsOf(scope: WorkerScope, pks: string[]): Promise<Row[]> {
  const { rt } = scope;
  try {
    const { rows } = await rt.db.query(
      `SELECT ${rt.table.selectList} FROM ${rt.table.q} WHERE ${rt.table.pkq} IN (${pks.map(() => "?").join(", ")})`,
      pks,
    );
    return rows;
  } catch (error) {
    if (!isDataException(error)) throw error;
    if (pks.length === 1) return [];
    const rows: Row[] = [];
    for (const pk of pks) rows.push(...(await rowsOf(scope, [pk])));
    return rows;
  }
}
