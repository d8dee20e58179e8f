import { checkDepth } from "./prisma-args.js";
import { bad, keyIn, refuseNested, type WhereScope } from "./prisma-where.js";

// Clauses other than `where` that would make the database sort, group, page or aggregate by
// ciphertext (random bytes): refused up front, before any SQL, with what to do instead.

type Row = Record<string, unknown>;

const AGGREGATES = ["_min", "_max", "_avg", "_sum"] as const;
const NESTED = new Set(["where", "orderBy", "cursor", "distinct", "having"]);

/** Throws `ENVELOPE_BAD_INPUT` when a clause of `args` names an encrypted field. */
export function refuseClauses(scope: WhereScope, operation: string, args: Row): void {
  const own = new Set<string>(scope.cipher.schema.encrypted);
  const refuse = (field: string, clause: string, instead: string) => {
    throw bad(
      scope,
      field,
      operation,
      `${clause} on the encrypted field "${field}": the column holds ciphertext, so the database would ${instead}.`,
    );
  };

  // With Prisma's data model, orderBy is resolved model by model in refuseRelations; without
  // it, relation keys cannot be told from fields, so any configured model's encrypted name
  // under any key is refused.
  const order = scope.relationsChecked
    ? undefined
    : keyIn(operation, args.orderBy, scope.anyEncrypted, 0);
  if (order !== undefined) {
    refuse(
      order,
      `${operation}: orderBy`,
      "sort by random bytes. Sort the opened rows in the application, or by plain fields",
    );
  }
  const distinct = names(args.distinct).find((n) => own.has(n));
  if (distinct !== undefined) {
    refuse(
      distinct,
      `${operation}: distinct`,
      "compare random bytes (every value differs). Deduplicate the opened rows in the application",
    );
  }
  const cursor = keyIn(operation, args.cursor, own, 0);
  if (cursor !== undefined) {
    refuse(
      cursor,
      `${operation}: cursor`,
      "page by ciphertext. Use a cursor on the id or another plain unique field",
    );
  }
  if (operation === "groupBy") {
    const by = names(args.by).find((n) => own.has(n));
    if (by !== undefined) {
      refuse(
        by,
        "groupBy by",
        "group by random bytes (each row its own group, and nothing could be opened without the id). Group the opened rows in the application, or group by the blind index field",
      );
    }
    // having filters this model's own fields (aggregates of them): the union of every
    // model's encrypted names is only the fallback without a data model.
    const having = keyIn(
      operation,
      args.having,
      scope.relationsChecked ? own : scope.anyEncrypted,
      0,
    );
    if (having !== undefined) {
      refuse(
        having,
        "groupBy having",
        "filter groups by ciphertext. Filter the opened rows in the application",
      );
    }
  }
  for (const clause of AGGREGATES) {
    const hit = keyIn(operation, args[clause], own, 0);
    if (hit !== undefined) {
      refuse(
        hit,
        `${operation}: ${clause}`,
        "aggregate random bytes (and return a sealed value no one can open). Aggregate the opened rows in the application",
      );
    }
  }
  // Relations read with select / include take their own where, orderBy, cursor…: not
  // rewritten (the extension sees this model's query only), so refused when they name an
  // encrypted field of a configured model.
  if (!scope.relationsChecked) {
    for (const clause of ["select", "include"] as const) {
      nested(scope, operation, args[clause], clause, 0);
    }
  }
}

function nested(scope: WhereScope, operation: string, node: unknown, path: string, depth: number) {
  checkDepth(depth, operation, path);
  if (typeof node !== "object" || node === null) return;
  for (const [key, value] of Object.entries(node)) {
    if (NESTED.has(key)) {
      refuseNested({ scope, operation }, path, value, key);
      if (key === "distinct") {
        const hit = names(value).find((n) => scope.anyEncrypted.has(n));
        if (hit !== undefined) refuseNested({ scope, operation }, path, { [hit]: true }, key);
      }
    } else {
      nested(scope, operation, value, `${path}.${key}`, depth + 1);
    }
  }
}

function names(x: unknown): string[] {
  if (typeof x === "string") return [x];
  return Array.isArray(x) ? x.filter((v): v is string => typeof v === "string") : [];
}
