import { ConfigError, type Envelope } from "@envelope/core";
import type { BlindIndexer, BlindIndexSpec } from "./blind-index.js";
import { guardedUpdate } from "./guarded-update.js";
import { createRecordCipher, type RecordCipher } from "./record-cipher.js";
import { openAll, sealAll } from "./rows.js";

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

type Row = Record<string, unknown>;
type Args = Record<string, unknown> & {
  data?: unknown;
  where?: Row;
  select?: Row;
  create?: Row;
  update?: Row;
};
interface QueryHook {
  model?: string;
  operation: string;
  args: Args;
  query: (args: Args) => Promise<unknown>;
}
/** The part of a Prisma client the extension uses: model delegates with findUnique. */
type Delegates = Record<
  string,
  { findUnique(args: { where: Row }): Promise<Row | null>; findMany(args: Row): Promise<Row[]> }
>;
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
  const ciphers = new Map<string, RecordCipher>();
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
        },
        { blindIndex: options.blindIndex, concurrency: options.concurrency },
      ),
    );
  }

  return <C>(client: C): C => {
    const base = client as unknown as Delegates;
    const delegate = (model: string) => {
      const d = base[model.charAt(0).toLowerCase() + model.slice(1)];
      if (!d)
        throw new ConfigError(
          "ENVELOPE_BAD_CONFIG",
          `Prisma model "${model}" not found on the client.`,
        );
      return d;
    };
    return (client as unknown as ExtensibleClient).$extends({
      name: "@envelope/records",
      query: {
        $allModels: {
          async $allOperations({ model, operation, args, query }: QueryHook) {
            const cipher = model ? ciphers.get(model) : undefined;
            if (!cipher || !model) return query(args);
            return handle(cipher, operation, { ...args }, query, () => delegate(model));
          },
        },
      },
    }) as C;
  };
}

async function handle(
  cipher: RecordCipher,
  operation: string,
  args: Args,
  query: (args: Args) => Promise<unknown>,
  delegate: () => Delegates[string],
): Promise<unknown> {
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
  const stripId = addIdToSelect(args, idField, encrypted);
  let filter: ((row: Row) => boolean) | undefined;
  if (operation === "findFirst" || operation === "findFirstOrThrow" || operation === "findMany") {
    filter = rewriteWhere(cipher, args);
  }

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
        return openResult(
          cipher,
          await guardedPrismaUpdate(cipher, args, query, delegate),
          stripId,
        );
      }
      break;
    case "upsert": {
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

  if (filter) return findFiltered(cipher, operation, args, query, delegate, filter, stripId);
  return openResult(cipher, await query(args), stripId);
}

/**
 * find* with a blind-index filter: the candidates are opened (once, with openMany), the
 * false positives of a truncated index dropped, and the opened rows returned. findFirst
 * runs as findMany through the base (unextended) client, because it could otherwise stop
 * at a false positive, then takes the first true match.
 */
async function findFiltered(
  cipher: RecordCipher,
  operation: string,
  args: Args,
  query: (args: Args) => Promise<unknown>,
  delegate: () => Delegates[string],
  filter: (row: Row) => boolean,
  stripId: string | undefined,
): Promise<unknown> {
  const raw = operation === "findMany" ? await query(args) : await delegate().findMany(args);
  const rows = (Array.isArray(raw) ? raw : raw ? [raw] : []) as Row[];
  const kept = (await openAll<Row>(cipher, rows)).filter(filter).map((row) => strip(row, stripId));
  if (operation === "findMany") return kept;
  if (kept[0] === undefined && operation === "findFirstOrThrow") {
    // Let Prisma raise its own not-found error (P2025), as without the extension.
    const idField = cipher.schema.idField ?? "id";
    return query({ where: { [idField]: { in: [] } } });
  }
  return kept[0] ?? null;
}

/**
 * Opens what a query returned: a list with openMany (bounded, one unwrap per record; a row
 * that does not open fails the whole call with its typed error), a single row with open.
 */
async function openResult(cipher: RecordCipher, result: unknown, stripId: string | undefined) {
  // count, createMany ({ count }), aggregate, a select of plain fields only… carry no
  // encrypted field and are returned as they are; a row that carries one must open.
  const sealed = (x: unknown): x is Row =>
    typeof x === "object" &&
    x !== null &&
    !Array.isArray(x) &&
    cipher.schema.encrypted.some((f) => f in x);
  if (Array.isArray(result)) {
    const rows = result.filter(sealed);
    const opened = (await openAll<Row>(cipher, rows)).map((row) => strip(row, stripId));
    let next = 0;
    return result.map((item) => (sealed(item) ? opened[next++] : item));
  }
  if (!sealed(result)) return result;
  return strip(await cipher.open<Row>(result), stripId);
}

