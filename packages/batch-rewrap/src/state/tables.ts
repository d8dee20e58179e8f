import type { SqlAdapter } from "../adapters/types.js";
import { checkName, quote } from "../sql/identifiers.js";
import { dbNowSql } from "./db-clock.js";

/** Names of the four state tables for a prefix (default `envelope_rewrap`). */
export interface StateTables {
  jobs: string;
  ranges: string;
  checkpoints: string;
  failures: string;
  /** SQL for the database's current time, the one clock of heartbeats (see {@link dbNowSql}). */
  now: string;
  /** The clause that makes a SELECT take a shared row lock (held to the transaction's end). */
  shareLock: string;
}

export function stateTables(db: SqlAdapter, prefix: string): StateTables {
  checkName(`${prefix}_checkpoints`, "stateTablePrefix", true);
  return {
    jobs: quote(db, `${prefix}_jobs`),
    ranges: quote(db, `${prefix}_ranges`),
    checkpoints: quote(db, `${prefix}_checkpoints`),
    failures: quote(db, `${prefix}_failures`),
    now: dbNowSql(db),
    shareLock: db.dialect === "mysql" ? "LOCK IN SHARE MODE" : "FOR SHARE",
  };
}

/**
 * Drops the four state tables of a prefix: the cleanup after a finished job whose report
 * you have kept (a later run of the same job then starts from scratch).
 *
 * @example
 * await dropStateTables(db, "envelope_rewrap");
 */
export async function dropStateTables(db: SqlAdapter, prefix: string): Promise<void> {
  const t = stateTables(db, prefix);
  for (const table of [t.jobs, t.ranges, t.checkpoints, t.failures]) {
    await db.query(`DROP TABLE IF EXISTS ${table}`);
  }
}

/**
 * Creates the state tables if missing. Jobs: one row per job (its spec). Ranges: the
 * primary-key ranges workers claim (`FOR UPDATE SKIP LOCKED`). Checkpoints: per range,
 * the last primary key done and the counters, committed in the same transaction as the
 * rows they describe. Failures: values the job could not do, by key and error code.
 */
export async function ensureStateTables(db: SqlAdapter, t: StateTables): Promise<void> {
  const big = "BIGINT NOT NULL DEFAULT 0";
  const engine = db.dialect === "mysql" ? " ENGINE=InnoDB" : "";
  const create = async (sql: string) => {
    try {
      await db.query(sql);
    } catch (error) {
      // Two workers starting together may race on CREATE TABLE IF NOT EXISTS: PostgreSQL
      // then reports a duplicate catalog row (23505), the table (42P07) or its row type
      // (42710) as existing. The table exists either way.
      const code = (error as { code?: unknown }).code;
      if (code !== "23505" && code !== "42P07" && code !== "42710") throw error;
    }
  };
  await create(
    `CREATE TABLE IF NOT EXISTS ${t.jobs} (job_id VARCHAR(100) NOT NULL PRIMARY KEY, spec TEXT NOT NULL, status VARCHAR(16) NOT NULL, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL)${engine}`,
  );
  await create(
    `CREATE TABLE IF NOT EXISTS ${t.ranges} (job_id VARCHAR(100) NOT NULL, range_id INT NOT NULL, lo TEXT NULL, hi TEXT NULL, status VARCHAR(16) NOT NULL, PRIMARY KEY (job_id, range_id))${engine}`,
  );
  await create(
    `CREATE TABLE IF NOT EXISTS ${t.checkpoints} (job_id VARCHAR(100) NOT NULL, range_id INT NOT NULL, last_pk TEXT NULL, scanned ${big}, rewrapped ${big}, skipped ${big}, nulls ${big}, conflicts ${big}, failed ${big}, kms_calls ${big}, worker VARCHAR(100) NULL, updated_at VARCHAR(32) NULL, PRIMARY KEY (job_id, range_id))${engine}`,
  );
  await create(
    `CREATE TABLE IF NOT EXISTS ${t.failures} (job_id VARCHAR(100) NOT NULL, pk VARCHAR(255) NOT NULL, column_name VARCHAR(64) NOT NULL, code VARCHAR(64) NOT NULL, message TEXT NOT NULL, at VARCHAR(32) NOT NULL, PRIMARY KEY (job_id, pk, column_name))${engine}`,
  );
}
