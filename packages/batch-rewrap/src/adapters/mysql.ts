import type { Pool, PoolConnection, PoolOptions, ResultSetHeader } from "mysql2/promise";
import { loadDriver } from "./driver.js";
import {
  type AdapterOptions,
  DEFAULT_MAX_CONNECTIONS,
  type QueryResult,
  type Row,
  type SqlAdapter,
  type SqlExecutor,
  type SqlSession,
} from "./types.js";

/** The part of a `mysql2/promise` Pool the adapter uses. */
export type MysqlPoolLike = Pick<Pool, "query" | "getConnection" | "end">;

/**
 * MySQL 8 / MariaDB 10.6+ through `mysql2/promise` (SKIP LOCKED needs those versions).
 * Pass your pool, or a connection string / options; a pool created here returns BIGINT
 * as strings so large keys keep their precision.
 *
 * @example
 * const db = await mysqlAdapter("mysql://root@127.0.0.1:3306/app");
 */
export async function mysqlAdapter(
  pool: MysqlPoolLike | string | PoolOptions,
  options: AdapterOptions = {},
): Promise<SqlAdapter> {
  let owned = false;
  let p: MysqlPoolLike;
  if (typeof pool === "string" || !("getConnection" in pool)) {
    const mysql = await loadDriver(
      "mysql2",
      "A mysql:// or mariadb:// database",
      () => import("mysql2/promise"),
    );
    const create = (mysql.default?.createPool ?? mysql.createPool) as typeof mysql.createPool;
    const connectionLimit = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    const base = { supportBigNumbers: true, bigNumberStrings: true, connectionLimit };
    p = typeof pool === "string" ? create({ uri: pool, ...base }) : create({ ...base, ...pool });
    owned = true;
  } else {
    p = pool;
  }
  const run = async (
    conn: Pick<PoolConnection, "query">,
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<QueryResult> => {
    const [result] = await conn.query(sql, params as unknown[]);
    if (Array.isArray(result)) return { rows: result as Row[], affected: 0 };
    return { rows: [], affected: (result as ResultSetHeader).affectedRows ?? 0 };
  };
  const connect = async () => {
    const conn = await p.getConnection();
    // READ COMMITTED: no gap locks, and a claim's SKIP LOCKED scan keeps no locks on rows it passes.
    await conn.query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
    return conn;
  };
  return {
    dialect: "mysql",
    name: "mysql",
    sessions: true,
    // mysql2's promise pool wraps the callback pool, which keeps the resolved config.
    maxConnections: (p as { pool?: { config?: { connectionLimit?: number } } }).pool?.config
      ?.connectionLimit,
    query: (sql, params) => run(p, sql, params),
    async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      const conn = await connect();
      try {
        await conn.beginTransaction();
        const result = await fn({ query: (sql, params) => run(conn, sql, params) });
        await conn.commit();
        return result;
      } catch (error) {
        await conn.rollback().catch(() => {});
        throw error;
      } finally {
        conn.release();
      }
    },
    async session(): Promise<SqlSession> {
      const conn = await connect();
      return {
        query: (sql, params) => run(conn, sql, params),
        async release() {
          // May hold an open claim transaction: close it instead of returning it to the pool.
          conn.destroy();
        },
      };
    },
    async close() {
      if (owned) await p.end();
    },
  };
}
