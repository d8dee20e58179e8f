import { ConfigError, type Envelope } from "@envelope/core";
import type { BlindIndexer, BlindIndexSpec } from "./blind-index.js";
import { encodeValue } from "./codec.js";
import { shown } from "./names.js";
import { type Args, type Delegates, plain, selectFor, withoutFields } from "./prisma-args.js";
import { refuseClauses } from "./prisma-clauses.js";
import { checkAgainstDataModel, checkPrismaOptions } from "./prisma-config.js";
import { refuseData, withoutGivenIndexes } from "./prisma-data.js";
import { findFiltered, openResult, pageInMemory } from "./prisma-read.js";
import { dataModelOf, type RelationScope, refuseRelations } from "./prisma-relations.js";
import { guardedPrismaUpdate } from "./prisma-update.js";
import { rewriteWhere, type WhereScope } from "./prisma-where.js";
import { createRecordCipher, type RecordCipher } from "./record-cipher.js";
import type { RecordSchema } from "./record-types.js";
import { sealAll } from "./rows.js";

type Row = Record<string, unknown>;

/** One Prisma model's encrypted fields. Field names are the model's field names. */
export interface PrismaModelEncryption {
  /** Fields to encrypt (String? columns for text output). */
  encrypted: readonly string[];
  /** Encrypted fields with a blind index field (default `<field>_idx`, a String? field). */
  blindIndexes?: Record<string, BlindIndexSpec>;
  /** Table name used in the encryption context. Default: the model name. Match what other code (pg, CLI rewrap) uses. */
  table?: string;
  /** Id field. Default `"id"`. Its value must be in `data` on create (e.g. `id: randomUUID()`). */
  idField?: string;
  /** Length padding per encrypted field, as `RecordSchema.pad`, e.g. `{ ssn: "pii" }`. */
  pad?: RecordSchema["pad"];
  /** As `RecordCipherOptions.allowEnvelopePlaintext`: fields whose plaintext may itself be an Envelope value. */
  allowEnvelopePlaintext?: boolean | readonly string[];
}

export interface PrismaEncryptionOptions {
  envelope: Envelope;
  /** By model name as in schema.prisma, e.g. `{ User: { encrypted: ["email", "phone"] } }`. */
  models: Record<string, PrismaModelEncryption>;
  /** Required when a model declares blind indexes. */
  blindIndex?: BlindIndexer;
  /**
   * Records opened at once by list reads (findMany, createManyAndReturn…): KMS calls in
   * flight on a cold cache. Default 16; see `RecordCipherOptions.concurrency`.
   */
  concurrency?: number;
}

interface QueryHook {
  model?: string;
  operation: string;
  args: Args;
  query: (args: Args, params?: Row) => Promise<unknown>;
  /** Prisma's request of this query; its `transaction` is the caller's, if any. */
  __internalParams?: Row & { transaction?: { kind?: unknown } };
}
/** What `$extends` accepts in the callback form (`Prisma.defineExtension`). */
interface ExtensibleClient {
  $extends(extension: {
    name: string;
    query: { $allModels: { $allOperations(hook: QueryHook): Promise<unknown> } };
  }): unknown;
}

const REFUSED = new Set(["updateMany", "updateManyAndReturn"]);

/**
 * A Prisma client extension: encrypted fields are sealed on create / update / upsert
 * (one data key per record, each field bound to `{ table, column, id }`), opened on
 * find* / create / update / delete results, and `where: { email: "..." }` on a field with
 * a blind index becomes a lookup on its index field (false positives dropped after
 * opening). Application code reads and writes plaintext.
 *
 * @example
 * const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString }) }).$extends(
 *   prismaEncryption({
 *     envelope,
 *     blindIndex: createBlindIndexer({ keys: process.env.INDEX_KEY! }),
 *     models: { User: { encrypted: ["email", "phone"], blindIndexes: { email: { normalize: "email" } } } },
 *   }),
 * );
 * await prisma.user.create({ data: { id: randomUUID(), email: "ann@example.com" } });
 * const ann = await prisma.user.findFirst({ where: { email: "Ann@Example.com" } });
 */
