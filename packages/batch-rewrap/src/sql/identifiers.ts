import { ConfigError } from "@envelope/core";
import type { SqlAdapter } from "../adapters/types.js";

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Checks a table (`name` or `schema.name`) or column name; names are never interpolated unchecked. */
export function checkName(name: unknown, what: string, allowSchema = false): string {
  const parts = typeof name === "string" ? name.split(".") : [];
  const ok =
    parts.length > 0 && parts.length <= (allowSchema ? 2 : 1) && parts.every((p) => NAME.test(p));
  if (!ok) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `${what} "${String(name).slice(0, 80)}" is not a plain SQL name (letters, digits, _${allowSchema ? "; optionally schema.table" : ""}).`,
      { details: { field: what } },
    );
  }
  return name as string;
}

/** Quotes a checked name for the adapter's dialect. */
export function quote(db: Pick<SqlAdapter, "dialect">, name: string): string {
  const q = db.dialect === "mysql" ? "`" : '"';
  return name
    .split(".")
    .map((part) => `${q}${part}${q}`)
    .join(".");
}
