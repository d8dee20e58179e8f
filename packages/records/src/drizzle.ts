import { ConfigError } from "@envelope/core";
import {
  and,
  Column,
  eq,
  getTableColumns,
  type InferInsertModel,
  type InferSelectModel,
  inArray,
  is,
  isNull,
  SQL,
  StringChunk,
  sql,
} from "drizzle-orm";
import {
  getTableConfig,
  type PgColumn,
  type PgDatabase,
  type PgQueryResultHKT,
  type PgTable,
} from "drizzle-orm/pg-core";
import { isEncryptedColumn } from "./drizzle-columns.js";
import { guardedUpdate } from "./guarded-update.js";
import { nameProblem, shown } from "./names.js";
import type { RecordCipher } from "./record-cipher.js";
import { blindIndexColumn, openAll, openMatching, reservedId, sealAll } from "./rows.js";
import { quoteIdent } from "./sql.js";

// The column types are in drizzle-columns.ts: re-exported from this entry point.
export { encryptedBytes, encryptedText } from "./drizzle-columns.js";

/** Any Drizzle PostgreSQL database or transaction (node-postgres, postgres.js, PGlite, …). */
// biome-ignore lint/suspicious/noExplicitAny: the repository works with any schema generics.
export type DrizzlePgDatabase = PgDatabase<PgQueryResultHKT, any, any>;

type Row = Record<string, unknown>;
type IdOf<S> = S extends { id: infer I } ? NonNullable<I> : unknown;

/** Options of {@link EncryptedRepository.find}. */
export interface FindOptions {
  orderBy?: (PgColumn | SQL)[];
  limit?: number;
  offset?: number;
}

/**
 * Plaintext in, plaintext out, sealed in the database: one Drizzle table's rows through
 * its record cipher. `Select` / `Insert` are the table's Drizzle row types, with the
 * encrypted columns typed as their plaintext.
 */
export interface EncryptedRepository<
  TTable extends PgTable,
  F extends string = string,
  Select = InferSelectModel<TTable>,
  Insert = InferInsertModel<TTable>,
> {
  /** The Drizzle table. */
  readonly table: TTable;
  /**
   * Seals each record (one fresh data key, hence one KMS call, per record), inserts them in
   * one statement and returns them as stored, opened. Blind index columns are computed.
   * A record without an id gets one reserved from the id column's sequence first (serial
   * or identity), because the id is part of each field's encryption context.
   */
  insert(values: Insert): Promise<Select>;
  insert(values: readonly Insert[]): Promise<Select[]>;
  /**
   * Selects the rows matching `where` (Drizzle's `eq`, `and`, … on NON-encrypted columns:
   * an encrypted column holds ciphertext) and opens each one (one unwrap per record at
   * most, none when its data key is cached).
   */
  find(where?: SQL, options?: FindOptions): Promise<Select[]>;
  /** The first row matching `where`, opened, or undefined. */
  findOne(where: SQL): Promise<Select | undefined>;
  /** The row with this id, opened, or undefined. */
  findById(id: IdOf<Select>): Promise<Select | undefined>;
  /**
   * Rows whose encrypted `field` equals `value` after the field's normalization: selected by
   * its blind index under every index key (`WHERE <field>_idx IN (…)`), opened, and checked
   * against `value`, so the false positives of a truncated index are dropped.
   */
  findBy(field: F, value: string): Promise<Select[]>;
  /**
   * Applies `changes` (plaintext) to the row with this id: changed encrypted fields are
   * re-sealed under the record's data key (no KMS call when it is cached), their blind
   * indexes follow, and only those columns are written. During a master key rotation, or
   * when this process did not generate the record's data key (see `RecordCipher.update`),
   * the whole record moves to a fresh key, and that write lands only if the columns the
   * caller did not change still hold what was read (else re-read, at most 3 attempts).
   * Returns the row after the write, opened, or undefined when no row has this id.
   */
  update(id: IdOf<Select>, changes: Partial<Insert>): Promise<Select | undefined>;
}

