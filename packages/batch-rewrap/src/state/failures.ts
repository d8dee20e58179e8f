import type { SqlExecutor } from "../adapters/types.js";
import type { StateTables } from "./tables.js";

/** A value the job could not do. */
export interface FailureRecord {
  column: string;
  code: string;
  message: string;
}

/** Primary keys are stored cut to the failures table's VARCHAR(255). */
export const failurePk = (pk: string): string => pk.slice(0, 255);

/** Records (or replaces) the failure of one value, inside the batch's transaction. */
export async function recordFailure(
  tx: SqlExecutor,
  t: StateTables,
  jobId: string,
  pk: string,
  f: FailureRecord,
): Promise<void> {
  await tx.query(`DELETE FROM ${t.failures} WHERE job_id = ? AND pk = ? AND column_name = ?`, [
    jobId,
    failurePk(pk),
    f.column,
  ]);
  await tx.query(
    `INSERT INTO ${t.failures} (job_id, pk, column_name, code, message, at) VALUES (?, ?, ?, ?, ?, ?)`,
    [jobId, failurePk(pk), f.column, f.code.slice(0, 64), f.message, new Date().toISOString()],
  );
}

/** Forgets every recorded failure of one row (the retry step re-records what still fails). */
export async function clearRowFailures(
  tx: SqlExecutor,
  t: StateTables,
  jobId: string,
  pk: string,
): Promise<void> {
  await tx.query(`DELETE FROM ${t.failures} WHERE job_id = ? AND pk = ?`, [jobId, pk]);
}

/** The failed values of a job, as primary key → columns, in key order. */
export async function failedValuesByPk(
  q: SqlExecutor,
  t: StateTables,
  jobId: string,
): Promise<Map<string, Set<string>>> {
  const { rows } = await q.query(
    `SELECT pk, column_name FROM ${t.failures} WHERE job_id = ? ORDER BY pk, column_name`,
    [jobId],
  );
  const byPk = new Map<string, Set<string>>();
  for (const f of rows) {
    const key = String(f.pk);
    if (!byPk.has(key)) byPk.set(key, new Set());
    byPk.get(key)!.add(String(f.column_name));
  }
  return byPk;
}

/** Outstanding failures by error code. */
export async function failureCounts(
  q: SqlExecutor,
  t: StateTables,
  jobId: string,
): Promise<Record<string, number>> {
  const { rows } = await q.query(
    `SELECT code, COUNT(*) AS n FROM ${t.failures} WHERE job_id = ? GROUP BY code`,
    [jobId],
  );
  return Object.fromEntries(rows.map((r) => [String(r.code), Number(r.n)]));
}

/** The first `limit` failed values in key order, for the report. */
export async function sampleFailures(
  q: SqlExecutor,
  t: StateTables,
  jobId: string,
  limit = 20,
): Promise<{ pk: string; column: string; code: string; message: string }[]> {
  const { rows } = await q.query(
    `SELECT pk, column_name, code, message FROM ${t.failures} WHERE job_id = ? ORDER BY pk LIMIT ${Math.trunc(limit)}`,
    [jobId],
  );
  return rows.map((r) => ({
    pk: String(r.pk),
    column: String(r.column_name),
    code: String(r.code),
    message: String(r.message),
  }));
}
