import { ConfigError, type PadOption } from "@envelope/core";
import type { SqlAdapter } from "../adapters/types.js";
import { checkName, quote } from "../sql/identifiers.js";
import { describeTable, requireColumn } from "../sql/introspect.js";
import { columnNames } from "./record-columns.js";
import type { ColumnPlan } from "./values.js";

/** How one field is blind-indexed: the `BlindIndexSpec` of `@envelope/records`. */
export interface BlindIndexSpecLike {
  column?: string;
  normalize?: unknown;
  bits?: number;
}

/** The record schema of `@envelope/records` (`createRecordCipher`'s second argument), as migrate reads it. */
export interface RecordSchemaLike {
  table: string;
  idField?: string;
  encrypted: readonly string[];
  blindIndexes?: Partial<Record<string, BlindIndexSpecLike>>;
  pad?: Partial<Record<string, PadOption>>;
}

/** The blind indexer of `@envelope/records` (`createBlindIndexer({ keys })`). */
export interface BlindIndexerLike {
  index(field: string, table: string, value: string, spec?: BlindIndexSpecLike): string;
}

/**
 * Migrate a table the application reads through `@envelope/records`: pass the same schema
 * and blind indexer the app gives `createRecordCipher`, and each migrated value is written
 * as the app writes it — the field's type tag before the value, the field's padding, and
 * its blind index column(s) set in the same compare-and-swap `UPDATE` as the value, so
 * `findBy` finds the row.
 */
export interface MigrateRecordsOptions {
  /** The app's record schema: table, idField, encrypted fields, blindIndexes, pad. */
  schema: RecordSchemaLike;
  /** The app's blind indexer. Required when the schema declares blind indexes for a migrated column. */
  blindIndex?: BlindIndexerLike;
  /** How a legacy plaintext becomes the field's value: `string` (default, UTF-8 text) or `bytes` (a Buffer field). */
  valueType?: "string" | "bytes";
  /** The app Envelope's own `pad`, used for fields the schema's `pad` does not list. Default: none. */
  pad?: PadOption;
  /**
   * `{ <database column>: <record property> }` for each column whose name is not the
   * property's: the app's ORM maps `ssn` to the column `ssn_enc` (Sequelize
   * `field: "ssn_enc"`, TypeORM `@Column({ name: "ssn_enc" })`, Drizzle
   * `ssn: text("ssn_enc")`). Covers migrated columns, blind index columns and the primary
   * key. The context's `column`, the padding and the blind index are the property's, as the
   * app's record cipher seals and opens them. Unlisted columns are their property's name.
   *
   * @example
   * { ssn_enc: "ssn", ssn_bidx: "ssn_idx", user_id: "id" }
   */
  fieldOfColumn?: Readonly<Record<string, string>>;
}

/** One migrated column as the app's record cipher writes it. */
export interface RecordField {
  /** The record property the column holds: the `column` of each value's context. */
  field: string;
  pad?: PadOption;
  /** The blind index column, its plan, and the index of a plaintext string. */
  index?: { column: ColumnPlan; of: (value: string) => string };
}

/** The records layout of a migrate job, resolved against the database. */
export interface RecordPlan {
  /** The schema's table name: the `table` of every value's context. */
  table: string;
  valueType: "string" | "bytes";
  fields: ReadonlyMap<string, RecordField>;
}

const bad = (field: string, message: string) =>
  new ConfigError("ENVELOPE_BAD_CONFIG", `migrate records: ${message}`, { details: { field } });

/**
 * Checks the records options against the job (each column holds an encrypted field of the
 * schema, the primary key holds its idField, directly or through `fieldOfColumn`) and the
 * table (index columns exist and hold text).
 */
