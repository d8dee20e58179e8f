import { type Args, type Delegates, withAnd } from "./prisma-args.js";
import { bad, type WhereScope } from "./prisma-where.js";
import type { RecordCipher } from "./record-cipher.js";
import { openAll } from "./rows.js";

type Row = Record<string, unknown>;

/** `skip` / `take` of a find with a blind-index filter, applied after the check. */
export interface Page {
  skip: number;
  take?: number;
}

/**
 * A blind index only finds candidates, and the false positives are dropped after opening:
 * paging or deduplicating in SQL would count them, so a row planted with a copied index
 * value could push the real match out of the page (or be the one `distinct` keeps). `skip`
 * and `take` are taken out of `args` and applied to the checked rows; `distinct` and a
 * negative `take` (paging backwards from a cursor) are refused.
 */
export function pageInMemory(
  scope: WhereScope,
  operation: string,
  args: Args,
  field: string | undefined,
): Page {
  const refuse = (what: string): never => {
    throw bad(
      scope,
      field,
      operation,
      `${operation}: ${what} with where on an encrypted field: its blind index only finds candidates, checked after opening, so the database would ${what === "distinct" ? "deduplicate" : "page"} before the false positives are dropped, and a planted row could hide the real match. Find the rows without it (findMany({ where${field ? `: { ${field} }` : ""} })) and ${what === "distinct" ? "deduplicate" : "page"} them in the application.`,
    );
  };
  if (args.distinct !== undefined) refuse("distinct");
  const { skip, take } = args;
  if (take !== undefined && (!Number.isSafeInteger(take) || (take as number) < 0)) {
    refuse("a take that is not a count >= 0");
  }
  if (skip !== undefined && (!Number.isSafeInteger(skip) || (skip as number) < 0)) {
    refuse("a skip that is not a count >= 0");
  }
  delete args.skip;
  delete args.take;
  return { skip: (skip as number | undefined) ?? 0, take: take as number | undefined };
}

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
  page: Page = { skip: 0 },
): Promise<unknown> {
  const unique = operation === "findUnique" || operation === "findUniqueOrThrow";
  const raw =
    operation === "findMany" || unique ? await query(args) : await delegate().findMany(args);
  const rows = (Array.isArray(raw) ? raw : raw ? [raw] : []) as Row[];
  const checked = (await openAll<Row>(cipher, rows)).filter(filter);
  const end = page.take === undefined ? undefined : page.skip + page.take;
  const kept = checked.slice(page.skip, end).map((row) => strip(row, added));
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
