import { ConfigError } from "@envelope/core";
import {
  type EntityMetadata,
  InsertQueryBuilder,
  QueryBuilder,
  SelectQueryBuilder,
  UpdateQueryBuilder,
} from "typeorm";
import { isWellFormedSealed } from "./sealed-value.js";
import { referencedColumn } from "./typeorm-sql-refs.js";
import { checkWhere } from "./typeorm-where.js";

type Row = Record<string, unknown>;

/** What the QueryBuilder guards know of an encrypted entity. */
export interface Guarded {
  table: string;
  /** Encrypted property → its blind index property (if any). */
  indexOf: Map<string, string | undefined>;
  /** Names (property and database) that refer to an encrypted column. */
  names: Set<string>;
  /** The id's property and database names: its values' context, so never set in bulk. */
  idNames: Set<string>;
}

const guardedOf = new WeakMap<EntityMetadata, Guarded>();
let installed = false;

/** The guarded entity `metadata` describes, if it is encrypted. */
export function guardedFor(metadata: EntityMetadata): Guarded | undefined {
  return guardedOf.get(metadata);
}

/**
 * TypeORM QueryBuilders bypass the entity subscriber's checks in these places; each is
 * guarded once for every encrypted entity:
 * - a `where` / `andWhere` / `orWhere` (Select, Update, Delete, and inside `Brackets`) that
 *   compares an encrypted column: as an object it is refused like find options; as an SQL
 *   string, or a function returning one, it is refused when it names an encrypted column
 *   other than in `IS [NOT] NULL` (names in string literals and parameters do not count);
 * - `having` / `andHaving` / `orHaving` and the condition of a join (`leftJoin`,
 *   `innerJoin`, their `AndSelect` / `AndMap` forms) naming an encrypted column: refused as a
 *   where string is (the comparison would match nothing);
 * - `orderBy` / `addOrderBy` (also find options' `order`) and `groupBy` / `addGroupBy` by an
 *   encrypted column: refused (sealed values are random, so the order or the groups would
 *   be meaningless);
 * - `update().set(values)` with a plaintext for an encrypted column, or a blind index column
 *   without its field: refused (a sealed value or null passes: that is how `save` writes);
 * - `insert().orUpdate(columns, conflict)` overwriting an encrypted column: allowed only on a
 *   conflict on the primary key (the values are sealed under the inserted row's id), and on
 *   MySQL/MariaDB only when the table has no other unique key; the blind index column of
 *   each overwritten field is added to the overwritten columns.
 * Every refusal is `ENVELOPE_BAD_INPUT` and says what to use instead.
 */
export function guardQueryBuilders(
  metadata: EntityMetadata,
  table: string,
  indexOf: Map<string, string | undefined>,
  idField: string,
): void {
  const namesOf = (fields: Iterable<string>) => {
    const names = new Set<string>();
    for (const field of fields) {
      names.add(field);
      const column = metadata.findColumnWithPropertyName(field);
      if (column) names.add(column.databaseName);
    }
    return names;
  };
  guardedOf.set(metadata, {
    table,
    indexOf,
    names: namesOf(indexOf.keys()),
    idNames: namesOf([idField]),
  });
  if (installed) return;
  installed = true;
  guardWhere();
  guardClauses();
  guardSet();
  guardOrUpdate();
}

export function refused(g: Guarded, field: string, what: string, instead: string): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `${what} on the encrypted column "${field}" of "${g.table}": ${instead}`,
    { details: { table: g.table, field } },
  );
}

const FIND_BY =
  "the column holds ciphertext, so the SQL would compare it with your value and match nothing. Find rows by the blind index (findBy of encryptEntity, or WHERE <field>_idx IN (:...candidates) with cipher.candidatesFor), or filter on plain columns.";

export type Builder = {
  expressionMap: {
    mainAlias?: { name: string; hasMetadata: boolean; metadata: EntityMetadata };
    aliases: { name: string; hasMetadata: boolean; metadata: EntityMetadata }[];
  };
  connection: { driver: { options: { type: string } } };
  parentQueryBuilder?: Builder;
};

/** The encrypted entities a builder (and the builders it is nested in) can name, by alias. */
export function aliasesOf(qb: Builder): [alias: string, guarded: Guarded][] {
  const out: [string, Guarded][] = [];
  for (let b: Builder | undefined = qb; b; b = b.parentQueryBuilder) {
    const { mainAlias, aliases } = b.expressionMap;
    for (const a of [mainAlias, ...aliases]) {
      const g = a?.hasMetadata ? guardedOf.get(a.metadata) : undefined;
      if (g && !out.some(([name]) => name === a!.name)) out.push([a!.name, g]);
    }
  }
  return out;
}