export function prismaEncryption(options: PrismaEncryptionOptions): <C>(client: C) => C {
  if (!options?.envelope || typeof options.models !== "object" || options.models === null) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "prismaEncryption({ envelope, models }): give the Envelope and the encrypted fields by model name.",
    );
  }
  checkPrismaOptions(options as unknown as Row, options.models);
  const ciphers = new Map<string, RecordCipher>();
  const anyEncrypted = new Set<string>();
  const encryptedByModel = new Map<string, ReadonlySet<string>>();
  for (const [model, spec] of Object.entries(options.models)) {
    ciphers.set(
      model,
      createRecordCipher(
        options.envelope,
        {
          table: spec.table ?? model,
          idField: spec.idField,
          encrypted: spec.encrypted,
          blindIndexes: spec.blindIndexes,
          pad: spec.pad,
        },
        {
          blindIndex: options.blindIndex,
          concurrency: options.concurrency,
          allowEnvelopePlaintext: spec.allowEnvelopePlaintext,
        },
      ),
    );
    for (const f of spec.encrypted) anyEncrypted.add(f);
    encryptedByModel.set(model, new Set(spec.encrypted));
  }

  return <C>(client: C): C => {
    const base = client as unknown as Delegates;
    // Without Prisma's runtime data model, relation keys cannot be told from fields: the
    // where of a configured model is then scanned for encrypted names under any key.
    const dataModel = dataModelOf(client);
    if (dataModel) checkAgainstDataModel(dataModel, options.models);
    const relations: RelationScope | undefined = dataModel
      ? { dataModel, encrypted: encryptedByModel }
      : undefined;
    const delegate = (model: string) => {
      const d = base[model.charAt(0).toLowerCase() + model.slice(1)];
      if (!d)
        throw new ConfigError(
          "ENVELOPE_BAD_CONFIG",
          `Prisma model "${shown(model)}" not found on the client (use the model's name as in schema.prisma, e.g. "User"): its writes would be stored unencrypted.`,
          { details: { field: `models.${shown(model)}` } },
        );
      return d;
    };
    // Without the data model, the model names at least are checked (by their delegates).
    if (!dataModel) for (const model of Object.keys(options.models)) delegate(model);
    /**
     * The extension's own reads (the row an update changes, findFirst's candidates) must
     * see what the caller's interactive transaction wrote: they are sent as the next step
     * of this query's chain (past this extension, so rows come back sealed) with this
     * request's parameters, transaction included, and only the operation changed. Outside
     * an interactive transaction, reads go through the base client as before; so do they in
     * a batch transaction (`$transaction([...])`), which runs its queries in order once they
     * are all built, so a read cannot join it.
     */
    const reader = (
      model: string,
      query: QueryHook["query"],
      params: QueryHook["__internalParams"],
    ): Delegates[string] => {
      const tx = params?.transaction?.kind;
      if (!params || tx === undefined || tx === "batch") return delegate(model);
      const read = (action: string) => (a: Row) =>
        query(a, {
          ...params,
          action,
          args: a,
          clientMethod: `${model.charAt(0).toLowerCase()}${model.slice(1)}.${action}`,
          dataPath: [],
          unpacker: undefined,
          argsMapper: undefined,
        });
      return {
        findUnique: read("findUnique") as Delegates[string]["findUnique"],
        findMany: read("findMany") as Delegates[string]["findMany"],
      };
    };
    return (client as unknown as ExtensibleClient).$extends({
      name: "@envelope/records",
      query: {
        $allModels: {
          async $allOperations({ model, operation, args, query, __internalParams }: QueryHook) {
            // Relation filters of any model's query that reach an encrypted field.
            if (relations && model && args) refuseRelations(relations, model, operation, args);
            const cipher = model ? ciphers.get(model) : undefined;
            if (!cipher || !model) return query(args);
            const fields = dataModel?.models[model]?.fields.map((f) => f.name);
            return handle(
              {
                cipher,
                anyEncrypted,
                relationsChecked: relations !== undefined,
                modelFields: fields ? new Set(fields) : undefined,
              },
              operation,
              { ...args },
              query,
              () => reader(model, query, __internalParams),
              __internalParams?.transaction?.kind === "batch",
            );
          },
        },
      },
    }) as C;
  };
}

