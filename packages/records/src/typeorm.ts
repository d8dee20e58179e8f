import { randomUUID } from "node:crypto";
import { ConfigError } from "@envelope/core";
import {
  type DataSource,
  type EntityManager,
  type EntityMetadata,
  type EntitySubscriberInterface,
  type EntityTarget,
  type FindOptionsOrder,
  type FindOptionsWhere,
  In,
  type InsertEvent,
  type ObjectLiteral,
  type UpdateEvent,
} from "typeorm";
import { loadBatcher } from "./load-batch.js";
import { Swaps } from "./orm-swap.js";
import type { RecordCipher } from "./record-cipher.js";
import { blindIndexColumn } from "./rows.js";
import { guardInsertValues } from "./typeorm-insert.js";
import { guardQueryBuilders, keepIndexFor } from "./typeorm-query-builder.js";
import { guardSelects } from "./typeorm-select.js";
import { indexColumnsOnUpsert } from "./typeorm-upsert.js";
import { refuseEncryptedWhere } from "./typeorm-where.js";

type Row = Record<string, unknown>;
type AnyCipher = RecordCipher<string, "text" | "binary">;

/** Options of {@link EncryptedEntity.findBy}. */
export interface FindByOptions<E> {
  /** Run in this manager (a transaction's `manager`). Default: the DataSource's. */
  manager?: EntityManager;
  /** More conditions on plain columns, ANDed with the blind index match. */
  where?: FindOptionsWhere<E>;
  order?: FindOptionsOrder<E>;
}

/** What {@link encryptEntity} returns. */
export interface EncryptedEntity<E extends ObjectLiteral, F extends string> {
  readonly cipher: RecordCipher<F, "text">;
  /** The subscriber installed on the DataSource. */
  readonly subscriber: EntitySubscriberInterface<E>;
  /**
   * Entities whose encrypted `field` equals `value` after normalization: found by the blind
   * index under every index key (`<field>_idx IN (…)`), opened, false positives dropped.
   */
  findBy(field: F, value: string, options?: FindByOptions<E>): Promise<E[]>;
}

/**
 * Encrypts one TypeORM entity's fields through an entity subscriber added to an initialized
 * DataSource. Why a subscriber and not a column transformer: transformers are synchronous,
 * while opening a value may need the KMS (asynchronous) and needs the row id (the context
 * `{ table, column, id }`); TypeORM also calls `transformer.to` to compare values when it
 * computes what changed, so a transformer cannot even refuse plaintext. Subscriber hooks are
 * awaited: `afterLoad` opens (the rows of a find in one bounded `openMany`), `beforeInsert` seals, `beforeUpdate`
 * re-seals what changed under a row lock.
 *
 * Encrypted properties are `text` columns holding `ev1:` values; each blind index is a
 * plain text column (the cipher's `<field>_idx` property). Property names are the cipher's
 * field names; the cipher's `idField` is the entity's primary column.
 *
 * @example
 * const dataSource = await new DataSource({ type: "postgres", url, entities: [UserSchema] }).initialize();
 * const users = encryptEntity(dataSource, User, createRecordCipher(envelope, {
 *   table: "users", encrypted: ["email", "phone"], blindIndexes: { email: { normalize: "email" } },
 * }, { blindIndex }));
 * await dataSource.getRepository(User).save({ email: "ann@example.com", phone: null });
 * const [ann] = await users.findBy("email", "Ann@Example.com");
 */
