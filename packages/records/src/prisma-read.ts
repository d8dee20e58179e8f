import { type Args, type Delegates, withAnd } from "./prisma-args.js";
import type { RecordCipher } from "./record-cipher.js";
import { openAll } from "./rows.js";

type Row = Record<string, unknown>;

/**
 * find* with a blind-index filter: the candidates are opened (once, with openMany), the
 * false positives of a truncated index dropped, and the opened rows returned. findFirst
 * runs as findMany through the base (unextended) client, because it could otherwise stop
 * at a false positive, then takes the first true match; findUnique finds at most one row.
 */
export async function findFiltered(
  cipher: RecordCipher,
  operation: string,
  args: Args,
  query: (args: Args) => Promise<unknown>,
  delegate: () => Delegates[string],
  filter: (row: Row) => boolean,
  added: readonly string[],
): Promise<unknown> {
  const unique = operation === "findUnique" || operation === "findUniqueOrThrow";
  const raw =
    operation === "findMany" || unique ? await query(args) : await delegate().findMany(args);
  const rows = (Array.isArray(raw) ? raw : raw ? [raw] : []) as Row[];
  const kept = (await openAll<Row>(cipher, rows)).filter(filter).map((row) => strip(row, added));
  if (operation === "findMany") return kept;
  if (kept[0] === undefined && (operation === "findFirstOrThrow" || unique)) {
    // Let Prisma raise its own not-found error (P2025), as without the extension.
    const idField = cipher.schema.idField ?? "id";
    const none = { [idField]: { in: [] } };
    if (operation === "findFirstOrThrow") return query({ where: none });
    if (operation === "findUniqueOrThrow") return query({ where: withAnd(args.where!, none) });
  }
  return kept[0] ?? null;
}

/**
 * Opens what a query returned: a list with openMany (bounded, one unwrap per record; a row
 * that does not open fails the whole call with its typed error), a single row with open.
 */
export async function openResult(cipher: RecordCipher, result: unknown, added: readonly string[]) {
  // count, createMany ({ count }), aggregate, a select of plain fields only… carry no
  // encrypted field and are returned as they are; a row that carries one must open.
  const sealed = (x: unknown): x is Row =>
    typeof x === "object" &&
    x !== null &&
    !Array.isArray(x) &&
    cipher.schema.encrypted.some((f) => f in x);
  if (Array.isArray(result)) {
    const rows = result.filter(sealed);
    const opened = (await openAll<Row>(cipher, rows)).map((row) => strip(row, added));
    let next = 0;
    return result.map((item) => (sealed(item) ? opened[next++] : item));
  }
  if (!sealed(result)) return result;
  return strip(await cipher.open<Row>(result), added);
}

/** Removes the fields the extension added to the caller's select. */
export function strip(row: Row, added: readonly string[]): Row {
  for (const f of added) delete row[f];
  return row;
}
