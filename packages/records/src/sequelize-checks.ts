import { ConfigError } from "@envelope/core";
import {
  BulkRecordError,
  type Model,
  type ModelStatic,
  AggregateError as SequelizeAggregateError,
  Utils,
} from "sequelize";
import { shown } from "./names.js";
import type { RecordCipher } from "./record-cipher.js";
import { isEncryptedText } from "./sequelize-type.js";

type AnyCipher = RecordCipher<string, "text" | "binary">;
type Row = Record<string, unknown>;

/**
 * The model must hold what the cipher names: the id, each encrypted attribute typed
 * {@link EncryptedText} (the safety net against plaintext writes) and each blind index column.
 */
export function checkModel(model: ModelStatic<Model>, cipher: AnyCipher): void {
  const bad = (problem: string) =>
    new ConfigError("ENVELOPE_BAD_CONFIG", `encryptModel(${shown(model?.name)}): ${problem}`, {
      details: { table: cipher?.schema?.table },
    });
  if (typeof model?.getAttributes !== "function") {
    throw bad("pass a Sequelize model class (after Model.init or sequelize.define).");
  }
  const attributes = model.getAttributes() as Record<string, { type?: unknown }>;
  const idField = cipher.schema.idField ?? "id";
  if (!attributes[idField]) {
    throw bad(`the cipher's id field "${idField}" is not an attribute of the model.`);
  }
  for (const f of cipher.schema.encrypted) {
    if (!isEncryptedText(attributes[f]?.type)) {
      throw bad(
        `declare the encrypted attribute "${f}" with the EncryptedText type (import it from "@envelope/records/sequelize"): it refuses plaintext writes that bypass the hooks.`,
      );
    }
    const column = cipher.indexColumn(f);
    if (column && !attributes[column]) {
      throw bad(`the blind index column "${column}" of "${f}" is not an attribute of the model.`);
    }
  }
  if ((model as unknown as { options: { version?: unknown } }).options.version) {
    throw bad(
      "optimistic locking (version: true) is not supported on a model with encrypted attributes yet; updates of encrypted attributes are compare-and-swap writes already.",
    );
  }
}

/** A Sequelize operation that cannot seal per row: refused before any SQL is sent. */
export function refused(cipher: AnyCipher, what: string): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `${what} cannot write the encrypted attributes of "${cipher.schema.table}": each row's values are sealed under its own data key and bound to its id. Load the rows and call instance.update() / save(), or create() new ones.`,
    { details: { table: cipher.schema.table, operation: what } },
  );
}

/**
 * A bulk update changing the id of rows with encrypted attributes would leave their values
 * sealed under the old id's context: every read of them would fail. Refused.
 */
export function idChange(cipher: AnyCipher): ConfigError {
  const id = cipher.schema.idField ?? "id";
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `A bulk update cannot change "${id}" of "${cipher.schema.table}": each row's encrypted values are bound to its id, so they would no longer open. Create the row under the new id (read it, create() it with the new ${id}, destroy the old one).`,
    { details: { table: cipher.schema.table, field: id } },
  );
}

/**
 * A `where` naming an encrypted attribute would compare ciphertext with a plaintext (and send
 * that plaintext to the database): refused, pointing at `findBy`. Walks plain objects, arrays
 * and operator keys (`Op.and`, `Op.or`, …); `sequelize.where(...)` / literals are not inspected.
 */
export function refuseWhere(cipher: AnyCipher, where: unknown): void {
  const names = new Set(cipher.schema.encrypted);
  const hit = encryptedKeyIn(where, names, 0);
  if (hit === undefined) return;
  throw new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `where on the encrypted attribute "${hit}" of "${cipher.schema.table}": the column holds ciphertext. Find by its blind index with findBy("${hit}", value), or filter on plain attributes.`,
    { details: { table: cipher.schema.table, field: hit } },
  );
}

/**
 * `order` / `group` naming an encrypted attribute would sort or group rows by random
 * ciphertext (a meaningless order that also leaks which rows share a value under a reused
 * data key): refused. Reads attribute names, `[attribute, direction]` pairs, `[Model,
 * attribute, direction]` paths and `col("name")`; `literal(...)` / `fn(...)` are not inspected.
 */
export function refuseOrderOrGroup(
  cipher: AnyCipher,
  options: { order?: unknown; group?: unknown },
): void {
  const names = new Set(cipher.schema.encrypted);
  for (const clause of ["order", "group"] as const) {
    const hit = attributeIn(options[clause], names, 0);
    if (hit === undefined) continue;
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `${clause} by the encrypted attribute "${hit}" of "${cipher.schema.table}": the column holds ciphertext, so the database would ${clause === "order" ? "sort" : "group"} by random bytes. Sort or group in the application after reading, or by plain attributes.`,
      { details: { table: cipher.schema.table, field: hit, clause } },
    );
  }
}

