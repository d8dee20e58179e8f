import { ConfigError } from "@envelope/core";
import type { SqlAdapter } from "../adapters/types.js";
import { checkName } from "./identifiers.js";

/** How a column stores values, from its SQL type. */
export interface ColumnInfo {
  name: string;
  dataType: string;
  kind: "binary" | "text" | "integer" | "other";
  /** Characters (text) or bytes (binary) the column can hold; undefined = unbounded. */
  maxLength: number | undefined;
}

const BINARY = new Set([
  "bytea",
  "blob",
  "tinyblob",
  "mediumblob",
  "longblob",
  "varbinary",
  "binary",
]);
const TEXT = new Set([
  "text",
  "character varying",
  "character",
  "varchar",
  "char",
  "tinytext",
  "mediumtext",
  "longtext",
]);
const INTEGER = new Set(["integer", "bigint", "smallint", "int", "mediumint", "tinyint"]);

/**
 * The columns of a table, from information_schema. Throws a ConfigError naming the
 * table when it does not exist, before the job touches anything.
 */
export async function describeTable(
  db: SqlAdapter,
  table: string,
): Promise<Map<string, ColumnInfo>> {
  const [schema, name] = table.includes(".") ? table.split(".") : [undefined, table];
  const current = db.dialect === "mysql" ? "DATABASE()" : "current_schema()";
  const { rows } = await db.query(
    `SELECT column_name AS name, data_type AS type, character_maximum_length AS maxlen
       FROM information_schema.columns
      WHERE table_schema = COALESCE(?, ${current}) AND table_name = ?`,
    [schema ?? null, name],
  );
  if (rows.length === 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Table "${table}" was not found in the ${db.name} database (schema ${schema ?? "default"}). Check --table and the database URL.`,
      { details: { field: "table", table } },
    );
  }
  const out = new Map<string, ColumnInfo>();
  for (const row of rows) {
    // MySQL returns upper-case keys for information_schema aliases on some versions.
    const r = Object.fromEntries(Object.entries(row).map(([k, v]) => [k.toLowerCase(), v]));
    const dataType = String(r.type).toLowerCase();
    const max = r.maxlen === null || r.maxlen === undefined ? undefined : Number(r.maxlen);
    out.set(String(r.name), {
      name: String(r.name),
      dataType,
      kind: BINARY.has(dataType)
        ? "binary"
        : TEXT.has(dataType)
          ? "text"
          : INTEGER.has(dataType)
            ? "integer"
            : "other",
      maxLength: max !== undefined && Number.isFinite(max) && max > 0 ? max : undefined,
    });
  }
  return out;
}

/** The column's info, or a ConfigError that lists the table's columns. */
export function requireColumn(
  columns: Map<string, ColumnInfo>,
  table: string,
  column: string,
  role: string,
): ColumnInfo {
  const info = columns.get(column);
  if (!info) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Column "${column}" (${role}) is not in table "${table}". Its columns are: ${[...columns.keys()].join(", ")}.`,
      { details: { field: role, table, column } },
    );
  }
  return info;
}

/**
 * Checks that `table` and each of `columns` exist: a ConfigError names the one that does not.
 * For commands that only name a table to look something up by it (the CLI's job guard),
 * where a typo would match nothing and pass unseen.
 *
 * @example
 * await requireTableColumns(db, "users", ["email", "phone"]);
 */
export async function requireTableColumns(
  db: SqlAdapter,
  table: string,
  columns: readonly string[],
): Promise<void> {
  const described = await describeTable(db, checkName(table, "table", true));
  for (const column of columns) requireColumn(described, table, column, "column");
}