function strip(row: Row, stripId: string | undefined): Row {
  if (stripId) delete row[stripId];
  return row;
}

/**
 * `update` that writes encrypted fields: the stored row is read through the base client,
 * `cipher.update` seals the changes, and when that re-seals the whole record (a rotation,
 * or a data key this process did not generate) the write carries the other encrypted
 * columns' read values in its `where` (compare-and-swap): a concurrent change makes it
 * match nothing (P2025), and the update is read and sealed again (at most 3 attempts).
 */
async function guardedPrismaUpdate(
  cipher: RecordCipher,
  args: Args,
  query: (args: Args) => Promise<unknown>,
  delegate: () => Delegates[string],
): Promise<unknown> {
  const where = args.where!;
  const data = args.data as Row;
  const clear = withoutFields(data, cipher.schema.encrypted);
  let result: unknown;
  let wrote = false;
  const found = await guardedUpdate(cipher, plain(data), {
    read: async () => (await delegate().findUnique({ where })) ?? undefined,
    async write(set, guards) {
      const guarded = Object.keys(guards).length > 0;
      try {
        result = await query({
          ...args,
          where: guarded ? withAnd(where, guards) : where,
          data: { ...data, ...set },
        });
      } catch (error) {
        if (guarded && (error as { code?: unknown })?.code === "P2025") return undefined;
        throw error;
      }
      wrote = true;
      return {};
    },
  });
  if (wrote) return result;
  // Nothing encrypted to write (only undefined values): the plain changes alone.
  if (found) return query({ ...args, data: clear });
  // No such row: let Prisma raise its own not-found error (P2025), as without the
  // extension, by an update that matches nothing — and never with plaintext in `data`.
  const idField = cipher.schema.idField ?? "id";
  return query({ ...args, where: withAnd(where, { [idField]: { in: [] } }), data: clear });
}

function withoutFields(data: Row, fields: readonly string[]): Row {
  const out: Row = { ...data };
  for (const f of fields) delete out[f];
  return out;
}

/** `where` narrowed by `extra` (Prisma's unique where accepts AND with other filters). */
function withAnd(where: Row, extra: Row): Row {
  const and = where.AND === undefined ? [] : Array.isArray(where.AND) ? where.AND : [where.AND];
  return { ...where, AND: [...and, extra] };
}

/** Prisma accepts `{ field: { set: value } }`: unwrap it for encrypted fields. */
function plain(data: Row): Row {
  const out: Row = { ...data };
  for (const [k, v] of Object.entries(out)) {
    if (
      v &&
      typeof v === "object" &&
      !Array.isArray(v) &&
      "set" in v &&
      Object.keys(v).length === 1
    ) {
      out[k] = (v as { set: unknown }).set;
    }
  }
  return out;
}

/**
 * Opening needs the id: select it when the caller selected encrypted fields without it,
 * or stop omitting it when encrypted fields are returned (`omit: { id: true }`).
 */
function addIdToSelect(
  args: Args,
  idField: string,
  encrypted: readonly string[],
): string | undefined {
  const omit = args.omit as Row | undefined;
  if (omit?.[idField] && !args.select && !encrypted.every((f) => omit[f])) {
    const { [idField]: _, ...rest } = omit;
    args.omit = rest;
    return idField;
  }
  const select = args.select;
  if (!select || select[idField] || !encrypted.some((f) => select[f])) return undefined;
  args.select = { ...select, [idField]: true };
  return idField;
}

/** `where: { email: "x" }` on a blind-indexed field → `where: { email_idx: { in: candidates } }`. */
function rewriteWhere(cipher: RecordCipher, args: Args): ((row: Row) => boolean) | undefined {
  const where = args.where;
  if (!where) return undefined;
  const checks: ((row: Row) => boolean)[] = [];
  const next: Row = { ...where };
  for (const field of cipher.schema.encrypted) {
    if (!(field in where)) continue;
    let value = where[field];
    if (value && typeof value === "object" && "equals" in value) value = (value as Row).equals;
    const column = cipher.indexColumn(field);
    if (typeof value !== "string" || !column) {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `where.${field}: encrypted fields can only be matched by equality with a string, and only when they have a blind index.`,
        { details: { table: cipher.schema.table, field } },
      );
    }
    delete next[field];
    next[column] = { in: cipher.candidatesFor(field, value) };
    const expected = value;
    checks.push((row) => cipher.matches(field, row[field], expected));
  }
  if (checks.length === 0) return undefined;
  args.where = next;
  return (row) => checks.every((check) => check(row));
}
