import { ConfigError } from "@envelope/core";
import { storeUnavailable } from "../errors.js";
import type { IntermediateKeyRecord, StoredKeyRecord } from "../record.js";
import type { KeyStore } from "./types.js";

/** The part of a `pg` Pool or Client this store uses; anything with `query` fits. */
export interface PgQueryable {
  query(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
}

export interface PostgresKeyStoreOptions {
  /** A `pg` Pool (recommended) or Client. The store never ends it. */
  client: PgQueryable;
  /** Table name, optionally schema-qualified. Default `envelope_intermediate_keys`. */
  table?: string;
  /** Run `CREATE TABLE IF NOT EXISTS` on open. Default true. Needs CREATE on the schema. */
  createTable?: boolean;
}

const TABLE_PATTERN = /^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$/;

/**
 * A key store in a PostgreSQL table, shared by every process of an application. Inserts
 * never overwrite (primary key); updates are compare-and-swap on a version column, so two
 * rotations running at once cannot lose a rewrap. The table holds only master-wrapped keys;
 * include it in your database backups.
 *
 * @example
 * import pg from "pg";
 * const store = await postgresKeyStore({ client: new pg.Pool({ connectionString }) });
 */
export async function postgresKeyStore(options: PostgresKeyStoreOptions): Promise<KeyStore> {
  const table = options.table ?? "envelope_intermediate_keys";
  if (!TABLE_PATTERN.test(table)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `hierarchical: table "${table.slice(0, 80)}" is not a plain lowercase SQL identifier (schema.table allowed).`,
      { details: { field: "table" } },
    );
  }
  const name = `postgres:${table}`;
  const db = options.client;
  const run = async (operation: string, text: string, values?: unknown[]) => {
    try {
      return await db.query(text, values);
    } catch (cause) {
      throw storeUnavailable(name, operation, cause);
    }
  };
  if (options.createTable ?? true) {
    await run(
      "create table",
      `CREATE TABLE IF NOT EXISTS ${table} (
        id text PRIMARY KEY,
        created_at bigint NOT NULL,
        master_provider text NOT NULL,
        master_key_ref text NOT NULL,
        master_wrapped bytea NOT NULL,
        key_check text NOT NULL,
        checksum text NOT NULL,
        version integer NOT NULL DEFAULT 1
      )`,
    );
  }
  const columns =
    "id, created_at, master_provider, master_key_ref, master_wrapped, key_check, checksum, version";
  return {
    name,
    async get(id) {
      const { rows } = await run("get", `SELECT ${columns} FROM ${table} WHERE id = $1`, [id]);
      return rows[0] ? fromRow(rows[0]) : undefined;
    },
    async put(record) {
      await run(
        "put",
        `INSERT INTO ${table} (${columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, 1)`,
        values(record),
      );
    },
    async list() {
      const { rows } = await run("list", `SELECT ${columns} FROM ${table} ORDER BY created_at, id`);
      return rows.map(fromRow);
    },
    async update(id, expectedVersion, record) {
      if (record.id !== id) return false;
      const { rowCount } = await run(
        "update",
        `UPDATE ${table} SET created_at = $2, master_provider = $3, master_key_ref = $4, master_wrapped = $5,
           key_check = $6, checksum = $7, version = version + 1
         WHERE id = $1 AND version = $8`,
        [...values(record), expectedVersion],
      );
      return rowCount === 1;
    },
  };
}

function values(record: IntermediateKeyRecord): unknown[] {
  return [
    record.id,
    record.createdAt,
    record.master.providerId,
    record.master.keyRef,
    Buffer.from(record.master.wrapped),
    record.keyCheck,
    record.checksum,
  ];
}

function fromRow(row: Record<string, unknown>): StoredKeyRecord {
  return {
    id: String(row.id),
    createdAt: Number(row.created_at),
    master: {
      providerId: String(row.master_provider),
      keyRef: String(row.master_key_ref),
      wrapped:
        row.master_wrapped instanceof Uint8Array
          ? Buffer.from(row.master_wrapped)
          : Buffer.alloc(0),
    },
    keyCheck: String(row.key_check),
    checksum: String(row.checksum),
    version: Number(row.version),
  };
}
