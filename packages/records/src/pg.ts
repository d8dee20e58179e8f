import { ConfigError } from "@envelope/core";
import { guardedUpdate } from "./guarded-update.js";
import { didYouMean, shown } from "./names.js";
import type { RecordCipher } from "./record-cipher.js";
import { blindIndexColumn, openAll, openMatching, reservedId } from "./rows.js";
import { quoteIdent } from "./sql.js";

/** What the helper needs of `pg.Pool` / `pg.Client` / `pg.PoolClient`: `query(text, values)`. */
export interface Queryable {
  query(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: Record<string, unknown>[]; fields?: readonly { name: string }[] }>;
}

/** Options of {@link EncryptedPg.findMany}. Column names are quoted; values are parameters. */
export interface FindManyOptions {
  /** Equality on plain (not encrypted) columns, ANDed: `{ org_id: 7, deleted_at: null }` (null: IS NULL). */
  where?: Record<string, unknown>;
  /** A plain column to sort by (ascending unless `descending`). */
  orderBy?: string;
  descending?: boolean;
  limit?: number;
  offset?: number;
}

/** Plaintext in, plaintext out; sealed in the database. */
export interface EncryptedPg {
  /**
   * Seals and inserts a record; returns it opened (as stored, decrypted). When the record
   * has no id, one is reserved first with `nextval` of the id column's sequence (serial or
   * identity), because the id is part of each field's encryption context.
   */
  insert<T = Record<string, unknown>>(table: string, record: Record<string, unknown>): Promise<T>;
  /**
   * A list read: the rows matching `where` (plain columns only), opened with the cipher's
   * `openMany` — each record's data key unwrapped once, the cipher's `concurrency` at a
   * time. All or nothing: a row that does not open rejects the whole read with its typed
   * error (use `cipher.openMany` on your own SELECT for per-row results).
   */
  findMany<T = Record<string, unknown>>(table: string, options?: FindManyOptions): Promise<T[]>;
  /** The opened row with this id, or undefined. */
  findById<T = Record<string, unknown>>(table: string, id: unknown): Promise<T | undefined>;
  /**
   * Rows whose encrypted `field` equals `value` (after the field's normalization), found
   * through its blind index under every index key (`WHERE idx = ANY($1)`), opened, and
   * checked against `value` so that truncated-index false positives are dropped.
   */
  findByBlindIndex<T = Record<string, unknown>>(
    table: string,
    field: string,
    value: string,
  ): Promise<T[]>;
  /**
   * Re-seals the changed fields under the record's data key (no KMS call when cached) and
   * writes only those columns. When the record moves to a fresh key — a key rotation (the
   * row is not under exactly the envelope's encrypting keys), or a data key this process
   * did not generate (see `RecordCipher.update`) — the whole record is re-sealed and
   * written only if its other encrypted fields did not change meanwhile (else re-read and
   * retried, at most 3 times). Returns the opened row, or undefined when no row has this id.
   */
  update<T = Record<string, unknown>>(
    table: string,
    id: unknown,
    changes: Record<string, unknown>,
  ): Promise<T | undefined>;
}

/**
 * Encrypted-column helpers over plain `pg` (parameterized SQL only). One cipher per table.
 *
 * @example
 * const db = encryptedPg(pool, users); // users = createRecordCipher(envelope, { table: "users", … })
 * const ann = await db.insert("users", { email: "ann@example.com", phone: "+1 555 0100" });
 * const [found] = await db.findByBlindIndex("users", "email", "Ann@Example.com");
 * const page = await db.findMany("users", { where: { org_id: 7 }, orderBy: "id", limit: 50 });
 * await db.update("users", ann.id, { phone: "+1 555 0199" });
 */
