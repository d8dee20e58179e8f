import { ConfigError } from "@envelope/core";
import { checkDepth } from "./prisma-args.js";

// Relation filters reach an encrypted model through another model's query (`post.findMany(
// { where: { author: { email } } })`), which the extension does not rewrite: the database
// would compare ciphertext with the plaintext it is sent. Prisma's runtime data model says
// which keys are relations and to which model, so such filters are found and refused.

type Row = Record<string, unknown>;

/** The part of Prisma's runtime data model (`client._runtimeDataModel`) read here. */
export interface DataModel {
  models: Record<string, { fields: readonly { name: string; kind: string; type: string }[] }>;
}

export interface RelationScope {
  dataModel: DataModel;
  /** The encrypted fields of a configured model, by model name. */
  encrypted: ReadonlyMap<string, ReadonlySet<string>>;
}

const LIST_FILTERS = new Set(["some", "every", "none", "is", "isNot"]);

/** Prisma's runtime data model of a client, when it has one of the expected shape. */
export function dataModelOf(client: unknown): DataModel | undefined {
  const dm = (client as { _runtimeDataModel?: { models?: unknown } } | null)?._runtimeDataModel;
  return dm && typeof dm.models === "object" && dm.models !== null ? (dm as DataModel) : undefined;
}

/**
 * Throws `ENVELOPE_BAD_INPUT` when `args` of a query on `model` reach, through a relation,
 * an encrypted field of a configured model: in a relation filter of `where` (null checks
 * excepted), or in the `where` / `orderBy` / `cursor` / `distinct` of a relation read with
 * `select` / `include`. The model's own fields are not looked at here.
 */
export function refuseRelations(
  scope: RelationScope,
  model: string,
  operation: string,
  args: Row,
): void {
  const walk = { scope, operation };
  whereOf(walk, model, args.where, false, 0);
  orderByOf(walk, model, args.orderBy, 0);
  for (const clause of ["select", "include"] as const) readsOf(walk, model, args[clause], 0);
  for (const clause of ["data", "create", "update"] as const) {
    for (const data of Array.isArray(args[clause]) ? args[clause] : [args[clause]]) {
      writesOf(walk, model, data, 0);
    }
  }
}

/** Nested writes that only link rows (their where checked like a relation filter). */
const LINKS = new Set(["connect", "disconnect", "set", "delete", "deleteMany"]);

/**
 * Nested writes (`author: { create: { email } }`) of a configured model are not sealed by
 * the extension, which sees only the top-level model's query: their plaintext would be
 * stored. Refused; linking rows (connect, disconnect, set, delete*) is allowed, its where
 * checked like a relation filter. Writes into models that are not configured are walked on,
 * for relations of theirs that reach a configured one.
 */
function writesOf(walk: Walk, model: string, data: unknown, depth: number) {
  checkDepth(depth, walk.operation, "a nested write");
  if (!isObject(data)) return;
  for (const [key, value] of Object.entries(data)) {
    const target = relation(walk.scope, model, key);
    if (target === undefined || !isObject(value)) continue;
    const configured = walk.scope.encrypted.has(target);
    for (const [op, arg] of Object.entries(value)) {
      if (arg === undefined) continue;
      const list = Array.isArray(arg) ? arg : [arg];
      if (LINKS.has(op)) {
        for (const w of list) whereOf(walk, target, w, true, depth + 1);
      } else if (configured) {
        throw new ConfigError(
          "ENVELOPE_BAD_INPUT",
          `${walk.operation}: the nested write "${key}: { ${op} }" writes model ${target}, whose encrypted fields the extension seals only in ${target}'s own queries. Write the ${target} row with its own create / update (then connect it by id).`,
          { details: { model: target, operation: walk.operation } },
        );
      } else {
        for (const item of list) {
          if (!isObject(item)) continue;
          // create / update data, upsert's create + update, connectOrCreate's create, …
          whereOf(walk, target, item.where, true, depth + 1);
          for (const d of [item, item.data, item.create, item.update]) {
            for (const x of Array.isArray(d) ? d : [d]) writesOf(walk, target, x, depth + 1);
          }
        }
      }
    }
  }
}

interface Walk {
  scope: RelationScope;
  operation: string;
}

function relation(scope: RelationScope, model: string, key: string): string | undefined {
  const field = scope.dataModel.models[model]?.fields.find((f) => f.name === key);
  return field?.kind === "object" ? field.type : undefined;
}

function isField(scope: RelationScope, model: string, key: string): boolean {
  return scope.dataModel.models[model]?.fields.some((f) => f.name === key) ?? true;
}

