import type { SqlAdapter } from "./types.js";

/**
 * `db` with some members replaced and the rest read through: a job's own view of a shared
 * pool (the CLI holds back a quitting job's commits through one).
 *
 * @example
 * const counted = delegatingAdapter(db, { transaction: (fn) => { n++; return db.transaction(fn); } });
 */
export function delegatingAdapter(
  db: SqlAdapter,
  replaced: Pick<SqlAdapter, "transaction"> & Partial<SqlAdapter>,
): SqlAdapter {
  return {
    get dialect() {
      return db.dialect;
    },
    get name() {
      return db.name;
    },
    get sessions() {
      return db.sessions;
    },
    get maxConnections() {
      return db.maxConnections;
    },
    query: (sql, params) => db.query(sql, params),
    session: () => db.session(),
    close: () => db.close(),
    ...replaced,
  };
}
