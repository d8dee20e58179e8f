import { ConfigError } from "@envelope/core";
import { mapLimit } from "@envelope/core/internal";
import {
  type FindOptions,
  Model,
  type ModelStatic,
  Op,
  QueryTypes,
  type Transaction,
} from "sequelize";
import { guardedUpdate } from "./guarded-update.js";
import { Swaps } from "./orm-swap.js";
import type { RecordCipher } from "./record-cipher.js";
import { blindIndexColumn, reservedId } from "./rows.js";
import {
  addIdAttribute,
  checkModel,
  idChange,
  refused,
  refuseOrderOrGroup,
  refuseSqlValues,
  refuseWhere,
  validateAll,
} from "./sequelize-checks.js";
import {
  addIncludedIds,
  bagOf,
  cipherOf,
  type Instance,
  openFound,
  removeIncludedIds,
} from "./sequelize-find.js";
import { guardsOf } from "./sequelize-guards.js";
import { guardWrites } from "./sequelize-writes.js";
import { quoteIdent } from "./sql.js";

export { EncryptedText } from "./sequelize-type.js";

type Row = Record<string, unknown>;
type AnyCipher = RecordCipher<string, "text" | "binary">;

/** Records sealed at once by bulkCreate (one KMS call each): overlap, without flooding. */
const SEAL_CONCURRENCY = 16;

interface SaveOptions {
  fields?: string[];
  defaultFields?: string[];
  transaction?: Transaction | null;
  validate?: boolean;
  individualHooks?: boolean;
  updateOnDuplicate?: string[];
  attributes?: Row;
  where?: unknown;
  raw?: boolean;
}
type Hook = (...args: never[]) => unknown;

/** The id attribute a find added to `attributes` so rows could be opened; removed after. */
const ADDED_ID = Symbol("envelope.addedId");

/** What {@link encryptModel} returns: the model, its cipher, and lookups by blind index. */
export interface EncryptedModel<M extends Model, F extends string> {
  readonly model: ModelStatic<M>;
  readonly cipher: RecordCipher<F, "text">;
  /**
   * Rows whose encrypted `field` equals `value` after normalization: `WHERE <field>_idx IN
   * (candidates under every index key)`, opened by the model's hooks, false positives of a
   * truncated index dropped. `options` are `findAll` options (`where` on plain attributes is
   * ANDed, `transaction`, `order`, `raw`, …).
   */
  findBy(field: F, value: string, options?: FindOptions): Promise<M[]>;
}

/**
 * Makes a Sequelize v6 model read and write plaintext while its encrypted attributes hold
 * sealed values: installs hooks that seal on `create` / `save` / `bulkCreate`, open after
 * every find (`findAll`, `findOne`, `findByPk`, `reload`, `raw: true`, models reached by
 * `include`), and turn an update of encrypted attributes into a guarded write (see the
 * guide for what is and is not transparent). Declare each encrypted attribute with the
 * {@link EncryptedText} type and each blind index column as a plain string attribute.
 *
 * @example
 * User.init({
 *   id: { type: DataTypes.UUID, defaultValue: DataTypes.UUIDV4, primaryKey: true },
 *   email: EncryptedText,
 *   email_idx: DataTypes.STRING(64),
 *   name: DataTypes.STRING,
 * }, { sequelize, tableName: "users" });
 * const users = encryptModel(User, createRecordCipher(envelope, {
 *   table: "users", encrypted: ["email"], blindIndexes: { email: { normalize: "email" } },
 * }, { blindIndex }));
 * const ann = await User.create({ email: "ann@example.com", name: "Ann" });
 * const [same] = await users.findBy("email", "ANN@example.com");
 */