export function encryptEntity<E extends ObjectLiteral, const F extends string>(
  dataSource: DataSource,
  target: EntityTarget<E>,
  cipher: RecordCipher<F, "text">,
): EncryptedEntity<E, F> {
  const c = cipher as unknown as AnyCipher;
  if (!dataSource?.isInitialized) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "encryptEntity: pass an initialized DataSource (await dataSource.initialize() first): the subscriber is added to it.",
    );
  }
  const metadata = dataSource.getMetadata(target);
  checkEntity(metadata, c);
  const encrypted = c.schema.encrypted;
  const idField = c.schema.idField ?? "id";
  const indexColumns = encrypted.map((f) => c.indexColumn(f)).filter((x) => x !== undefined);
  const swaps = new Swaps();
  // A find of 10,000 rows must not send 10,000 KMS calls at once: its rows are opened
  // together with openMany, at most the cipher's `concurrency` records at a time.
  const openLoaded = loadBatcher(c);

  const seal = async (entity: Row): Promise<void> => {
    swaps.recover(entity, entity);
    if (entity[idField] === undefined || entity[idField] === null) {
      const id = metadata.primaryColumns[0]!;
      // A generated uuid is given here, not by the database: it is part of each context.
      if (id.generationStrategy === "uuid") entity[idField] = randomUUID();
    }
    const record: Row = { [idField]: entity[idField] };
    for (const f of encrypted) if (f in entity) record[f] = entity[f];
    const sealed: Row = await c.seal(record); // ENVELOPE_BAD_INPUT when there is no id
    delete sealed[idField];
    swaps.swapIn(entity, entity, sealed, encrypted);
  };

  const subscriber: EntitySubscriberInterface<E> = {
    listenTo: () => metadata.target as never,

    async afterLoad(entity) {
      const row = entity as Row;
      const opened = await openLoaded(row);
      for (const f of encrypted) if (f in row) row[f] = opened[f];
    },

    async beforeInsert(event: InsertEvent<E>) {
      if (event.entity) await seal(event.entity as Row);
    },
    afterInsert(event: InsertEvent<E>) {
      if (event.entity) swaps.restore(event.entity, event.entity as Row);
    },

    /**
     * `save` of a loaded entity (TypeORM loaded `databaseEntity` and found the changed
     * columns). The stored row is read again under `SELECT … FOR UPDATE` inside save's
     * transaction, so nothing can change it before TypeORM's UPDATE: `cipher.update` seals
     * the changes under the record's key, or the whole record under a fresh key (rotation, a
     * key this process did not generate), and the sealed values take the plaintext's place
     * on the entity for the length of the write.
     */
    async beforeUpdate(event: UpdateEvent<E>) {
      const entity = event.entity as Row | undefined;
      if (!entity) return;
      if (!event.databaseEntity) {
        // repository.update(criteria, values) / QueryBuilder: a set for many rows.
        if (indexOrEncrypted(entity, encrypted, indexColumns)) throw refusedBulk(c);
        return;
      }
      const changed = event.updatedColumns.map((col) => col.propertyName);
      if (!changed.some((p) => encrypted.includes(p))) return;
      const changes: Row = {};
      for (const p of changed) changes[p] = entity[p];
      const locked = event.queryRunner.isTransactionActive;
      const query = event.manager
        .createQueryBuilder(metadata.target, "row")
        .callListeners(false)
        .whereInIds(metadata.getEntityIdMap(event.databaseEntity));
      if (locked) query.setLock("pessimistic_write");
      const stored = (await query.getOne()) as Row | null;
      if (!stored) throw gone(c);
      const patch = await c.update(stored, changes);
      const whole = encrypted.some((f) => f in patch && !(f in changes));
      if (whole && !locked) throw unlockedWhole(c);
      const sealed: Row = {};
      for (const [k, v] of Object.entries(patch)) {
        if (encrypted.includes(k) || indexColumns.includes(k)) sealed[k] = v;
      }
      // A field re-sealed with its blind index as stored (the whole record moved to a fresh
      // key, or the same plaintext set again): TypeORM leaves the unchanged index column
      // out of its UPDATE, which the set() guard must accept for this value.
      for (const f of encrypted) {
        const index = c.indexColumn(f);
        if (!index || !(f in sealed) || sealed[f] === null) continue;
        const indexNow = index in sealed ? sealed[index] : entity[index];
        if (sameIndex(indexNow, stored[index])) keepIndexFor(sealed[f]);
      }
      swaps.swapIn(entity, entity, sealed, encrypted);
    },
    afterUpdate(event: UpdateEvent<E>) {
      if (event.entity) swaps.restore(event.entity, event.entity as Row);
    },
  };
  dataSource.subscribers.push(subscriber);
  indexColumnsOnUpsert(metadata, c);
  refuseEncryptedWhere(metadata, encrypted, c.schema.table);
  const indexOf = new Map(encrypted.map((f) => [f, c.indexColumn(f)] as const));
  guardQueryBuilders(metadata, c.schema.table, indexOf, idField);
  guardInsertValues();
  guardSelects();

  return {
    cipher,
    subscriber,
    async findBy(field, value, options = {}) {
      const column = blindIndexColumn(c, field);
      const manager = options.manager ?? dataSource.manager;
      const rows = await manager.find(target, {
        where: { ...options.where, [column]: In(c.candidatesFor(field, value)) } as never,
        order: options.order,
      });
      return rows.filter((r) => c.matches(field, (r as Row)[field], value));
    },
  };
}

function indexOrEncrypted(values: Row, encrypted: readonly string[], index: string[]): boolean {
  return [...encrypted, ...index].some((f) => values[f] !== undefined);
}

/** The entity must have the cipher's id as its primary column and every field it names. */
function checkEntity(metadata: EntityMetadata, cipher: AnyCipher): void {
  const bad = (problem: string) =>
    new ConfigError("ENVELOPE_BAD_CONFIG", `encryptEntity(${metadata.name}): ${problem}`, {
      details: { table: cipher.schema.table },
    });
  const idField = cipher.schema.idField ?? "id";
  const primary = metadata.primaryColumns.map((col) => col.propertyName);
  if (primary.length !== 1 || primary[0] !== idField) {
    throw bad(
      `the cipher's id field "${idField}" must be the entity's single primary column (found: ${primary.join(", ") || "none"}).`,
    );
  }
  const names = new Set(metadata.columns.map((col) => col.propertyName));
  for (const f of cipher.schema.encrypted) {
    const column = cipher.indexColumn(f);
    for (const name of column ? [f, column] : [f]) {
      if (!names.has(name)) throw bad(`"${name}" is not a column property of the entity.`);
    }
    const col = metadata.columns.find((x) => x.propertyName === f)!;
    if (col.transformer) {
      throw bad(
        `the encrypted column "${f}" has a transformer; the subscriber must see the stored value.`,
      );
    }
  }
}

function sameIndex(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0;
  return a === b;
}

function refusedBulk(cipher: AnyCipher): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `update(criteria, values) / QueryBuilder updates cannot write the encrypted columns of "${cipher.schema.table}": each row's values are sealed under its own data key and bound to its id. Load the entity and save() it.`,
    { details: { table: cipher.schema.table } },
  );
}

function gone(cipher: AnyCipher): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `save: the row of "${cipher.schema.table}" was deleted while it was being updated; nothing was written.`,
    { details: { table: cipher.schema.table } },
  );
}

function unlockedWhole(cipher: AnyCipher): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `save({ transaction: false }): this update moves the whole record of "${cipher.schema.table}" to a fresh data key (a key rotation, or a key this process did not generate), which needs the row locked until the write. Save inside a transaction (save's default).`,
    { details: { table: cipher.schema.table } },
  );
}