function attributeIn(node: unknown, names: Set<string>, depth: number): string | undefined {
  if (depth > 8) return undefined;
  if (typeof node === "string") return names.has(node) ? node : undefined;
  if (Array.isArray(node)) {
    for (const x of node) {
      const hit = attributeIn(x, names, depth + 1);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
  // sequelize.col("email"): a Col instance holding the name.
  const col = (node as { constructor?: { name?: string }; col?: unknown } | null)?.col;
  if (typeof col === "string" && (node as object).constructor?.name === "Col") {
    return names.has(col) ? col : undefined;
  }
  return undefined;
}

function encryptedKeyIn(node: unknown, names: Set<string>, depth: number): string | undefined {
  if (depth > 64 || typeof node !== "object" || node === null) return undefined;
  if (Array.isArray(node)) {
    for (const x of node) {
      const hit = encryptedKeyIn(x, names, depth + 1);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
  const proto = Object.getPrototypeOf(node);
  if (proto !== Object.prototype && proto !== null) return undefined;
  for (const key of Reflect.ownKeys(node)) {
    if (typeof key === "string") {
      // `$email$` is Sequelize's spelling of an attribute of the main model in nested where.
      const name = /^\$[^.]*\$$/.test(key) ? key.slice(1, -1) : key;
      if (names.has(name)) return name;
    } else {
      const hit = encryptedKeyIn((node as Record<symbol, unknown>)[key], names, depth + 1);
      if (hit !== undefined) return hit;
    }
  }
  return undefined;
}

/**
 * A find that selects encrypted attributes without the id gets the id added (each field's
 * context holds it); true when it was added, so it can be removed from the results. Runs in
 * `beforeFindAfterExpandIncludeAll`: `attributes` is the caller's list with `exclude` /
 * `include` already expanded (attribute names, or `[expression, alias]` pairs), before
 * Sequelize copies it to `originalAttributes`, the list it builds instances from (a name
 * added later reaches the SQL but not the instances). The id is the only other value
 * opening needs.
 */
export function addIdAttribute(cipher: AnyCipher, attributes: unknown): boolean {
  if (!Array.isArray(attributes)) return false;
  const names = attributes.map((a) => (Array.isArray(a) ? a[1] : a));
  const idField = cipher.schema.idField ?? "id";
  if (names.includes(idField) || !cipher.schema.encrypted.some((f) => names.includes(f))) {
    return false;
  }
  attributes.push(idField); // mapped to its column (`field`) by Sequelize afterwards
  return true;
}

/**
 * Sequelize's SQL values (`literal`, `fn`, `col`, `cast`, `where`, `json`: instances of
 * `Utils.SequelizeMethod`), which Sequelize writes as SQL. By class, and by the name of a
 * class in the prototype chain for a second copy of Sequelize.
 */
export function isSqlValue(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (value instanceof Utils.SequelizeMethod) return true;
  for (let p = Object.getPrototypeOf(value); p && p !== Object.prototype; ) {
    if ((p as { constructor?: { name?: string } }).constructor?.name === "SequelizeMethod") {
      return true;
    }
    p = Object.getPrototypeOf(p);
  }
  return false;
}

/**
 * An encrypted attribute set to an SQL value cannot be sealed (the database would compute
 * the value, the app never sees it): refused before anything is sealed or written.
 */
export function refuseSqlValues(
  cipher: AnyCipher,
  values: Row,
  fields: readonly string[],
  operation: string,
): void {
  for (const f of fields) {
    if (!cipher.schema.encrypted.includes(f) || !isSqlValue(values[f])) continue;
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `${operation}: the encrypted attribute "${f}" of "${cipher.schema.table}" is set to an SQL value (sequelize.literal / fn / col / cast / where). An encrypted column holds only values sealed in the application, so the database cannot compute it. Compute the value in the application and assign the result (a string, or null) instead.`,
      { details: { table: cipher.schema.table, field: f, operation } },
    );
  }
}

/** `bulkCreate({ validate: true })` validates after its before-hook: here, on the plaintext. */
export async function validateAll(instances: Model[], options: Row): Promise<void> {
  const errors: BulkRecordError[] = [];
  await Promise.all(
    instances.map(async (instance) => {
      try {
        await instance.validate({ ...options, hooks: options.individualHooks } as never);
      } catch (error) {
        errors.push(new BulkRecordError(error as Error, instance));
      }
    }),
  );
  if (errors.length > 0) throw new SequelizeAggregateError(errors);
}