function guardWhere(): void {
  const proto = QueryBuilder.prototype as unknown as {
    getWhereCondition(this: Builder, where: unknown): unknown;
  };
  const original = proto.getWhereCondition;
  proto.getWhereCondition = function (this: Builder, where: unknown) {
    const aliases = aliasesOf(this);
    if (aliases.length === 0) return original.call(this, where);
    // `where((qb) => "…")`: TypeORM calls it here and uses the SQL it returns, so that SQL
    // is checked as a where string is (a subquery it builds was checked by its own wheres).
    const condition = typeof where === "function" ? original.call(this, where) : where;
    if (typeof condition === "string") {
      const hit = referencedColumn(condition, aliases);
      if (hit) throw refused(hit[1], hit[0], "A QueryBuilder where", FIND_BY);
    } else if (typeof where === "object" && where !== null && !isBrackets(where)) {
      const main = this.expressionMap.mainAlias;
      if (main?.hasMetadata) checkWhere(main.metadata, where, 0);
    }
    return typeof where === "function" ? condition : original.call(this, where);
  };
}

function isBrackets(where: object): boolean {
  return "whereFactory" in where;
}

const SORT =
  "each value is sealed under its own key and a random nonce, so the database would sort or group by noise. Sort or group the opened entities in the app, or by a plain column.";

type Method = (this: Builder, ...args: unknown[]) => unknown;

/** Wraps `proto[name]` so that the SQL fragments `fragments(args)` picks are checked first. */
function checkFragments(
  proto: object,
  name: string,
  what: string,
  instead: string,
  fragments: (args: unknown[]) => unknown[],
  after = false,
): void {
  const target = proto as Record<string, Method>;
  const original = target[name]!;
  target[name] = function (this: Builder, ...args: unknown[]) {
    const check = () => {
      const aliases = aliasesOf(this);
      if (aliases.length === 0) return;
      for (const sql of fragments(args)) {
        if (typeof sql !== "string") continue;
        const hit = referencedColumn(sql, aliases);
        if (hit) throw refused(hit[1], hit[0], what, instead);
      }
    };
    // A join's condition may name the alias the join itself creates: checked after it.
    if (!after) check();
    const out = original.apply(this, args);
    if (after) check();
    return out;
  };
}

/** The sort keys of `orderBy(sort | { sort: order })`. */
const sortKeys = ([sort]: unknown[]) =>
  typeof sort === "object" && sort !== null ? Object.keys(sort) : [sort];

function guardClauses(): void {
  const select = SelectQueryBuilder.prototype;
  for (const name of ["having", "andHaving", "orHaving"])
    checkFragments(select, name, "A QueryBuilder having", FIND_BY, ([sql]) => [sql]);
  for (const name of ["groupBy", "addGroupBy"])
    checkFragments(select, name, "A QueryBuilder groupBy", SORT, ([sql]) => [sql]);
  // Every join form (leftJoin, innerJoinAndSelect, leftJoinAndMapOne, …) ends in join().
  checkFragments(
    select,
    "join",
    "A QueryBuilder join condition",
    FIND_BY,
    (args) => [args[3]],
    true,
  );
  for (const proto of [select, UpdateQueryBuilder.prototype]) {
    for (const name of ["orderBy", "addOrderBy"])
      checkFragments(proto, name, "A QueryBuilder orderBy", SORT, sortKeys);
  }
}

function guardSet(): void {
  const original = UpdateQueryBuilder.prototype.set;
  UpdateQueryBuilder.prototype.set = function (this: UpdateQueryBuilder<never>, values) {
    const main = (this as unknown as Builder).expressionMap.mainAlias;
    const g = main?.hasMetadata ? guardedOf.get(main.metadata) : undefined;
    if (g && typeof values === "object" && values !== null) checkSet(g, values as Row);
    return original.call(this, values);
  } as UpdateQueryBuilder<never>["set"];
}

const SAVE =
  "each row's values are sealed under its own data key and bound to its id, so a bulk SET cannot write them. Load the entity and save() it (or repository.save / upsert on the primary key).";

/**
 * Sealed values that the entity subscriber has just written in place of a plaintext whose
 * blind index stays as stored (a save that moves the whole record to a fresh data key
 * re-seals every field; TypeORM leaves an index column out of the UPDATE when its value did
 * not change). `set()` takes them without their index column. Each is taken once; an entry
 * whose save never reached `set()` (it failed first) expires after a minute.
 */