/**
 * A repository over one Drizzle table whose encrypted fields are declared once in `cipher`
 * (`createRecordCipher`): application code reads and writes plaintext. Drizzle builds the
 * SQL; the record cipher does the crypto. The cipher's field names (encrypted fields, id,
 * blind index columns) are the table's TypeScript keys. Works over a transaction too
 * (`db.transaction((tx) => encryptedRepository(tx, usersTable, cipher).update(…))`).
 *
 * @example
 * const cipher = createRecordCipher(envelope, {
 *   table: "users",
 *   encrypted: ["email", "phone"],
 *   blindIndexes: { email: { normalize: "email" } },
 * }, { blindIndex });
 * const users = encryptedRepository(db, usersTable, cipher);
 * const ann = await users.insert({ id: randomUUID(), email: "Ann@Example.com", phone: null });
 * const [found] = await users.findBy("email", "ann@example.com");
 * await users.update(ann.id, { phone: "+1 555 0199" });
 */
export function encryptedRepository<
  TTable extends PgTable,
  const F extends string & keyof InferSelectModel<TTable>,
  O extends "text" | "binary" = "text",
>(
  db: DrizzlePgDatabase,
  table: TTable,
  cipher: RecordCipher<F, O>,
): EncryptedRepository<TTable, F> {
  const c = cipher as unknown as RecordCipher<string, "text" | "binary">;
  const columns = getTableColumns(table) as Record<string, PgColumn>;
  const config = getTableConfig(table);
  const tableName = config.schema ? `${config.schema}.${config.name}` : config.name;
  const badName = nameProblem(tableName);
  if (badName) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `encryptedRepository: the Drizzle table name "${shown(tableName)}" ${badName}.`,
      { details: { table: shown(tableName) } },
    );
  }
  checkTable(c.schema.table, config.name, tableName);
  const idField = c.schema.idField ?? "id";
  checkColumns(c, columns, tableName, idField);
  const idColumn = columns[idField]!;
  const byId = (id: unknown) => eq(idColumn, id);
  // Drizzle's builders are typed per table; here the table is generic, so the rows are plain
  // records and the public interface carries the table's types.
  const d = db as unknown as LooseDb;

  const encrypted = new Map(c.schema.encrypted.map((f) => [columns[f]!, f]));
  const select = (where: SQL | undefined, options: FindOptions = {}) => {
    if (where) checkWhere(where, encrypted, tableName);
    let q = d.select().from(table).where(where).$dynamic();
    if (options.orderBy?.length) {
      checkOrder(options.orderBy, encrypted, tableName);
      q = q.orderBy(...options.orderBy);
    }
    if (options.limit !== undefined) q = q.limit(options.limit);
    if (options.offset !== undefined) q = q.offset(options.offset);
    return q as Promise<Row[]>;
  };

  const reserveId = async (): Promise<unknown> => {
    const result = await d.execute(
      sql`SELECT nextval(pg_get_serial_sequence(${quoteIdent(tableName)}, ${idColumn.name}))::text AS id`,
    );
    const id = reservedId(Array.isArray(result) ? result : result.rows, tableName, idField);
    // Drizzle maps the column's JS type (integer → number, bigint mode → bigint) itself
    // on select; give the record the same type it will read back.
    if (idColumn.dataType === "number") return Number(id);
    if (idColumn.dataType === "bigint") return BigInt(id);
    return id;
  };

  const insert = async (values: Row | readonly Row[]) => {
    const list = Array.isArray(values) ? values : [values as Row];
    if (list.length === 0) return [];
    let reserved = false;
    const full: Row[] = [];
    for (const record of list) {
      if (record[idField] !== undefined && record[idField] !== null) full.push(record);
      else {
        full.push({ ...record, [idField]: await reserveId() });
        reserved = true;
      }
    }
    const sealed = await sealAll(c, full);
    // A reserved id goes into the id column explicitly: allowed for serial and
    // identity-by-default columns, and for identity-always ones with OVERRIDING SYSTEM VALUE.
    const builder = reserved ? d.insert(table).overridingSystemValue() : d.insert(table);
    const rows = (await builder.values(sealed).returning()) as Row[];
    const opened = await openAll<Row>(c, rows);
    return Array.isArray(values) ? opened : opened[0];
  };

  const repository = {
    table,
    insert,
    async find(where?: SQL, options?: FindOptions) {
      return openAll<Row>(c, await select(where, options));
    },
    async findOne(where: SQL) {
      const [row] = await select(where, { limit: 1 });
      return row ? c.open<Row>(row) : undefined;
    },
    async findById(id: unknown) {
      const [row] = await select(byId(id), { limit: 1 });
      return row ? c.open<Row>(row) : undefined;
    },
    async findBy(field: string, value: string) {
      const column = columns[blindIndexColumn(c, field)]!;
      const rows = await select(inArray(column, c.candidatesFor(field, value)));
      return openMatching<Row>(c, rows, field, value);
    },
    async update(id: unknown, changes: Row) {
      const written = await guardedUpdate(c, changes, {
        async read() {
          const [row] = await select(byId(id), { limit: 1 });
          return row;
        },
        async write(set, guards) {
          const checks = Object.entries(guards).map(([f, v]) =>
            v === null || v === undefined ? isNull(columns[f]!) : eq(columns[f]!, v),
          );
          const [row] = (await d
            .update(table)
            .set(set)
            .where(and(byId(id), ...checks))
            .returning()) as Row[];
          return row;
        },
      });
      return written ? c.open<Row>(written) : undefined;
    },
  };
  return repository as unknown as EncryptedRepository<TTable, F>;
}

