import { ConfigError } from "@envelope/core";
import { checkDepth } from "./prisma-args.js";
import type { RecordCipher } from "./record-cipher.js";

// `where` of a Prisma query on a model with encrypted fields. The column holds ciphertext,
// so a plaintext compared with it matches nothing and reaches the database as a bound
// parameter: every `where` is walked, and each condition on an encrypted field is either
// exact in SQL (null checks), rewritten to its blind index and checked after opening, or
// refused before any SQL.

type Row = Record<string, unknown>;
type Test = (row: Row) => boolean;

/** What the extension needs to know about the models to walk a `where`. */
export interface WhereScope {
  cipher: RecordCipher;
  /** Encrypted field names of every configured model: what a relation filter may not name. */
  anyEncrypted: ReadonlySet<string>;
  /**
   * Relation filters are checked by model (prisma-relations.ts, from Prisma's runtime data
   * model); when false, any key of this model's where but its own fields is scanned for
   * `anyEncrypted` names instead.
   */
  relationsChecked?: boolean;
  /**
   * The model's field names (scalars and relations) from Prisma's runtime data model. Any
   * other key of a `where` (but AND / OR / NOT) is a compound unique input
   * (`name_email: { name, email }`), whose parts the database compares as they are sent.
   */
  modelFields?: ReadonlySet<string>;
}

/** A rewritten `where`: the database finds candidates, `test` (over opened rows) decides. */
export interface Rewritten {
  test: Test;
  /** Encrypted fields `test` reads: they must be selected. */
  fields: string[];
}

/** Operations whose candidates are opened and checked before anything is returned. */
const CHECKED = new Set([
  "findMany",
  "findFirst",
  "findFirstOrThrow",
  "findUnique",
  "findUniqueOrThrow",
]);
const SINGLE = new Set(["update", "delete", "upsert"]);

interface Node {
  /** What is sent: the input object itself when `exact`. */
  where: unknown;
  /** The database's `where` matches exactly the rows the input matches. */
  exact: boolean;
  /** When not exact: input ⟺ where ∧ test. */
  test?: Test;
  /** Input ⟺ ev(opened row), when it names encrypted fields only. */
  ev?: Test;
}

interface Walk {
  scope: WhereScope;
  operation: string;
  fields: Set<string>;
}

/**
 * Rewrites `args.where` in place; returns the check of the opened rows when the database can
 * only find candidates, undefined when its `where` is exact. Throws `ENVELOPE_BAD_INPUT`
 * (before any SQL) when a condition on an encrypted field cannot be matched soundly.
 */
export function rewriteWhere(
  scope: WhereScope,
  operation: string,
  args: Row,
): Rewritten | undefined {
  if (args.where === undefined || args.where === null) return undefined;
  const walk: Walk = { scope, operation, fields: new Set() };
  const node = whereNode(walk, args.where, 0);
  if (node.exact) return undefined;
  if (!CHECKED.has(operation)) {
    const field = [...walk.fields][0]!;
    throw bad(
      scope,
      field,
      operation,
      SINGLE.has(operation)
        ? `${operation} with where on the encrypted field "${field}": its blind index only finds candidates, which must be opened and checked before a row is changed. Find the row first (findFirst({ where: { ${field} } })), then ${operation} it by its id.`
        : `${operation} with where on the encrypted field "${field}": its blind index only finds candidates, which must be opened and checked, and ${operation} cannot do that. Find the rows first (findMany({ where: { ${field} }, select: { id: true } })), then ${operation} by id ({ where: { id: { in: ids } } })${operation === "count" || operation === "aggregate" || operation === "groupBy" ? " or compute it from the rows found" : ""}.`,
    );
  }
  args.where = node.where;
  return { test: node.test!, fields: [...walk.fields] };
}

