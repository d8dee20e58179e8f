/** A row as the driver returns it: column name → value (Buffer/Uint8Array, string, number, null). */
export type Row = Record<string, unknown>;

export interface QueryResult {
  rows: Row[];
  /** Rows changed by INSERT / UPDATE / DELETE. */
  affected: number;
}

/** Runs SQL written with `?` placeholders (the adapter converts them for its driver). */
export interface SqlExecutor {
  query(sql: string, params?: readonly unknown[]): Promise<QueryResult>;
}

/** A dedicated connection: what a worker holds while it owns a range. */
export interface SqlSession extends SqlExecutor {
  release(): Promise<void>;
}

/**
 * What the engine needs from a database. Three implementations ship: PostgreSQL (`pg`),
 * MySQL/MariaDB (`mysql2`) and PGlite. Write your own for another driver by following
 * one of them.
 */
/** Options of an adapter that creates its own pool (from a URL or driver options). */
export interface AdapterOptions {
  /**
   * Most connections its pool opens at once. Default 8; a job with `workers: n` needs more
   * than n (each worker keeps one for its range claim), and about 2 × n to read and commit
   * without waiting on each other.
   */
  maxConnections?: number;
}

/** The pool size of an adapter that creates its own pool, unless `maxConnections` says otherwise. */
export const DEFAULT_MAX_CONNECTIONS = 8;

export interface SqlAdapter extends SqlExecutor {
  /** SQL dialect: quoting, introspection and upsert syntax. */
  readonly dialect: "postgres" | "mysql";
  /** Human name for messages: `postgresql`, `mysql`, `pglite`. */
  readonly name: string;
  /**
   * True when separate sessions exist (a server database): ranges are then claimed with
   * `SELECT … FOR UPDATE SKIP LOCKED` held by a session, so a crashed worker's range is
   * released the moment its connection drops. PGlite (one in-process connection) claims
   * in memory instead.
   */
  readonly sessions: boolean;
  /** Runs `fn` in one transaction (READ COMMITTED) on one connection. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** A dedicated connection (only when `sessions` is true). */
  session(): Promise<SqlSession>;
  /**
   * Connections the adapter's pool may open at once, when known. A job checks it: each
   * worker keeps one connection for its range claim (`session`), and reads and commits
   * need at least one more, so a pool of `workers` connections or fewer would wait forever.
   */
  readonly maxConnections?: number | undefined;
  /** Closes the pool / database if the adapter opened it. */
  close(): Promise<void>;
}

/** Errors a transaction may be retried after: deadlock, serialization failure, lock timeout. */
export function isRetryableTxError(error: unknown): boolean {
  const e = error as { code?: unknown; errno?: unknown };
  return e?.code === "40P01" || e?.code === "40001" || e?.errno === 1213 || e?.errno === 1205;
}

/** Duplicate key on insert (PostgreSQL 23505, MySQL 1062). */
export function isDuplicateKey(error: unknown): boolean {
  const e = error as { code?: unknown; errno?: unknown };
  return e?.code === "23505" || e?.errno === 1062;
}

/** A value the column's type cannot hold (PostgreSQL class 22, data exception). */
export function isDataException(error: unknown): boolean {
  const e = error as { code?: unknown };
  return typeof e?.code === "string" && /^22[0-9A-Z]{3}$/.test(e.code);
}

/** `?` → `$1, $2, …` for PostgreSQL. Our SQL never has `?` in literals or identifiers. */
export function numberedPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