/**
 * The first encrypted column named in `chunk` (a column, or anywhere inside an `sql`
 * expression, nested or not). `skip` leaves out sub-expressions that may name one.
 */
function encryptedIn(
  chunk: unknown,
  encrypted: ReadonlyMap<PgColumn, string>,
  skip: (sql: SQL) => boolean = () => false,
  depth = 0,
): PgColumn | undefined {
  if (is(chunk, Column)) return encrypted.has(chunk as PgColumn) ? (chunk as PgColumn) : undefined;
  if (depth < 32 && is(chunk, SQL) && !skip(chunk)) {
    for (const inner of chunk.queryChunks) {
      const hit = encryptedIn(inner, encrypted, skip, depth + 1);
      if (hit) return hit;
    }
  }
  return undefined;
}

/**
 * `orderBy` by an encrypted column (`asc(t.email)`, `t.email`, or inside any `sql` expression)
 * would sort by ciphertext, sealed under a random nonce: noise. Refused before the query.
 */
function checkOrder(
  by: readonly (PgColumn | SQL)[],
  encrypted: ReadonlyMap<PgColumn, string>,
  table: string,
) {
  for (const term of by) {
    const column = encryptedIn(term, encrypted);
    if (column) {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `encryptedRepository.find: orderBy on the encrypted column "${column.name}" of "${table}": each value is sealed under its own key and a random nonce, so the database would sort by noise. Sort the returned rows in the app, or order by a plain column.`,
        { details: { table, field: column.name } },
      );
    }
  }
}

/**
 * A `where` that names an encrypted column compares ciphertext: `eq(t.email, "x")` would
 * match nothing, and in an `sql` template (`sql\`${t.email} = ${"x"}\``) the value is not
 * passed through the column, so the plaintext would be sent to the database as a parameter.
 * Refused before the query, whatever the expression; only `isNull(t.email)` /
 * `isNotNull(t.email)` pass (NULL is stored as NULL).
 */
