import type { ConfigError } from "@envelope/core";
import { type EntityMetadata, InsertQueryBuilder } from "typeorm";
import { isWellFormedSealed } from "./sealed-value.js";
import { type Guarded, guardedFor, refused } from "./typeorm-query-builder.js";

type Row = Record<string, unknown>;
type Builder = {
  expressionMap: {
    mainAlias?: { hasMetadata: boolean; metadata: EntityMetadata };
    insertFromSelect?: unknown;
  };
  getValueSets(): Row[];
  getInsertedColumns(): { propertyName: string }[];
};
type Method = (this: Builder, ...args: unknown[]) => unknown;

/** Builders inside their own `execute()`: the SQL they build now is the SQL that is sent. */
const executing = new WeakMap<object, number>();
let installed = false;

const LISTENERS =
  "the entity subscriber seals values in beforeInsert, which this insert skipped. Keep listeners on: save() / repository.insert() without { listeners: false }, no .callListeners(false).";

/**
 * Every INSERT TypeORM sends ends in `InsertQueryBuilder.execute()` (`save` and `insert`
 * too: the persistence executor runs the subscribers itself, then executes an insert with
 * `.callListeners(false)`). `execute` runs the beforeInsert listeners and only then builds
 * the SQL (`getQueryAndParameters`), so a check there sees what is about to be written:
 * sealed values when the subscriber ran, the caller's plaintext when it was skipped
 * (`save(e, { listeners: false })`, `.callListeners(false)`). For an encrypted entity it
 * refuses, before any SQL is sent:
 * - an encrypted column holding anything but a well-formed envelope or null (a raw SQL
 *   function value included);
 * - a blind index column set while its field is not;
 * - `INSERT … SELECT` (`valuesFromSelect`) into an encrypted or blind index column: the
 *   rows' values cannot be sealed under their ids.
 * `getSql()` outside `execute` is not checked: it sends nothing.
 */
export function guardInsertValues(): void {
  if (installed) return;
  installed = true;
  const proto = InsertQueryBuilder.prototype as unknown as Record<string, Method>;
  const execute = proto.execute!;
  proto.execute = async function (this: Builder, ...args: unknown[]) {
    // A count, not a flag: the same builder may be executed twice at once.
    executing.set(this, (executing.get(this) ?? 0) + 1);
    try {
      return await execute.apply(this, args);
    } finally {
      const left = executing.get(this)! - 1;
      if (left > 0) executing.set(this, left);
      else executing.delete(this);
    }
  };
  // Inherited from QueryBuilder: an own wrapper on InsertQueryBuilder's prototype only.
  const build = proto.getQueryAndParameters!;
  proto.getQueryAndParameters = function (this: Builder, ...args: unknown[]) {
    const main = this.expressionMap.mainAlias;
    const g = main?.hasMetadata ? guardedFor(main.metadata) : undefined;
    if (g && executing.has(this)) checkInsert(this, g, main!.metadata);
    return build.apply(this, args);
  };
}

function checkInsert(qb: Builder, g: Guarded, metadata: EntityMetadata): void {
  const column = (property: string) => metadata.findColumnWithPropertyName(property);
  if (qb.expressionMap.insertFromSelect) {
    const inserted = new Set(qb.getInsertedColumns().map((c) => c.propertyName));
    for (const [field, index] of g.indexOf) {
      if (inserted.has(field) || (index && inserted.has(index)))
        throw refused(g, field, "INSERT … SELECT (valuesFromSelect)", SELECT);
    }
    return;
  }
  for (const values of qb.getValueSets()) {
    for (const [field, index] of g.indexOf) {
      const value = column(field)?.getEntityValue(values);
      const given = value !== undefined && value !== null;
      if (given && !isWellFormedSealed(value)) throw plaintext(g, field);
      const indexValue = index ? column(index)?.getEntityValue(values) : undefined;
      if (!given && indexValue !== undefined && indexValue !== null)
        throw refused(g, field, `An insert of the blind index column "${index}" alone`, INDEX);
    }
  }
}

const INDEX =
  "the subscriber computes a blind index from its field when it seals; an index without its value would make findBy return a row with nothing to open. Set the field, not the index column.";

const SELECT =
  "the selected values cannot be sealed under each inserted row's id. Read the rows and save() them.";

function plaintext(g: Guarded, field: string): ConfigError {
  return refused(g, field, "An insert of a value that is not sealed", LISTENERS);
}
