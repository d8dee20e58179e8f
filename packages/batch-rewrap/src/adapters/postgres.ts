import type { Pool, PoolClient, PoolConfig } from "pg";
import { loadDriver } from "./driver.js";
import {
  type AdapterOptions,
  DEFAULT_MAX_CONNECTIONS,
  numberedPlaceholders,
  type QueryResult,
  type SqlAdapter,
  type SqlExecutor,
  type SqlSession,
} from "./types.js";

/** The part of a `pg.Pool` the adapter uses. */
export type PgPoolLike = Pick<Pool, "query" | "connect" | "end">;

/**
 * PostgreSQL through `pg`. Pass your Pool (the adapter never ends a pool it did not
 * create), or a connection string / PoolConfig.
 *
 * @example
 * const db = await postgresAdapter("postgres://app@localhost/app");
 */
export async function postgresAdapter(
  pool: PgPoolLike | string | PoolConfig,
  options: AdapterOptions = {},
): Promise<SqlAdapter> {
  let owned = false;
  let p: PgPoolLike;
  if (typeof pool === "string" || !("connect" in pool)) {
    const pg = await loadDriver("pg", "A postgres:// database", () => import("pg"));
    const Pool = (pg.default?.Pool ??
      (pg as unknown as { Pool: typeof import("pg").Pool }).Pool) as typeof import("pg").Pool;
    const max = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    p = new Pool(typeof pool === "string" ? { connectionString: pool, max } : { max, ...pool });
    owned = true;
  } else {
    p = pool;
  }
  const run = async (
    client: Pick<PoolClient, "query"> | PgPoolLike,
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<QueryResult> => {
    const result = await client.query(numberedPlaceholders(sql), params as unknown[]);
    return { rows: result.rows ?? [], affected: result.rowCount ?? 0 };
  };
  return {
    dialect: "postgres",
    name: "postgresql",
    sessions: true,
    // pg's Pool keeps its resolved options (max defaults to 10 there).
    maxConnections: (p as { options?: { max?: number } }).options?.max,
    query: (sql, params) => run(p, sql, params),
    async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      const client = await p.connect();
      try {
        await client.query("BEGIN ISOLATION LEVEL READ COMMITTED");
        const result = await fn({ query: (sql, params) => run(client, sql, params) });
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    async session(): Promise<SqlSession> {
      const client = await p.connect();
      return {
        query: (sql, params) => run(client, sql, params),
        async release() {
          // A session may hold an open claim transaction: destroy rather than pool it.
          client.release(true);
        },
      };
    },
    async close() {
      if (owned) await p.end();
    },
  };
}
