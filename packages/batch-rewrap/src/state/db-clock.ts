import type { SqlAdapter } from "../adapters/types.js";

/**
 * SQL for the database's current time as the state tables store times: ISO-8601 UTC text
 * with milliseconds (`2026-12-05T17:48:49.123Z`), the format earlier versions wrote from
 * the worker's clock, so old rows and new ones compare and parse alike.
 *
 * Heartbeats are written and aged with this one clock: a worker and a `retire` on
 * machines whose clocks disagree then still agree on how long a job has been idle.
 * PostgreSQL / PGlite: `clock_timestamp()` (the statement's time, not the transaction's
 * start, so a long batch does not date its commit back). MySQL / MariaDB: `UTC_TIMESTAMP(3)`,
 * independent of the session time zone.
 */
export function dbNowSql(db: Pick<SqlAdapter, "dialect">): string {
  return db.dialect === "mysql"
    ? "CONCAT(LEFT(DATE_FORMAT(UTC_TIMESTAMP(3), '%Y-%m-%dT%H:%i:%s.%f'), 23), 'Z')"
    : `to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}
