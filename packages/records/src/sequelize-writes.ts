import { ConfigError } from "@envelope/core";
import type { Model, ModelStatic } from "sequelize";
import type { RecordCipher } from "./record-cipher.js";
import { isWellFormedSealed } from "./sealed-value.js";

type Row = Record<string, unknown>;
type AnyCipher = RecordCipher<string, "text" | "binary">;
type TableName = string | { tableName: string; schema?: string };

/** An encrypted model's table as its writes name it: attribute and column names. */
interface Guard {
  table: string;
  schema: string | undefined;
  /** Encrypted attribute → the names it can be written under, and its index's names. */
  fields: { field: string; names: string[]; index: string[] }[];
}

type Method = (...args: unknown[]) => Promise<unknown>;
const guardsOf = new WeakMap<object, Guard[]>();

/**
 * The `EncryptedText` type refuses a plain string whatever the path, but Sequelize writes a
 * `literal(…)` / `fn(…)` / `col(…)` value as SQL without asking the type, and a blind index
 * column is a plain string attribute. Every write a model makes goes through its
 * QueryInterface (`insert`, `bulkInsert`, `update`, `bulkUpdate`, `upsert`), hooks or not, so
 * its methods are wrapped once per Sequelize instance: for an encrypted model's table, each
 * encrypted column must hold a well-formed envelope, null or nothing, and a blind index
 * column may be set only with its field. The same check covers a raw
 * `queryInterface.bulkInsert(table, rows)` naming the table. Refused before SQL is built.
 */
export function guardWrites(model: ModelStatic<Model>, cipher: AnyCipher): void {
  const attributes = model.getAttributes() as Record<string, { field?: string }>;
  const namesOf = (a: string) => [...new Set([a, attributes[a]?.field ?? a])];
  const table = model.getTableName() as TableName;
  const guard: Guard = {
    ...nameOf(table),
    fields: cipher.schema.encrypted.map((f) => {
      const index = cipher.indexColumn(f);
      return { field: f, names: namesOf(f), index: index ? namesOf(index) : [] };
    }),
  };
  const qi = model.sequelize!.getQueryInterface() as unknown as Record<string, Method>;
  const known = guardsOf.get(qi);
  if (known) {
    known.push(guard);
    return;
  }
  guardsOf.set(qi, [guard]);
  for (const [name, tableAt, rowsOf] of WRITES) {
    const original = qi[name]!;
    // Async, as the methods it wraps: a refusal is a rejected promise, not a throw.
    qi[name] = async function (this: unknown, ...args: unknown[]) {
      const g = guardFor(qi, args[tableAt]);
      if (g) for (const row of rowsOf(args)) check(g, row, name);
      return original.apply(this, args);
    };
  }
}

/** QueryInterface write methods: the argument naming the table, the rows of values. */
const WRITES: [name: string, tableAt: number, rowsOf: (args: unknown[]) => unknown[]][] = [
  ["insert", 1, (a) => [a[2]]], // (instance, table, values, options)
  ["update", 1, (a) => [a[2]]], // (instance, table, values, where, options)
  ["bulkInsert", 0, (a) => [a[1]].flat()], // (table, records, options, attributes)
  ["bulkUpdate", 0, (a) => [a[1]]], // (table, values, where, options, attributes)
  ["upsert", 0, (a) => [a[1], a[2]]], // (table, insertValues, updateValues, where, options)
  // Model.increment / decrement, instance.increment: arithmetic in SQL on the stored bytes.
  // (model, table, where, amountsByField, extraAttributesToBeUpdated, options)
  ["increment", 1, (a) => [a[3], a[4]]],
  ["decrement", 1, (a) => [a[3], a[4]]],
];

function nameOf(table: unknown): { table: string; schema: string | undefined } {
  if (typeof table === "string") return { table, schema: undefined };
  const t = table as { tableName?: string; schema?: string };
  return { table: String(t?.tableName), schema: t?.schema || undefined };
}

function guardFor(qi: object, table: unknown): Guard | undefined {
  const { table: name, schema } = nameOf(table);
  return guardsOf
    .get(qi)!
    .find((g) => g.table === name && (!g.schema || !schema || g.schema === schema));
}

const given = (v: unknown) => v !== undefined && v !== null;

function check(g: Guard, row: unknown, operation: string): void {
  if (typeof row !== "object" || row === null) return;
  const values = row as Row;
  for (const { field, names, index } of g.fields) {
    const value = names.map((n) => values[n]).find(given);
    if (value !== undefined && !isWellFormedSealed(value)) throw notSealed(g, field, operation);
    if (value === undefined && index.some((n) => given(values[n]))) {
      throw notSealed(g, field, operation, index[0]);
    }
  }
}

const ARITHMETIC = new Set(["increment", "decrement"]);

function notSealed(g: Guard, field: string, operation: string, index?: string): ConfigError {
  const where = `of "${g.table}" (queryInterface.${operation})`;
  const message = ARITHMETIC.has(operation)
    ? `Refusing to ${operation} the encrypted attribute "${field}" ${where}: the column holds a sealed value, not a number, so SQL arithmetic on it would corrupt it. Read the record, change the value in the app and save() it.`
    : index
      ? `Refusing to write the blind index column "${index}" without its field "${field}" ${where}: the hooks compute the index from the value they seal, and an index without its value would make findBy return a row with nothing to open. Set "${field}" through the model instead.`
      : `Refusing to write a value that is not sealed (plaintext or an SQL literal/fn) to the encrypted attribute "${field}" ${where}: encryptModel's hooks seal each record under its own data key, and this write skipped them (hooks: false, a literal/fn value, or a raw queryInterface call). Write through the model with its hooks on: create(), bulkCreate(), instance.save() / update().`;
  return new ConfigError("ENVELOPE_BAD_INPUT", message, {
    details: { table: g.table, field, operation },
  });
}
