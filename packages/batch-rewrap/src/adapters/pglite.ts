import { ConfigError } from "@envelope/core";
import {
  numberedPlaceholders,
  type QueryResult,
  type Row,
  type SqlAdapter,
  type SqlExecutor,
} from "./types.js";

/** The part of a PGlite instance the adapter uses (PGlite itself is an optional peer). */
export interface PGliteLike {
  query<T = Row>(sql: string, params?: unknown[]): Promise<{ rows: T[]; affectedRows?: number }>;
  transaction<T>(fn: (tx: { query: PGliteLike["query"] }) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * PGlite, the embedded default: PostgreSQL in-process, one connection. Ranges are
 * claimed in memory, so several workers share one job inside one process only.
 *
 * @example
 * const db = pgliteAdapter(new PGlite("./data"));
 */
export function pgliteAdapter(db: PGliteLike, options: { owned?: boolean } = {}): SqlAdapter {
  const run = async (
    q: Pick<PGliteLike, "query">,
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<QueryResult> => {
    const result = await q.query<Row>(numberedPlaceholders(sql), params.map(toPglite));
    return { rows: result.rows.map(fromPglite), affected: result.affectedRows ?? 0 };
  };
  return {
    dialect: "postgres",
    name: "pglite",
    sessions: false,
    query: (sql, params) => run(db, sql, params),
    transaction: <T>(fn: (tx: SqlExecutor) => Promise<T>) =>
      db.transaction((tx) => fn({ query: (sql, params) => run(tx, sql, params) })),
    async session() {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        "PGlite has a single connection; sessions are not available.",
      );
    },
    async close() {
      if (options.owned) await db.close();
    },
  };
}

// PGlite returns bytea as Uint8Array; the engine works with Buffers like the other drivers.
function fromPglite(row: Row): Row {
  for (const [k, v] of Object.entries(row)) {
    if (v instanceof Uint8Array && !Buffer.isBuffer(v))
      row[k] = Buffer.from(v.buffer, v.byteOffset, v.length);
  }
  return row;
}

function toPglite(value: unknown): unknown {
  return Buffer.isBuffer(value)
    ? new Uint8Array(value.buffer, value.byteOffset, value.length)
    : value;
}