function whereOf(walk: Walk, model: string, where: unknown, related: boolean, depth: number) {
  checkDepth(depth, walk.operation, "where");
  if (!isObject(where)) return;
  const own = related ? walk.scope.encrypted.get(model) : undefined;
  for (const [key, value] of Object.entries(where)) {
    if (value === undefined) continue;
    if (key === "AND" || key === "OR" || key === "NOT") {
      for (const w of Array.isArray(value) ? value : [value]) {
        whereOf(walk, model, w, related, depth + 1);
      }
      continue;
    }
    const target = relation(walk.scope, model, key);
    if (target !== undefined) {
      const filters =
        isObject(value) &&
        Object.keys(value).length > 0 &&
        Object.keys(value).every((k) => LIST_FILTERS.has(k))
          ? Object.values(value)
          : [value];
      for (const w of filters) whereOf(walk, target, w, true, depth + 1);
    } else if (own?.has(key) && !nullCheck(value)) {
      throw refused(walk, model, key, "a relation filter");
    } else if (own && isObject(value) && !isField(walk.scope, model, key)) {
      // A compound unique input (`connect: { name_email: { name, email } }`).
      const hit = Object.keys(value).find((k) => own.has(k));
      if (hit !== undefined) throw refused(walk, model, hit, `the compound unique key "${key}"`);
    }
  }
}

/**
 * `orderBy`, resolved field by field on the model it names: the queried model's own
 * encrypted fields, and those of any model reached through a relation (`orderBy: { author:
 * { email: "asc" } }`, from the query of any model), would sort by ciphertext.
 */
function orderByOf(walk: Walk, model: string, orderBy: unknown, depth: number) {
  checkDepth(depth, walk.operation, "orderBy");
  if (Array.isArray(orderBy)) {
    for (const item of orderBy) orderByOf(walk, model, item, depth + 1);
    return;
  }
  if (!isObject(orderBy)) return;
  const own = walk.scope.encrypted.get(model);
  for (const [key, value] of Object.entries(orderBy)) {
    if (value === undefined) continue;
    const target = relation(walk.scope, model, key);
    if (target !== undefined) {
      orderByOf(walk, target, value, depth + 1);
    } else if (own?.has(key)) {
      throw unsorted(walk, model, key);
    } else if (key === "_relevance" && own && isObject(value)) {
      const hit = namesIn(walk, value.fields, own, depth + 1);
      if (hit !== undefined) throw unsorted(walk, model, hit);
    }
  }
}

function unsorted(walk: Walk, model: string, field: string): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `${walk.operation}: orderBy on the encrypted field "${field}" of model ${model}: the column holds ciphertext, so the database would sort by random bytes. Sort the opened rows in the application, or by plain fields.`,
    { details: { model, field, operation: walk.operation } },
  );
}

function readsOf(walk: Walk, model: string, reads: unknown, depth: number) {
  checkDepth(depth, walk.operation, "select / include");
  if (!isObject(reads)) return;
  for (const [key, value] of Object.entries(reads)) {
    if (key === "_count" && isObject(value)) {
      readsOf(walk, model, value.select, depth + 1);
      continue;
    }
    const target = relation(walk.scope, model, key);
    if (target === undefined || !isObject(value)) continue;
    const own = walk.scope.encrypted.get(target);
    if (own) {
      whereOf(walk, target, value.where, true, depth + 1);
      for (const clause of ["orderBy", "cursor", "distinct"] as const) {
        const hit = namesIn(walk, value[clause], own, 0);
        if (hit !== undefined) throw refused(walk, target, hit, `a relation's ${clause}`);
      }
    } else {
      whereOf(walk, target, value.where, true, depth + 1);
    }
    readsOf(walk, target, value.select, depth + 1);
    readsOf(walk, target, value.include, depth + 1);
  }
}

function refused(walk: Walk, model: string, field: string, what: string): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `${walk.operation}: ${what} names the encrypted field "${field}" of model ${model}: the extension rewrites only the queried model's own where, so the database would compare ciphertext with it. Query ${model} directly (its blind index works there) and filter by the ids found.`,
    { details: { model, field, operation: walk.operation } },
  );
}

function nullCheck(value: unknown): boolean {
  if (value === null) return true;
  if (!isObject(value)) return false;
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return (
    entries.length > 0 && entries.every(([k, v]) => (k === "equals" || k === "not") && v === null)
  );
}

/** A key (any depth) or string (in a list or alone) of `node` in `names`. */
function namesIn(
  walk: Walk,
  node: unknown,
  names: ReadonlySet<string>,
  depth: number,
): string | undefined {
  checkDepth(depth, walk.operation, "a relation's orderBy / cursor / distinct");
  if (typeof node === "string") return names.has(node) ? node : undefined;
  if (typeof node !== "object" || node === null) return undefined;
  for (const [key, value] of Object.entries(node)) {
    if (!Array.isArray(node) && names.has(key)) return key;
    const hit = namesIn(walk, value, names, depth + 1);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

function isObject(x: unknown): x is Row {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