function whereNode(walk: Walk, where: unknown, depth: number): Node {
  checkDepth(depth, walk.operation, "where");
  if (!isPlainObject(where)) return { where, exact: true };
  const { cipher } = walk.scope;
  const kept: Row = {};
  const added: unknown[] = [];
  const parts: Node[] = [];
  let plain = false;
  for (const [key, value] of Object.entries(where)) {
    if (value === undefined) {
      kept[key] = value;
      continue;
    }
    if (key === "AND") {
      const list = Array.isArray(value) ? value : [value];
      const kids = list.map((w) => whereNode(walk, w, depth + 1));
      parts.push(...kids);
      if (kids.every((k) => k.exact)) kept[key] = value;
      else added.push(...kids.map((k) => k.where));
    } else if (key === "OR") {
      const node = orNode(walk, Array.isArray(value) ? value : [value], depth);
      parts.push(node);
      if (node.exact) kept[key] = value;
      else added.push(node.where);
    } else if (key === "NOT") {
      parts.push(notNode(walk, Array.isArray(value) ? value : [value], depth));
      kept[key] = value;
    } else if (cipher.schema.encrypted.includes(key)) {
      const node = fieldNode(walk, key, value);
      parts.push(node);
      if (node.exact) kept[key] = value;
      else added.push(node.where);
    } else {
      refuseCompound(walk, key, value);
      if (!walk.scope.relationsChecked) refuseNested(walk, key, value, "where");
      plain = true;
      kept[key] = value;
    }
  }
  const exact = parts.every((p) => p.exact);
  const tests = parts.filter((p) => !p.exact).map((p) => p.test!);
  const evs = parts.map((p) => p.ev);
  return {
    where: exact
      ? where
      : { ...kept, AND: [...(kept.AND === undefined ? [] : asList(kept.AND)), ...added] },
    exact,
    test: exact ? undefined : (row) => tests.every((t) => t(row)),
    ev: plain || evs.some((e) => e === undefined) ? undefined : (row) => evs.every((e) => e!(row)),
  };
}

/**
 * OR: exact when every branch is; otherwise sound only when every branch names encrypted
 * fields alone, so that the opened values decide each branch (a branch on a plain field
 * would be dropped by the check of the others).
 */
function orNode(walk: Walk, list: unknown[], depth: number): Node {
  const kids = list.map((w) => whereNode(walk, w, depth + 1));
  if (kids.every((k) => k.exact)) {
    const evs = kids.map((k) => k.ev);
    return {
      where: list,
      exact: true,
      ev: evs.some((e) => e === undefined) ? undefined : (row) => evs.some((e) => e!(row)),
    };
  }
  if (kids.length === 1) return { ...kids[0]!, where: { OR: [kids[0]!.where] } };
  if (kids.some((k) => k.ev === undefined)) {
    const field = [...walk.fields][0]!;
    throw bad(
      walk.scope,
      field,
      walk.operation,
      `where: OR mixing the encrypted field "${field}" with other filters cannot be matched: its blind index only finds candidates, checked after opening, and that check would drop the rows matched by the other branches. Keep the encrypted conditions in an OR of their own (AND it with the rest), or run one query per branch and merge the results.`,
    );
  }
  const evs = kids.map((k) => k.ev!);
  const ev: Test = (row) => evs.some((e) => e(row));
  return { where: { OR: kids.map((k) => k.where) }, exact: false, test: ev, ev };
}

/** NOT: a negated candidate set would drop rows, so only exact conditions may be negated. */
function notNode(walk: Walk, list: unknown[], depth: number): Node {
  const kids = list.map((w) => whereNode(walk, w, depth + 1));
  const inexact = kids.find((k) => !k.exact);
  if (inexact) {
    const field = [...walk.fields][0]!;
    throw bad(
      walk.scope,
      field,
      walk.operation,
      `where: NOT on the encrypted field "${field}" cannot be matched: its blind index only finds candidates, and negating them would drop rows. Find the matching ids first (findMany({ where: { ${field} }, select: { id: true } })), then filter with id: { notIn: ids }.`,
    );
  }
  const evs = kids.map((k) => k.ev);
  return {
    where: list,
    exact: true,
    ev: evs.some((e) => e === undefined) ? undefined : (row) => evs.every((e) => !e!(row)),
  };
}

/**
 * A condition on one encrypted field: null checks (`null`, `{ equals: null }`,
 * `{ not: null }`) are exact on the ciphertext column; a string equality (`"x"`,
 * `{ equals: "x" }`, `{ in: ["x", …] }`) on a field with a blind index becomes
 * `<index> IN (candidates)`; anything else is refused.
 */
