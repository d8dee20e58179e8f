import { ConfigError } from "@envelope/core";
import { isDuplicateKey, type SqlAdapter, type SqlExecutor } from "../adapters/types.js";
import { quote } from "../sql/identifiers.js";
import type { StateTables } from "./tables.js";

/** What a job does; stored with the job so a resumed or joining worker can be checked. */
export interface JobSpec {
  kind: "rewrap" | "migrate";
  table: string;
  primaryKey: string;
  columns: string[];
  targets: string[];
  legacy?: string;
  /**
   * migrate: how each value's context is laid out (the records fields, or the CLI's
   * `--context` template). A migrate job is never resumed with another layout: the column
   * would end up holding values sealed under two different contexts, and the app opens
   * only one. Not part of the default job id (a changed layout must meet the old job, not
   * start a new one). Absent for rewrap jobs, for a `context` function given without
   * `contextLayout`, and in jobs stored before this field existed.
   */
  layout?: string;
}

/** A claimable slice of the primary-key space: lo ≤ pk < hi (null = unbounded). */
export interface KeyRange {
  rangeId: number;
  lo: string | null;
  hi: string | null;
}

/** The checkpoint row used by failure-retry passes (not a key range). */
export const RETRY_RANGE_ID = -1;
const MAX_RANGES = 10_000;

/**
 * Loads the job, or creates it with its ranges and checkpoints in one transaction.
 * When two workers start together, one inserts and the other sees the duplicate key and
 * loads it. A job with another spec under the same id is refused.
 */
export async function createOrLoadJob(
  db: SqlAdapter,
  t: StateTables,
  jobId: string,
  spec: JobSpec,
  plan: () => Promise<Omit<KeyRange, "rangeId">[]>,
): Promise<{ created: boolean }> {
  if (await loadAndCheck(db, t, jobId, spec)) return { created: false };
  const ranges = await plan();
  try {
    await db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO ${t.jobs} (job_id, spec, status, created_at, updated_at) VALUES (?, ?, 'running', ${t.now}, ${t.now})`,
        [jobId, JSON.stringify(spec)],
      );
      for (let i = 0; i < ranges.length; i += 200) {
        const slice = ranges.slice(i, i + 200);
        await tx.query(
          `INSERT INTO ${t.ranges} (job_id, range_id, lo, hi, status) VALUES ${slice.map(() => "(?, ?, ?, ?, 'pending')").join(", ")}`,
          slice.flatMap((r, j) => [jobId, i + j, r.lo, r.hi]),
        );
      }
      const ids = [RETRY_RANGE_ID, ...ranges.map((_, i) => i)];
      for (let i = 0; i < ids.length; i += 200) {
        const slice = ids.slice(i, i + 200);
        await tx.query(
          `INSERT INTO ${t.checkpoints} (job_id, range_id) VALUES ${slice.map(() => "(?, ?)").join(", ")}`,
          slice.flatMap((id) => [jobId, id]),
        );
      }
    });
    return { created: true };
  } catch (error) {
    if (!isDuplicateKey(error)) throw error;
    // Another worker created the job meanwhile, or its state rows outlived its jobs row.
    if (await loadAndCheck(db, t, jobId, spec)) return { created: false };
    throw orphanedState(jobId);
  }
}

/**
 * The job's ranges or checkpoints exist but its jobs row does not: the state tables were
 * changed by hand. Loading them would trust ranges marked done by nobody this job knows,
 * and an apply run would skip values still under an old key while reporting complete.
 */
export function orphanedState(jobId: string): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_CONFIG",
    `Job "${jobId}" has ranges or checkpoints in the state tables but no row in the jobs table: they were changed by hand, so its progress cannot be trusted. Run again with another job id (a new job goes over the whole table), or delete this job's rows from the ranges, checkpoints and failures tables. Nothing was written.`,
    { details: { field: "jobId", jobId } },
  );
}

async function loadAndCheck(
  db: SqlAdapter,
  t: StateTables,
  jobId: string,
  spec: JobSpec,
): Promise<boolean> {
  const { rows } = await db.query(`SELECT spec FROM ${t.jobs} WHERE job_id = ?`, [jobId]);
  if (rows.length === 0) return false;
  const stored = JSON.parse(String(rows[0]!.spec)) as JobSpec;
  const storedLayout = stored.layout;
  const layout = spec.layout;
  if (storedLayout !== undefined && layout !== undefined && storedLayout !== layout) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Job "${jobId}" sealed values with another context layout (${storedLayout.slice(0, 300)}) than this run would (${layout.slice(0, 300)}): the column would hold values under two contexts, and the app opens only one. Resume with the job's own --context / --records-config; if the job's layout was wrong, restore the table from before it (or re-encrypt those rows) before starting over. Nothing was written.`,
      { details: { field: "jobId", jobId } },
    );
  }
  if (!sameDefinition(stored, spec)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Job "${jobId}" exists with a different definition (table ${stored.table}, columns ${stored.columns.join(",")}, targets ${stored.targets.join(",")}). Use the same options to resume it, or another job id to start a new one.`,
      { details: { field: "jobId", jobId } },
    );
  }
  return true;
}

/** Same job definition, the context layout aside (an older job stored none). */
function sameDefinition(stored: JobSpec, spec: JobSpec): boolean {
  const { layout: _stored, ...storedRest } = stored;
  const { layout: _spec, ...rest } = spec;
  return JSON.stringify(storedRest) === JSON.stringify(rest);
}