export async function planRecords(
  db: SqlAdapter,
  table: string,
  primaryKey: string,
  columns: readonly string[],
  options: MigrateRecordsOptions,
): Promise<RecordPlan> {
  const schema = options?.schema;
  if (!schema || typeof schema.table !== "string" || !Array.isArray(schema.encrypted)) {
    throw bad(
      "records.schema",
      "schema must be the app's record schema ({ table, encrypted, blindIndexes?, pad? }), the one given to createRecordCipher.",
    );
  }
  const valueType = options.valueType ?? "string";
  if (valueType !== "string" && valueType !== "bytes")
    throw bad("records.valueType", 'valueType must be "string" or "bytes".');
  const idField = schema.idField ?? "id";
  const indexProperty = (field: string) => {
    const spec = schema.blindIndexes?.[field];
    return spec ? (spec.column ?? `${field}_idx`) : undefined;
  };
  const properties = new Set([idField, ...schema.encrypted]);
  for (const f of schema.encrypted) {
    const index = indexProperty(f);
    if (index) properties.add(index);
  }
  const names = columnNames(options.fieldOfColumn, properties);
  if (names.fieldOf(primaryKey) !== idField) {
    throw bad(
      "records.schema.idField",
      `the schema's id field "${idField}" must be the table's primary key "${primaryKey}" (the record id is part of every value's context); if the app's ORM stores it under another column name, map it: records.fieldOfColumn = { ${JSON.stringify(primaryKey)}: ${JSON.stringify(idField)} }.`,
    );
  }
  const described = await describeTable(db, table);
  const fields = new Map<string, RecordField>();
  const columnOfField = new Map<string, string>();
  for (const column of columns) {
    const name = names.fieldOf(column);
    if (!schema.encrypted.includes(name)) {
      throw bad(
        "columns",
        `column "${column}" is not an encrypted field of the schema (encrypted: ${schema.encrypted.join(", ")}). If the app's ORM stores a field under this column name, map it: records.fieldOfColumn = { ${JSON.stringify(column)}: "<field>" }.`,
      );
    }
    const twice = columnOfField.get(name);
    if (twice !== undefined) {
      throw bad(
        "records.fieldOfColumn",
        `columns "${twice}" and "${column}" both hold the field "${name}": migrate the column the app reads it from.`,
      );
    }
    columnOfField.set(name, column);
    fields.set(column, await planField(name));
  }
  return { table: schema.table, valueType, fields };

  async function planField(field: string): Promise<RecordField> {
    const spec = schema.blindIndexes?.[field];
    const pad = schema.pad?.[field] ?? options.pad;
    const out: RecordField = { field, ...(pad !== undefined ? { pad } : {}) };
    if (!spec) return out;
    const indexer = options.blindIndex;
    if (!indexer || typeof indexer.index !== "function") {
      throw bad(
        "records.blindIndex",
        `field "${field}" has a blind index: pass the app's blind indexer (createBlindIndexer({ keys })) as records.blindIndex.`,
      );
    }
    if (valueType === "bytes") {
      throw bad(
        "records.valueType",
        `field "${field}" has a blind index, which indexes strings: migrate it with valueType "string".`,
      );
    }
    const property = indexProperty(field)!;
    const mapped = names.columnOf(property);
    if (mapped === undefined) {
      throw bad(
        "records.fieldOfColumn",
        `the column "${property}" holds another property, so the blind index "${property}" of field "${field}" has no column: map its column: records.fieldOfColumn = { "<index column>": ${JSON.stringify(property)} }.`,
      );
    }
    const name = checkName(mapped, "blind index column");
    if (!described.has(name)) {
      throw bad(
        "records.fieldOfColumn",
        `the blind index "${property}" of field "${field}" has no column "${name}" in table "${table}": if the app's ORM stores it under another column name, map it: records.fieldOfColumn = { "<index column>": ${JSON.stringify(property)} }.`,
      );
    }
    const info = requireColumn(described, table, name, "columns");
    if (info.kind !== "text") {
      throw bad(
        "records.schema.blindIndexes",
        `blind index column "${name}" is ${info.dataType}; it holds hex text (VARCHAR / TEXT).`,
      );
    }
    if (name === primaryKey || columns.includes(name))
      throw bad(
        "records.schema.blindIndexes",
        `"${name}" cannot be both an index and a value column.`,
      );
    const plan: ColumnPlan = { name, q: quote(db, name), form: "text", info };
    const of = (value: string) => indexer.index(field, schema.table, value, spec);
    out.index = { column: plan, of };
    return out;
  }
}
