import { ConfigError } from "@envelope/core";
import type { RecordCipher } from "./record-cipher.js";

// Rewriting the arguments of a Prisma query for a model with encrypted fields.

type Row = Record<string, unknown>;
export type Args = Record<string, unknown> & {
  data?: unknown;
  where?: Row;
  select?: Row;
  create?: Row;
  update?: Row;
};

/** The part of a Prisma client the extension uses: model delegates with findUnique. */
export type Delegates = Record<
  string,
  { findUnique(args: { where: Row }): Promise<Row | null>; findMany(args: Row): Promise<Row[]> }
>;

export function withoutFields(data: Row, fields: readonly string[]): Row {
  const out: Row = { ...data };
  for (const f of fields) delete out[f];
  return out;
}

/** `where` narrowed by `extra` (Prisma's unique where accepts AND with other filters). */
export function withAnd(where: Row, extra: Row): Row {
  const and = where.AND === undefined ? [] : Array.isArray(where.AND) ? where.AND : [where.AND];
  return { ...where, AND: [...and, extra] };
}

/** Prisma accepts `{ field: { set: value } }`: unwrap it for encrypted fields. */
export function plain(data: Row): Row {
  const out: Row = { ...data };
  for (const [k, v] of Object.entries(out)) {
    if (
      v &&
      typeof v === "object" &&
      !Array.isArray(v) &&
      "set" in v &&
      Object.keys(v).length === 1
    ) {
      out[k] = (v as { set: unknown }).set;
    }
  }
  return out;
}

/**
 * Opening needs the id: select it when the caller selected encrypted fields without it,
 * or stop omitting it when encrypted fields are returned (`omit: { id: true }`).
 */
export function addIdToSelect(
  args: Args,
  idField: string,
  encrypted: readonly string[],
): string | undefined {
  const omit = args.omit as Row | undefined;
  if (omit?.[idField] && !args.select && !encrypted.every((f) => omit[f])) {
    const { [idField]: _, ...rest } = omit;
    args.omit = rest;
    return idField;
  }
  const select = args.select;
  if (!select || select[idField] || !encrypted.some((f) => select[f])) return undefined;
  args.select = { ...select, [idField]: true };
  return idField;
}

/** `where: { email: "x" }` on a blind-indexed field → `where: { email_idx: { in: candidates } }`. */
export function rewriteWhere(
  cipher: RecordCipher,
  args: Args,
): ((row: Row) => boolean) | undefined {
  const where = args.where;
  if (!where) return undefined;
  const checks: ((row: Row) => boolean)[] = [];
  const next: Row = { ...where };
  for (const field of cipher.schema.encrypted) {
    if (!(field in where)) continue;
    let value = where[field];
    if (value && typeof value === "object" && "equals" in value) value = (value as Row).equals;
    const column = cipher.indexColumn(field);
    if (typeof value !== "string" || !column) {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `where.${field}: encrypted fields can only be matched by equality with a string, and only when they have a blind index.`,
        { details: { table: cipher.schema.table, field } },
      );
    }
    delete next[field];
    next[column] = { in: cipher.candidatesFor(field, value) };
    const expected = value;
    checks.push((row) => cipher.matches(field, row[field], expected));
  }
  if (checks.length === 0) return undefined;
  args.where = next;
  return (row) => checks.every((check) => check(row));
}