const indexKept = new Map<unknown, number>();
const INDEX_KEPT_MS = 60_000;

/** Called by the subscriber for each such value, right before TypeORM's UPDATE. */
export function keepIndexFor(value: unknown): void {
  const now = Date.now();
  for (const [v, until] of indexKept) if (until < now) indexKept.delete(v);
  indexKept.set(value, now + INDEX_KEPT_MS);
}

function checkSet(g: Guarded, values: Row): void {
  for (const id of g.idNames) {
    if (values[id] !== undefined)
      throw refused(
        g,
        id,
        "update().set() changing the id",
        "each row's encrypted values are bound to its id, so they would no longer open. Create the row under the new id (load it, save a copy with the new id, delete the old one).",
      );
  }
  for (const [field, index] of g.indexOf) {
    const value = values[field];
    if (value !== undefined) {
      const sealed = value === null || isWellFormedSealed(value);
      if (!sealed) throw refused(g, field, "update().set() of a plaintext", SAVE);
      if (index && values[index] === undefined && !indexKept.delete(value))
        throw refused(g, field, "update().set() without its blind index column", SAVE);
    } else if (index && values[index] !== undefined) {
      throw refused(g, field, `update().set() of the blind index column "${index}" alone`, SAVE);
    }
  }
}

function guardOrUpdate(): void {
  const original = InsertQueryBuilder.prototype.orUpdate;
  InsertQueryBuilder.prototype.orUpdate = function (
    this: InsertQueryBuilder<never>,
    overwrite: unknown,
    conflictTarget?: unknown,
    ...rest: unknown[]
  ) {
    const main = (this as unknown as Builder).expressionMap.mainAlias;
    const g = main?.hasMetadata ? guardedOf.get(main.metadata) : undefined;
    let columns = overwrite;
    if (g && Array.isArray(overwrite)) {
      const mysql = ["mysql", "mariadb"].includes(
        (this as unknown as Builder).connection.driver.options.type,
      );
      columns = checkOrUpdate(g, main!.metadata, overwrite as string[], conflictTarget, mysql);
    }
    return (original as (...a: unknown[]) => InsertQueryBuilder<never>).call(
      this,
      columns,
      conflictTarget,
      ...rest,
    );
  } as InsertQueryBuilder<never>["orUpdate"];
}

const UPSERT =
  "the inserted values are sealed under the inserted row's id, so a row matched on another key would hold values bound to another id. Upsert on the primary key (upsert(values, [<id>])), or load the entity and save() it.";

/** The columns to overwrite, with the blind index of each overwritten encrypted field. */
function checkOrUpdate(
  g: Guarded,
  metadata: EntityMetadata,
  overwrite: string[],
  conflictTarget: unknown,
  mysql: boolean,
): string[] {
  const dbName = (property: string) =>
    metadata.findColumnWithPropertyName(property)?.databaseName ?? property;
  const named = (property: string) =>
    overwrite.includes(property) || overwrite.includes(dbName(property));
  const fields = [...g.indexOf.keys()].filter(named);
  for (const [field, index] of g.indexOf) {
    if (index && named(index) && !named(field))
      throw refused(g, field, `orUpdate of the blind index column "${index}" alone`, UPSERT);
  }
  if (fields.length === 0) return overwrite;
  const primary = metadata.primaryColumns.map((c) => c.databaseName);
  const target = [conflictTarget ?? []].flat().map(String);
  const onPrimary = target.length === primary.length && target.every((t) => primary.includes(t));
  if (!onPrimary && !(mysql && target.length === 0))
    throw refused(g, fields[0]!, "orUpdate with a conflict on another key", UPSERT);
  // ON DUPLICATE KEY UPDATE fires on any unique key, whatever the conflict target says.
  const otherUnique =
    metadata.uniques.length > 0 ||
    metadata.indices.some((i) => i.isUnique) ||
    metadata.columns.some((c) => c.isPrimary !== true && (c as { isUnique?: boolean }).isUnique);
  if (mysql && otherUnique)
    throw refused(
      g,
      fields[0]!,
      "orUpdate on MySQL/MariaDB (ON DUPLICATE KEY UPDATE fires on any unique key) of a table with a unique key besides the primary key",
      UPSERT,
    );
  const out = [...overwrite];
  for (const f of fields) {
    const index = g.indexOf.get(f);
    if (index && !named(index)) out.push(dbName(index));
  }
  return out;
}