/**
 * Checked in every batch's transaction, before any value is written: the job's row still
 * exists with this run's definition. The guards of `retire` and `rotate` find running
 * jobs through that row; a job whose row was deleted or re-pointed at another table by
 * hand would otherwise go on writing values under a key those guards no longer protect.
 *
 * With `lock`, the row is read under a shared lock held until the batch commits, so a
 * DELETE or UPDATE of it waits for the batch (and a `retire` after it counts the batch's
 * values). The retry step's batches read it without: that step holds the row FOR UPDATE
 * on its own session for its whole length (only one worker retries), so the row cannot
 * change under them, and a shared lock from another connection would wait on it forever.
 */
export async function checkJobRow(
  tx: SqlExecutor,
  t: StateTables,
  jobId: string,
  spec: JobSpec,
  lock: boolean,
): Promise<void> {
  const { rows } = await tx.query(
    `SELECT spec FROM ${t.jobs} WHERE job_id = ?${lock ? ` ${t.shareLock}` : ""}`,
    [jobId],
  );
  let stored: JobSpec | undefined;
  try {
    stored = rows.length === 0 ? undefined : (JSON.parse(String(rows[0]!.spec)) as JobSpec);
  } catch {
    stored = undefined;
  }
  if (stored && sameDefinition(stored, spec)) return;
  throw new ConfigError(
    "ENVELOPE_BAD_CONFIG",
    `Job "${jobId}" lost its row in the jobs table, or the row now defines another job, while this run was writing: the state tables were changed by hand. The run stopped; the batch in hand was not written (values already rewrapped stay correct). Check who edits the state tables, then run again with another job id.`,
    { details: { field: "jobId", jobId } },
  );
}

/** Range sizing bounds: rows per range when the size is adaptive. */
export const MAX_RANGE_ROWS = 10_000;

/**
 * Fewest batches an adaptive range holds. A worker reads ahead only within its range
 * (3 batches), so a range of one batch drains its KMS / RSA pipeline at every range end:
 * 7–10% of a local-rsa job's time went to those gaps with one-batch ranges.
 */
export const MIN_BATCHES_PER_RANGE = 4;

/**
 * How many ranges an adaptive plan aims at: 4 per worker, so a worker that finishes early
 * finds more to claim, with each range between {@link MIN_BATCHES_PER_RANGE} batches
 * (smaller ranges stall the read-ahead and only add claims; an idle worker of the same
 * run splits a busy one's range instead) and {@link MAX_RANGE_ROWS} rows (so a crash or a
 * new process never waits on a huge range). A 20,000-row table with 3 workers and
 * batches of 500 gets 10 ranges.
 */
export function planRangeCount(estimatedRows: number, workers: number, batchSize: number): number {
  const rows = Math.max(0, Math.floor(estimatedRows));
  let n = Math.max(1, workers) * 4;
  n = Math.min(n, Math.floor(rows / (Math.max(1, batchSize) * MIN_BATCHES_PER_RANGE)));
  n = Math.max(n, Math.ceil(rows / MAX_RANGE_ROWS));
  return Math.min(MAX_RANGES, Math.max(1, n));
}

/** How to size ranges: a fixed number of keys per range, or a number of ranges over about `rows` rows. */
export type RangeSizing = { rangeSize: number } | { ranges: number; rows: number };

/**
 * Splits the primary-key space into ranges. Integer keys: equal-width numeric ranges
 * from MIN to MAX (cheap, two index lookups). Other keys: boundaries every N keys, found
 * by index skips from the previous boundary. The first and last ranges are open-ended so
 * rows inserted during the job are covered. Sizing: `rangeSize` keys (integer keys: key
 * values) per range, or `ranges` ranges over the table's `rows`.
 */
export async function planRanges(
  db: SqlAdapter,
  table: string,
  primaryKey: string,
  integerKey: boolean,
  sizing: RangeSizing,
): Promise<Omit<KeyRange, "rangeId">[]> {
  const tq = quote(db, table);
  const pk = quote(db, primaryKey);
  const bounds: string[] = [];
  if (integerKey) {
    const { rows } = await db.query(`SELECT MIN(${pk}) AS lo, MAX(${pk}) AS hi FROM ${tq}`);
    const lo = rows[0]?.lo;
    const hi = rows[0]?.hi;
    if (lo !== null && lo !== undefined && hi !== null && hi !== undefined) {
      const min = BigInt(String(lo));
      const span = BigInt(String(hi)) - min + 1n;
      const count = BigInt(Math.max(1, "ranges" in sizing ? sizing.ranges : 1));
      let size =
        "rangeSize" in sizing ? BigInt(sizing.rangeSize) : (span + count - 1n) / count || 1n;
      if (span / size > BigInt(MAX_RANGES)) size = span / BigInt(MAX_RANGES) + 1n;
      for (let b = min + size; b <= BigInt(String(hi)); b += size) bounds.push(b.toString());
    }
  } else {
    const rangeSize =
      "rangeSize" in sizing
        ? sizing.rangeSize
        : Math.max(1, Math.ceil(sizing.rows / Math.max(1, sizing.ranges)));
    // OFFSET here only skips along the primary-key index from the previous boundary to
    // find the next one (planning, once per job); the row scan itself is pure keyset.
    let last: string | undefined;
    while (bounds.length < MAX_RANGES) {
      const where = last === undefined ? "" : `WHERE ${pk} > ?`;
      const { rows } = await db.query(
        `SELECT ${pk} AS k FROM ${tq} ${where} ORDER BY ${pk} LIMIT 1 OFFSET ?`,
        [...(last === undefined ? [] : [last]), last === undefined ? rangeSize : rangeSize - 1],
      );
      if (rows.length === 0) break;
      last = String(rows[0]!.k);
      bounds.push(last);
    }
  }
  const ranges: Omit<KeyRange, "rangeId">[] = [];
  let lo: string | null = null;
  for (const b of bounds) {
    ranges.push({ lo, hi: b });
    lo = b;
  }
  ranges.push({ lo, hi: null });
  return ranges;
}