function checkWhere(where: SQL, encrypted: ReadonlyMap<PgColumn, string>, table: string) {
  const column = encryptedIn(where, encrypted, isNullTest);
  if (column) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `encryptedRepository.find: where on the encrypted column "${shown(column.name)}" of "${table}": the column holds ciphertext, so the comparison cannot match and would send its value to the database. Look rows up with findBy("${shown(encrypted.get(column)!)}", value) (its blind index), filter on plain columns, or use isNull / isNotNull.`,
      { details: { table, field: shown(column.name) } },
    );
  }
}

/** Drizzle's `isNull(c)` / `isNotNull(c)`: `sql\`${c} is null\``, nothing else in it. */
function isNullTest(expression: SQL): boolean {
  const [before, column, after, ...rest] = expression.queryChunks;
  const text = (chunk: unknown) => (is(chunk, StringChunk) ? chunk.value.join("") : undefined);
  return (
    rest.length === 0 &&
    is(column, Column) &&
    text(before) === "" &&
    (text(after) === " is null" || text(after) === " is not null")
  );
}

/**
 * The cipher's table is in every value's encryption context: a cipher made for another table
 * would seal values that the other helpers (and the CLI) cannot open under this table's name.
 */
function checkTable(cipherTable: string, name: string, qualified: string): void {
  if (cipherTable === name || cipherTable === qualified) return;
  throw new ConfigError(
    "ENVELOPE_BAD_CONFIG",
    `encryptedRepository: the record cipher is for table "${shown(cipherTable)}", but the Drizzle table is "${shown(qualified)}". The cipher's table is part of every value's encryption context: create the cipher with table: "${shown(qualified)}", or pass the Drizzle table it was made for.`,
    { details: { table: shown(qualified), field: "table" } },
  );
}

/** The cipher's id, encrypted fields and blind index columns must be columns of the table. */
function checkColumns(
  cipher: RecordCipher<string, "text" | "binary">,
  columns: Record<string, PgColumn>,
  table: string,
  idField: string,
): void {
  const names = [idField, ...cipher.schema.encrypted];
  for (const f of cipher.schema.encrypted) {
    const column = cipher.indexColumn(f);
    if (column) names.push(column);
  }
  const missing = names.filter((n) => !(n in columns));
  if (missing.length > 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `encryptedRepository: the record cipher names ${missing.map((m) => `"${m}"`).join(", ")}, which ${missing.length === 1 ? "is not a column" : "are not columns"} of the Drizzle table "${table}". Field names are the table's TypeScript keys (e.g. email_idx: text("email_idx")).`,
      { details: { table, field: missing[0]! } },
    );
  }
  // A plain text() column would let plaintext through: in the repository's where, in the
  // app's own db.insert / db.update, in an eq() on it.
  for (const f of cipher.schema.encrypted) {
    const column = columns[f]!;
    if (!isEncryptedColumn(column)) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `encryptedRepository: the encrypted field "${f}" of "${table}" is a plain ${column.getSQLType()} column in the Drizzle table. Declare it with encryptedText("${shown(column.name)}") (or encryptedBytes("${shown(column.name)}") for a cipher with output: "binary") from @envelope/records/drizzle: that column refuses any value that is not sealed, in writes and in where clauses.`,
        { details: { table, field: f } },
      );
    }
  }
}

/** The Drizzle builder calls the repository makes, without the per-table typing. */
interface LooseQuery extends Promise<unknown> {
  where(where: SQL | undefined): LooseQuery;
  $dynamic(): LooseQuery;
  orderBy(...by: (PgColumn | SQL)[]): LooseQuery;
  limit(n: number): LooseQuery;
  offset(n: number): LooseQuery;
}
interface LooseInsert {
  overridingSystemValue(): LooseInsert;
  values(rows: Row[]): { returning(): Promise<unknown> };
}
interface LooseDb {
  select(): { from(table: PgTable): LooseQuery };
  insert(table: PgTable): LooseInsert;
  update(table: PgTable): {
    set(values: Row): { where(where: SQL | undefined): { returning(): Promise<unknown> } };
  };
  execute(query: SQL): Promise<Row[] | { rows: Row[] }>;
}