export function encryptModel<M extends Model, const F extends string>(
  model: ModelStatic<M>,
  cipher: RecordCipher<F, "text">,
): EncryptedModel<M, F> {
  const c = cipher as unknown as AnyCipher;
  checkModel(model, c);
  if (cipherOf.has(model)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `encryptModel: model "${model.name}" is already encrypted; call encryptModel once per model.`,
    );
  }
  cipherOf.set(model, c);
  const encrypted = c.schema.encrypted;
  const idField = c.schema.idField ?? "id";
  const indexColumns = encrypted.map((f) => c.indexColumn(f)).filter((x) => x !== undefined);
  const swaps = new Swaps();
  const rewritten = new WeakMap<object, string[]>();
  const touches = (values: Row | undefined) =>
    !!values && [...encrypted, ...indexColumns].some((f) => values[f] !== undefined);

  /** An autoincrement id is reserved first (PostgreSQL): the id is part of each field's context. */
  const reserveId = async (transaction: Transaction | null | undefined): Promise<unknown> => {
    const attribute = model.getAttributes()[idField]!;
    const table = model.getTableName() as string | { schema: string; tableName: string };
    const name = typeof table === "string" ? table : `${table.schema}.${table.tableName}`;
    if (!attribute.autoIncrement || model.sequelize!.getDialect() !== "postgres") {
      return reservedId([], name, idField); // throws: give the id before create
    }
    const rows = await model.sequelize!.query(
      "SELECT nextval(pg_get_serial_sequence(:table, :column))::text AS id",
      {
        replacements: { table: quoteIdent(name), column: attribute.field ?? idField },
        type: QueryTypes.SELECT,
        transaction: transaction ?? undefined,
      },
    );
    return Number(reservedId(rows as Row[], name, idField));
  };

  /** Seals the instance's encrypted values into its dataValues; returns the columns set. */
  const sealInto = async (
    instance: Instance,
    options: SaveOptions,
    operation = "create",
  ): Promise<void> => {
    const values = instance.dataValues;
    swaps.recover(instance, values);
    refuseSqlValues(c, values, encrypted, operation);
    if (values[idField] === undefined || values[idField] === null) {
      values[idField] = await reserveId(options.transaction);
    }
    const record: Row = { [idField]: values[idField] };
    for (const f of encrypted) if (f in values) record[f] = values[f];
    const sealed: Row = await c.seal(record);
    delete sealed[idField];
    swaps.swapIn(instance, values, sealed, encrypted);
    // Explicit `fields` that name an encrypted field also write its blind index.
    if (options.fields) {
      for (const f of encrypted) {
        const column = c.indexColumn(f);
        if (column && options.fields.includes(f) && !options.fields.includes(column)) {
          options.fields.push(column);
        }
      }
    }
  };

  /**
   * `save` of a stored instance that changes encrypted attributes: this hook writes every
   * field of the save itself, in ONE guarded statement (cipher.update semantics: changed
   * fields sealed under the record's key, or the whole record under a fresh key with a
   * compare-and-swap on the stored ciphertext, re-read and retried on a conflict). Then it
   * narrows the save to `SET id = id`, a no-op that lets Sequelize finish as usual
   * (afterUpdate / afterSave hooks, change flags) without writing anything again.
   */
  const beforeUpdate = async (instance: Instance, options: SaveOptions): Promise<void> => {
    const virtual = (model as unknown as { _virtualAttributes: Set<string> })._virtualAttributes;
    const fields = (options.fields ?? []).filter((f) => !virtual.has(f));
    if (!fields.some((f) => encrypted.includes(f))) return;
    const id = instance._previousDataValues[idField] ?? instance.dataValues[idField];
    const changes: Row = {};
    for (const f of fields) changes[f] = instance.dataValues[f];
    refuseSqlValues(c, changes, fields, "save / instance.update");
    const transaction = options.transaction ?? undefined;
    let wrote: Row | undefined;
    await guardedUpdate(c, changes, {
      read: async () =>
        // hooks: false (untyped, honoured by findAll): the stored, sealed row.
        ((await model.findOne({
          where: { [idField]: id },
          raw: true,
          hooks: false,
          transaction,
        } as FindOptions)) as Row | null) ?? undefined,
      async write(set, guards) {
        const [count] = await model.update(set as never, {
          where: { [Op.and]: [{ [idField]: id }, ...guardsOf(model, guards)] } as never,
          fields: Object.keys(set) as never,
          hooks: false,
          validate: false,
          silent: true,
          transaction,
        });
        if (count === 0) return undefined;
        wrote = set;
        return set;
      },
    });
    // Blind index columns as written; encrypted attributes keep the plaintext.
    for (const [k, v] of Object.entries(wrote ?? {})) {
      if (!encrypted.includes(k)) instance.dataValues[k] = v;
    }
    rewritten.set(instance, [...new Set([...fields, ...Object.keys(wrote ?? {})])]);
    // No row (deleted meanwhile): like Sequelize, a save that matches nothing is no error.
    options.fields = [idField];
    delete options.defaultFields;
  };

  const afterUpdate = (instance: Instance): void => {
    const fields = rewritten.get(instance);
    if (!fields) return;
    rewritten.delete(instance);
    for (const f of fields) {
      instance._previousDataValues[f] = instance.dataValues[f];
      instance.changed(f, false);
    }
  };

  const hooks: Record<string, Hook> = {
    // Validators run before beforeCreate: they see the plaintext again after a failed create.
    beforeValidate: (instance: Instance) => swaps.recover(instance, instance.dataValues),
    beforeCreate: (instance: Instance, options: SaveOptions) => sealInto(instance, options),
    afterCreate: (instance: Instance) => swaps.restore(instance, instance.dataValues),
    beforeUpdate,
    afterUpdate,
    async beforeBulkCreate(instances: Instance[], options: SaveOptions) {
      // Every row checked before any is sealed (no KMS call for a bulk that is refused).
      for (const i of instances) refuseSqlValues(c, i.dataValues, encrypted, "bulkCreate");
      if (options.individualHooks) return; // each save runs beforeCreate
      if (options.updateOnDuplicate?.some((f) => touches({ [f]: true }))) {
        throw refused(c, "bulkCreate with updateOnDuplicate on encrypted attributes");
      }
      // Sequelize validates after this hook: validate the plaintext now instead.
      if (options.validate) await validateAll(instances as never, options as Row);
      options.validate = false;
      await mapLimit(instances, SEAL_CONCURRENCY, (i) => sealInto(i, options, "bulkCreate"));
    },
    afterBulkCreate(instances: Instance[]) {
      for (const i of instances) swaps.restore(i, i.dataValues);
    },
    beforeBulkUpdate(options: SaveOptions) {
      if (touches(options.attributes)) throw refused(c, "Model.update (a bulk update)");
      if (options.attributes?.[idField] !== undefined) throw idChange(c);
    },
    beforeUpsert(values: Row) {
      if (touches(values)) throw refused(c, "upsert");
    },
    beforeFind(options: SaveOptions & { order?: unknown; group?: unknown }) {
      refuseWhere(c, options.where);
      refuseOrderOrGroup(c, options);
    },
    // Before Sequelize copies `attributes` to `originalAttributes`, which instances are built from.
    beforeFindAfterExpandIncludeAll(
      options: SaveOptions & { attributes?: unknown; include?: unknown },
    ) {
      if (addIdAttribute(c, options.attributes)) {
        (options as Record<symbol, unknown>)[ADDED_ID] = true;
      }
      addIncludedIds(options.include, !!options.raw);
    },
    async afterFind(
      result: unknown,
      options: SaveOptions & { include?: { separate?: boolean }[] },
    ) {
      const items = result === null || result === undefined ? [] : [result].flat();
      await openFound(items as (Instance | Row)[], c);
      // Kept when a `separate: true` include still needs it to load the associated rows.
      const separate = options.include?.some((i) => i.separate) ?? false;
      if ((options as Record<symbol, unknown>)[ADDED_ID] && !separate) {
        for (const item of items as (Instance | Row)[]) {
          delete bagOf(item)[idField];
          if (item instanceof Model)
            delete (item as unknown as Instance)._previousDataValues[idField];
        }
      }
      removeIncludedIds(items, options.include);
    },
  };
  const target = model as unknown as { addHook(name: string, key: string, fn: Hook): void };
  for (const [name, fn] of Object.entries(hooks)) target.addHook(name, `envelope:${name}`, fn);
  guardWrites(model as ModelStatic<Model>, c);

  return {
    model,
    cipher,
    async findBy(field, value, options = {}) {
      const column = blindIndexColumn(c, field);
      const byIndex = { [column]: { [Op.in]: c.candidatesFor(field, value) } };
      const where = options.where ? { [Op.and]: [options.where, byIndex] } : byIndex;
      const rows = await model.findAll({ ...options, where } as FindOptions);
      return rows.filter((r) => c.matches(field, bagOf(r as never)[field], value));
    },
  };
}
