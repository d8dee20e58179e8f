import { ConfigError } from "@envelope/core";
import type { ColumnInfo } from "../sql/introspect.js";
import type { Value } from "./transform.js";

/** One encrypted column as the job handles it. */
export interface ColumnPlan {
  name: string;
  /** Quoted for SQL. */
  q: string;
  form: "binary" | "text";
  info: ColumnInfo;
}

/** A stored value in the form the transform expects. */
export function toValue(raw: unknown, column: ColumnPlan): Value {
  if (column.form === "text") {
    if (typeof raw === "string") return raw;
    if (Buffer.isBuffer(raw)) return raw.toString("utf8");
  } else if (Buffer.isBuffer(raw)) {
    return raw;
  }
  throw new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `Column "${column.name}" returned a ${typeof raw} value where ${column.form === "text" ? "text" : "bytes"} were expected. Set the column's form (binary / text) to match how it is stored.`,
    { details: { column: column.name } },
  );
}

/** The value to write back, in the JS type the driver expects for the column. */
export function toStored(value: Value, column: ColumnPlan): string | Buffer {
  return column.info.kind === "binary" && typeof value === "string"
    ? Buffer.from(value, "utf8")
    : value;
}

/** Length of a value as the column counts it (characters for text, bytes for binary). */
export function storedLength(value: string | Buffer): number {
  return typeof value === "string" ? value.length : value.length;
}
