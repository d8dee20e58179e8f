import { ConfigError } from "@envelope/core";

/**
 * How the table's columns map to the record's property names. An app's ORM may store a
 * field under another column name (Sequelize `field: "ssn_enc"`, TypeORM
 * `@Column({ name: "ssn_enc" })`, Drizzle `ssn: text("ssn_enc")`), while the record cipher
 * works on property names: the context's `column`, the padding and the blind index are the
 * field's, never the database column's.
 */
export interface ColumnNames {
  /** The record property a database column holds (itself when not mapped). */
  fieldOf(column: string): string;
  /** The database column that holds a record property, or undefined when none can. */
  columnOf(property: string): string | undefined;
}

const bad = (message: string) =>
  new ConfigError("ENVELOPE_BAD_CONFIG", `migrate records: ${message}`, {
    details: { field: "records.fieldOfColumn" },
  });

const EXAMPLE = '{ ssn_enc: "ssn", ssn_bidx: "ssn_idx" }';

/**
 * Checks `records.fieldOfColumn` ({ <database column>: <record property> }) against the
 * properties the schema names (encrypted fields, blind index columns, the id field).
 */
export function columnNames(mapping: unknown, properties: ReadonlySet<string>): ColumnNames {
  if (mapping === undefined) return { fieldOf: (c) => c, columnOf: (p) => p };
  if (typeof mapping !== "object" || mapping === null || Array.isArray(mapping)) {
    throw bad(
      `fieldOfColumn must map each database column to the record property it holds, e.g. ${EXAMPLE}.`,
    );
  }
  const byColumn = new Map<string, string>();
  const byProperty = new Map<string, string>();
  for (const [column, property] of Object.entries(mapping)) {
    if (typeof property !== "string" || property.length === 0) {
      throw bad(
        `fieldOfColumn["${column.slice(0, 64)}"] must be the name of a record property (a string), e.g. ${EXAMPLE}.`,
      );
    }
    if (!properties.has(property)) {
      throw bad(
        `fieldOfColumn maps column "${column.slice(0, 64)}" to "${property.slice(0, 64)}", which is not an encrypted field, a blind index column or the id field of the schema (${[...properties].join(", ")}). Use the property names the app's record cipher uses.`,
      );
    }
    const other = byProperty.get(property);
    if (other !== undefined) {
      throw bad(
        `fieldOfColumn maps both "${other}" and "${column}" to "${property}": one column holds one property.`,
      );
    }
    byColumn.set(column, property);
    byProperty.set(property, column);
  }
  return {
    fieldOf: (column) => byColumn.get(column) ?? column,
    // An unmapped property lives in the column of its own name, unless that column is
    // mapped to another property.
    columnOf: (property) =>
      byProperty.get(property) ?? (byColumn.has(property) ? undefined : property),
  };
}