function fieldNode(walk: Walk, field: string, value: unknown): Node {
  if (value === null) return { where: value, exact: true, ev: (row) => row[field] == null };
  if (typeof value === "string") return equality(walk, field, [value]);
  if (!isPlainObject(value)) refuseOperator(walk, field, typeof value);
  const parts: Node[] = [];
  for (const [op, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (op === "equals" && v === null) {
      parts.push({
        where: { [field]: { equals: null } },
        exact: true,
        ev: (r) => r[field] == null,
      });
    } else if (op === "equals" && typeof v === "string") {
      parts.push(equality(walk, field, [v]));
    } else if (op === "in" && Array.isArray(v) && v.every((x) => typeof x === "string")) {
      parts.push(
        v.length === 0
          ? { where: { [field]: { in: [] } }, exact: true, ev: () => false }
          : equality(walk, field, v),
      );
    } else if (op === "not" && v === null) {
      parts.push({ where: { [field]: { not: null } }, exact: true, ev: (r) => r[field] != null });
    } else {
      refuseOperator(walk, field, `"${op}"`);
    }
  }
  const evs = parts.map((p) => p.ev!);
  const ev: Test = (row) => evs.every((e) => e(row));
  if (parts.every((p) => p.exact)) return { where: value, exact: true, ev };
  return { where: { AND: parts.map((p) => p.where) }, exact: false, test: ev, ev };
}

function equality(walk: Walk, field: string, values: string[]): Node {
  const { cipher } = walk.scope;
  const column = cipher.indexColumn(field);
  if (!column) {
    throw bad(
      walk.scope,
      field,
      walk.operation,
      `where on the encrypted field "${field}", which has no blind index: the column holds ciphertext, so the database cannot match it. Declare a blind index for "${field}", or filter on other fields and compare the opened values in the application.`,
    );
  }
  walk.fields.add(field);
  const candidates = [...new Set(values.flatMap((v) => cipher.candidatesFor(field, v)))];
  const ev: Test = (row) => values.some((v) => cipher.matches(field, row[field], v));
  return { where: { [column]: { in: candidates } }, exact: false, test: ev, ev };
}

/**
 * A compound unique input (`@@unique([name, email])` → `name_email: { name, email }`) is
 * not a field of the model: its parts are compared in SQL as sent, so one naming an
 * encrypted field would send its plaintext and match nothing. Refused (without a data
 * model, refuseNested catches it: it scans every other key for encrypted names).
 */
function refuseCompound(walk: Walk, key: string, value: unknown) {
  const fields = walk.scope.modelFields;
  if (!fields || fields.has(key) || !isPlainObject(value)) return;
  const field = walk.scope.cipher.schema.encrypted.find((f) => f in value);
  if (field === undefined) return;
  throw bad(
    walk.scope,
    field,
    walk.operation,
    `where: the compound unique key "${key}" includes the encrypted field "${field}", whose column holds ciphertext, so the database cannot match it. Use the id or another unique key of plain fields, or find the row first (findFirst({ where: { ${field}, ... } })) and use its id.`,
  );
}

function refuseOperator(walk: Walk, field: string, what: string): never {
  throw bad(
    walk.scope,
    field,
    walk.operation,
    `where on the encrypted field "${field}" with ${what}: the column holds ciphertext, so only a string equality ("x", { equals: "x" }, { in: [...] }, through its blind index) and null checks (null, { not: null }) can be matched. Filter on other fields and compare the opened values in the application.`,
  );
}

/**
 * A relation filter (or anything else not a field of this model) naming an encrypted field
 * of a configured model is not rewritten (the extension sees only this model's query), so
 * its plaintext would reach the database: refused.
 */
export function refuseNested(
  walk: Pick<Walk, "scope" | "operation">,
  key: string,
  value: unknown,
  clause: string,
) {
  const hit = keyIn(walk.operation, value, walk.scope.anyEncrypted, 0);
  if (hit === undefined) return;
  throw bad(
    walk.scope,
    hit,
    walk.operation,
    `${clause} through "${key}" names the encrypted field "${hit}": a nested (relation) filter is not rewritten, so the database would compare ciphertext with it. Query that model directly (its blind index works there) and filter by the ids found.`,
  );
}

/** The first key of `node` (at any depth) in `names`, or a string of a `fields` list. */
export function keyIn(
  operation: string,
  node: unknown,
  names: ReadonlySet<string>,
  depth: number,
): string | undefined {
  checkDepth(depth, operation, "a clause");
  if (typeof node !== "object" || node === null) return undefined;
  for (const [key, value] of Object.entries(node)) {
    if (names.has(key)) return key;
    if (key === "fields" && Array.isArray(value)) {
      const hit = value.find((v) => typeof v === "string" && names.has(v));
      if (hit !== undefined) return hit as string;
    }
    const hit = keyIn(operation, value, names, depth + 1);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

export function bad(
  scope: WhereScope,
  field: string | undefined,
  operation: string,
  message: string,
): ConfigError {
  return new ConfigError("ENVELOPE_BAD_INPUT", message, {
    details: { table: scope.cipher.schema.table, operation, ...(field ? { field } : {}) },
  });
}

function isPlainObject(x: unknown): x is Row {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

function asList(x: unknown): unknown[] {
  return Array.isArray(x) ? x : [x];
}