export function encryptedPg(
  db: Queryable,
  cipher:
    | RecordCipher<string, "text" | "binary">
    | readonly RecordCipher<string, "text" | "binary">[],
): EncryptedPg {
  const list = (Array.isArray(cipher) ? cipher : [cipher]) as RecordCipher<
    string,
    "text" | "binary"
  >[];
  const byTable = new Map(list.map((c) => [c.schema.table, c]));
  if (typeof db?.query !== "function" || byTable.size === 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "encryptedPg(pool, cipher): give a pg Pool or Client and at least one record cipher.",
    );
  }
  const cipherOf = (table: string) => {
    const c = byTable.get(table);
    if (!c) {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `No record cipher for table "${shown(table)}" (known: ${[...byTable.keys()].join(", ")}).`,
        { details: { table: shown(table) } },
      );
    }
    return { c, idField: c.schema.idField ?? "id", t: quoteIdent(table) };
  };
  /** The table's columns checked against the schema, once per cipher and table. */
  const opened = async (table: string) => {
    const found = cipherOf(table);
    let passed = checkedColumns.get(found.c);
    if (!passed?.has(table)) {
      await checkColumns(db, found.c, found.t);
      if (!passed) {
        passed = new Set();
        checkedColumns.set(found.c, passed);
      }
      passed.add(table);
    }
    return found;
  };

  return {
    async insert<T>(table: string, record: Record<string, unknown>) {
      const { c, idField, t } = await opened(table);
      let full = record;
      let reserved = false;
      if (record[idField] === undefined || record[idField] === null) {
        const { rows } = await db.query(
          "SELECT nextval(pg_get_serial_sequence($1, $2))::text AS id",
          [t, idField],
        );
        full = { ...record, [idField]: reservedId(rows, table, idField) };
        reserved = true;
      }
      const sealed = (await c.seal(full)) as Record<string, unknown>;
      const columns = Object.keys(sealed).filter((k) => sealed[k] !== undefined);
      const sql = `INSERT INTO ${t} (${columns.map(quoteIdent).join(", ")})${reserved ? " OVERRIDING SYSTEM VALUE" : ""} VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")}) RETURNING *`;
      const { rows } = await db.query(
        sql,
        columns.map((k) => sealed[k]),
      );
      return c.open<T>(rows[0]!);
    },

    async findMany<T>(table: string, options: FindManyOptions = {}) {
      const { c, t } = await opened(table);
      const { sql, values } = listQuery(c, options);
      const { rows } = await db.query(`SELECT * FROM ${t}${sql}`, values);
      return openAll<T>(c, rows);
    },

    async findById<T>(table: string, id: unknown) {
      const { c, idField, t } = await opened(table);
      const { rows } = await db.query(`SELECT * FROM ${t} WHERE ${quoteIdent(idField)} = $1`, [id]);
      return rows[0] ? c.open<T>(rows[0]) : undefined;
    },

    async findByBlindIndex<T>(table: string, field: string, value: string) {
      const { c, t } = await opened(table);
      const column = blindIndexColumn(c, field);
      const { rows } = await db.query(`SELECT * FROM ${t} WHERE ${quoteIdent(column)} = ANY($1)`, [
        c.candidatesFor(field, value),
      ]);
      return openMatching<T>(c, rows, field, value);
    },

    async update<T>(table: string, id: unknown, changes: Record<string, unknown>) {
      const { c, idField, t } = await opened(table);
      const where = quoteIdent(idField);
      const written = await guardedUpdate(c, changes, {
        async read() {
          const { rows } = await db.query(`SELECT * FROM ${t} WHERE ${where} = $1`, [id]);
          return rows[0];
        },
        async write(set, guards) {
          const columns = Object.keys(set);
          const kept = Object.keys(guards);
          const sets = columns.map((k, i) => `${quoteIdent(k)} = $${i + 1}`).join(", ");
          const checks = kept.map(
            (f, i) => ` AND ${quoteIdent(f)} IS NOT DISTINCT FROM $${columns.length + 2 + i}`,
          );
          const { rows } = await db.query(
            `UPDATE ${t} SET ${sets} WHERE ${where} = $${columns.length + 1}${checks.join("")} RETURNING *`,
            [...columns.map((k) => set[k]), id, ...kept.map((f) => guards[f])],
          );
          return rows[0];
        },
      });
      return written ? c.open<T>(written) : undefined;
    },
  };
}

/** Ciphers whose schema was checked against a table's columns, and those tables. */
const checkedColumns = new WeakMap<object, Set<string>>();

/**
 * Refuses a schema naming an id, encrypted or blind index column the table does not have:
 * a misspelt field (`encrypted: ["emial"]`) would leave the real column's values
 * unencrypted on insert, and returned as ciphertext on reads. Reads no row.
 */
async function checkColumns(
  db: Queryable,
  cipher: RecordCipher<string, "text" | "binary">,
  quotedTable: string,
): Promise<void> {
  const { fields } = await db.query(`SELECT * FROM ${quotedTable} WHERE false`);
  if (!Array.isArray(fields)) return; // a Queryable that does not report columns
  const names = fields.map((f) => f.name);
  const { schema } = cipher;
  const wanted: [string, string][] = [[schema.idField ?? "id", "idField"]];
  for (const f of schema.encrypted) {
    wanted.push([f, "encrypted"]);
    const index = cipher.indexColumn(f);
    if (index) wanted.push([index, `blindIndexes.${f}`]);
  }
  for (const [column, role] of wanted) {
    if (names.includes(column)) continue;
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `encryptedPg: table ${shown(quotedTable)} has no column "${shown(column)}" (the record schema's ${shown(role)}).${didYouMean(column, names)} Fix the schema or the table: a misspelt encrypted field leaves the real column's values unencrypted.`,
      { details: { table: shown(schema.table), field: shown(column) } },
    );
  }
}

/** WHERE / ORDER BY / LIMIT / OFFSET of a findMany, refusing what cannot match ciphertext. */
function listQuery(
  cipher: RecordCipher<string, "text" | "binary">,
  options: FindManyOptions,
): { sql: string; values: unknown[] } {
  const bad = (field: string, problem: string) =>
    new ConfigError("ENVELOPE_BAD_INPUT", `findMany on "${cipher.schema.table}": ${problem}`, {
      details: { table: cipher.schema.table, field },
    });
  const plainColumn = (column: string, what: string) => {
    if (cipher.schema.encrypted.includes(column)) {
      throw bad(
        column,
        `"${shown(column)}" is encrypted, so it cannot be ${what} (it holds ciphertext). Use findByBlindIndex for equality on an encrypted field.`,
      );
    }
    return quoteIdent(column);
  };
  const where = options.where ?? {};
  if (typeof where !== "object" || where === null || Array.isArray(where)) {
    throw bad("where", "where must be an object of column → value.");
  }
  const values: unknown[] = [];
  const checks: string[] = [];
  for (const [column, value] of Object.entries(where)) {
    if (value === undefined) continue;
    if (value === null) checks.push(`${plainColumn(column, "matched")} IS NULL`);
    else {
      values.push(value);
      checks.push(`${plainColumn(column, "matched")} = $${values.length}`);
    }
  }
  let sql = checks.length > 0 ? ` WHERE ${checks.join(" AND ")}` : "";
  if (options.orderBy !== undefined) {
    sql += ` ORDER BY ${plainColumn(options.orderBy, "sorted on")}${options.descending ? " DESC" : ""}`;
  }
  for (const key of ["limit", "offset"] as const) {
    const n = options[key];
    if (n === undefined) continue;
    if (!Number.isSafeInteger(n) || n < 0) throw bad(key, `${key} must be a whole number ≥ 0.`);
    values.push(n);
    sql += ` ${key.toUpperCase()} $${values.length}`;
  }
  return { sql, values };
}