async function handle(
  scope: WhereScope,
  operation: string,
  args: Args,
  query: (args: Args) => Promise<unknown>,
  delegate: () => Delegates[string],
  inBatch = false,
): Promise<unknown> {
  const { cipher } = scope;
  const idField = cipher.schema.idField ?? "id";
  const encrypted = cipher.schema.encrypted;
  const touches = (data: unknown) =>
    typeof data === "object" && data !== null && encrypted.some((f) => f in (data as Row));

  if (REFUSED.has(operation) && touches(args.data)) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `${operation} cannot write encrypted fields: each row's values are bound to its id. Update rows one by one with update().`,
      { details: { table: cipher.schema.table, operation } },
    );
  }
  // Everything is checked before anything is sealed or sent.
  if (inBatch && operation === "upsert" && touches(args.update)) {
    // Its row is read outside the batch, before the batch's earlier writes: a row they create
    // looks missing, and the update branch would silently lose its encrypted fields.
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `upsert writing encrypted fields in its update branch cannot run in a batch $transaction([...]): the extension reads the row first, and that read cannot join the batch. Use an interactive transaction ($transaction(async (tx) => ...)) instead.`,
      { details: { table: cipher.schema.table, operation } },
    );
  }
  refuseClauses(scope, operation, args);
  refuseData(scope, operation, args);
  withoutGivenIndexes(scope, operation, args);
  const rewritten = rewriteWhere(scope, operation, args);
  if (inBatch && rewritten && operation.startsWith("findFirst")) {
    // findFirst's candidates are read through the base client, outside the batch.
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `${operation} with where on an encrypted field cannot run in a batch $transaction([...]): its candidates are read outside the batch, which would miss the batch's own writes. Use findMany, or an interactive transaction ($transaction(async (tx) => ...)).`,
      { details: { table: cipher.schema.table, operation, field: rewritten.fields[0] } },
    );
  }
  const page = rewritten ? pageInMemory(scope, operation, args, rewritten.fields[0]) : undefined;
  const added = selectFor(args, idField, encrypted, rewritten?.fields ?? []);

  switch (operation) {
    case "create":
      args.data = await cipher.seal(plain(args.data as Row));
      break;
    case "createMany":
    case "createManyAndReturn": {
      const list = Array.isArray(args.data) ? args.data : [args.data];
      args.data = await sealAll(
        cipher,
        list.map((d) => plain(d as Row)),
      );
      break;
    }
    case "update":
      if (touches(args.data)) {
        return openResult(cipher, await guardedPrismaUpdate(cipher, args, query, delegate), added);
      }
      break;
    case "upsert": {
      // Both branches' values are checked before either is sealed (a KMS call) or the row
      // read: a value the update branch cannot encode is refused before any of it.
      for (const branch of [args.create, args.update]) {
        if (!touches(branch)) continue;
        const values = plain(branch!);
        for (const f of encrypted) {
          if (values[f] !== null && values[f] !== undefined) encodeValue(values[f], f).fill(0);
        }
      }
      if (touches(args.create)) args.create = await cipher.seal(plain(args.create!));
      if (touches(args.update)) {
        const current = await delegate().findUnique({ where: args.where! });
        // No row now, so Prisma will create it. Should one appear meanwhile, its update
        // branch gets the plain changes only: never plaintext for an encrypted column.
        args.update = current
          ? { ...args.update, ...(await cipher.update(current, plain(args.update!))) }
          : withoutFields(args.update!, encrypted);
      }
      break;
    }
  }

  if (rewritten) {
    return findFiltered(cipher, operation, args, query, delegate, rewritten.test, added, page);
  }
  return openResult(cipher, await query(args), added);
}
