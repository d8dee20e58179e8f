import { ConfigError } from "@envelope/core";

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
  for (const [k, v] of Object.entries(out)) out[k] = unwrapSet(v);
  return out;
}

/** Prisma's `{ set: value }` for a scalar field: the value; anything else as it is. */
export function unwrapSet(v: unknown): unknown {
  if (
    v &&
    typeof v === "object" &&
    !Array.isArray(v) &&
    Object.keys(v).length === 1 &&
    "set" in v
  ) {
    return (v as { set: unknown }).set;
  }
  return v;
}

/**
 * Opening needs the id, and the check of a rewritten `where` the fields it names: select
 * them when the caller's `select` leaves them out, or stop omitting them (`omit`). Returns
 * the fields added, to be removed from the results again.
 */
export function selectFor(
  args: Args,
  idField: string,
  encrypted: readonly string[],
  checked: readonly string[],
): string[] {
  const omit = args.omit as Row | undefined;
  if (omit && !args.select) {
    const returned = encrypted.some((f) => !omit[f]) || checked.length > 0;
    const needed = returned ? [idField, ...checked] : [];
    const added = needed.filter((f) => omit[f]);
    if (added.length > 0) args.omit = withoutFields(omit, added);
    return added;
  }
  const select = args.select;
  if (!select) return [];
  const opened = encrypted.some((f) => select[f]) || checked.length > 0;
  const added = (opened ? [idField, ...checked] : []).filter((f) => !select[f]);
  if (added.length > 0)
    args.select = { ...select, ...Object.fromEntries(added.map((f) => [f, true])) };
  return added;
}

/**
 * How deep every walk of a query's arguments goes (where, relation filters, nested reads
 * and writes, orderBy…). Past it, the query is refused: a walk that stopped silently would
 * let an encrypted field nested deeper reach the database unchecked.
 */
export const MAX_DEPTH = 64;

/** Throws `ENVELOPE_BAD_INPUT` when `depth` is past MAX_DEPTH. */
export function checkDepth(depth: number, operation: string, clause: string): void {
  if (depth <= MAX_DEPTH) return;
  throw new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `${operation}: ${clause} is nested more than ${MAX_DEPTH} levels deep, too deep to check for encrypted fields. Flatten it (AND / OR lists, fewer nested relations).`,
    { details: { operation, clause } },
  );
}
