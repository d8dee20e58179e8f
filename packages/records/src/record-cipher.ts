import { createHmac, randomBytes } from "node:crypto";
import { inspect } from "node:util";
import {
  type BulkResult,
  ConfigError,
  type DataKeyMaterials,
  type EncryptionContext,
  type Envelope,
  type PadOption,
} from "@envelope/core";
import { padRule } from "@envelope/core/internal";
import type { BlindIndexer, BlindIndexSpec } from "./blind-index.js";
import { decodeValue, encodeValue } from "./codec.js";
import { MAX_ID_BYTES, nameProblem, shown } from "./names.js";
import { normalizeWith } from "./normalize.js";
import { checkConcurrency, openRows } from "./open-many.js";
import { isSealedValue, legacyFieldValue, type TransitionalRead } from "./transitional.js";

type Materials = DataKeyMaterials;

/** Which fields of a table's records are encrypted, and which of them are searchable. */
export interface RecordSchema<F extends string = string> {
  /** Table name: part of every field's encryption context and of the blind index key. */
  table: string;
  /** Field holding the record id. Default `"id"`. Its value must be known before sealing. */
  idField?: string;
  /** Fields to encrypt. Each becomes its own envelope bound to `{ table, column, id }`. */
  encrypted: readonly F[];
  /** Encrypted fields that also get a blind index column (default `<field>_idx`). */
  blindIndexes?: Partial<Record<F, BlindIndexSpec>>;
  /**
   * Length padding per encrypted field, e.g. `{ email: 32, address: { bucket: 64 }, ssn:
   * "pii" }`: the stored value then shows the field's length bucket, not its exact
   * length. A field not listed uses the Envelope's own `pad` (off by default); `false`
   * turns padding off for a field. Changing it later affects only values sealed after.
   */
  pad?: Partial<Record<F, PadOption>>;
}

export interface RecordCipherOptions<O extends "text" | "binary" = "text"> {
  /** Required when the schema declares blind indexes. */
  blindIndex?: BlindIndexer;
  /** `text` (default): `ev1:` strings for text columns. `binary`: Buffers for bytea columns. */
  output?: O;
  /**
   * Also read legacy values (hand-rolled AES, plaintext) while a migration runs: a
   * `transitionalRead({ decoders, allowPlaintext?, onLegacyRead })`. Off by default; writes
   * always seal, and `update` of a row holding a legacy value re-seals the whole record.
   */
  transitional?: TransitionalRead;
  /**
   * Records opened at once by `openMany` and by the ORM helpers' list reads: the data keys
   * unwrapped at once, i.e. KMS calls in flight on a cold cache. Default 16, at most 1024.
   * A list read over distinct records runs at about `concurrency / KMS latency` rows/s.
   */
  concurrency?: number;
}

/** Options of {@link RecordCipher.openMany}. */
export interface OpenManyOptions {
  /** Records opened at once (KMS calls in flight); default: the cipher's `concurrency`. */
  concurrency?: number;
}

/** A sealed value as stored: an `ev1:` string, or a Buffer with `output: "binary"`. */
export type SealedValue<O extends "text" | "binary" = "text"> = O extends "binary"
  ? Buffer
  : string;

/** The record as stored: encrypted fields sealed, blind index columns added, the rest untouched. */
export type SealedRecord<T, F extends string = string, O extends "text" | "binary" = "text"> = {
  [K in keyof T]: K extends F
    ? undefined extends T[K]
      ? null extends T[K]
        ? SealedValue<O> | null | undefined
        : SealedValue<O> | undefined
      : null extends T[K]
        ? SealedValue<O> | null
        : SealedValue<O>
    : T[K];
} & { [K in `${F}_idx`]?: string | null };

/** Seals and opens the encrypted fields of one table's records. */
export interface RecordCipher<F extends string = string, O extends "text" | "binary" = "text"> {
  readonly schema: Readonly<RecordSchema<F>>;
  /**
   * Seals every encrypted field under ONE fresh data key (one KMS call), each field bound
   * to `{ table, column, id }`; adds blind index columns; leaves other fields, and null /
   * undefined values, untouched. The record must carry its id.
   */
  seal<T extends Record<string, unknown>>(record: T): Promise<SealedRecord<T, F, O>>;
  /**
   * Opens every encrypted field of a stored row: at most one unwrap per record (the fields
   * share one data key and the envelope's unwrap cache), none when that key is cached.
   */
  open<T = Record<string, unknown>>(row: Record<string, unknown>): Promise<T>;
  /**
   * Opens many stored rows (a list page, an export) through `envelope.decryptMany`: each
   * record's data key is unwrapped once, at most `concurrency` at a time, and each row comes
   * back in input order as `{ ok: true, value }` or `{ ok: false, error }` with that row's
   * typed error (a bad id, a value from another row, a missing type tag…): one bad row does
   * not stop the others. Checks and transitional reads are those of `open`.
   *
   * @example
   * const { rows } = await pool.query("SELECT * FROM users ORDER BY id LIMIT 500");
   * for (const r of await users.openMany(rows)) {
   *   if (r.ok) show(r.value);
   *   else log.warn({ code: r.error.code }, "a user row did not open");
   * }
   */
  openMany<T = Record<string, unknown>>(
    rows: readonly Record<string, unknown>[],
    options?: OpenManyOptions,
  ): Promise<BulkResult<T>[]>;
  /** Opens one field of a stored row. */
  openField(row: Record<string, unknown>, field: F): Promise<unknown>;
  /**
   * The columns to write for `changes` to a stored row (pass the whole stored row).
   *
   * Partial: changed encrypted fields sealed under the record's existing data key (no KMS
   * call when that key is cached), their blind indexes, and the other changed fields as
   * given; unchanged fields are absent. The existing key is reused only when (1) the row's
   * first sealed field, the one the key is taken from, opens under this row's context (GCM
   * tag and context verified) and (2) the key was generated in this process by a record
   * cipher on this same Envelope for this table and id. A stored key that fails (2) may have
   * been chosen by whoever wrote the row (anyone with an encrypt-only key or kms:Encrypt
   * can make a field that opens), and would then read everything sealed under it.
   *
   * Whole: when an encrypted field changes and the key may not be reused, or during a key
   * rotation (the row's wrapped-key entries are not exactly the envelope's current
   * encrypting keys), every encrypted field is opened and verified first, then the WHOLE
   * record is re-sealed under a fresh data key (one KMS call) and every encrypted field of
   * the row and its blind index come back. A field that does not open rejects with its
   * typed decrypt error (`ENVELOPE_DECRYPT_FAILED`, …) and nothing is returned to write.
   */
  update<T extends Record<string, unknown>>(
    row: Record<string, unknown>,
    changes: Partial<T>,
  ): Promise<Record<string, unknown>>;
  /** Blind index of a plaintext value under the current key. */
  indexFor(field: F, value: string): string;
  /** Blind indexes of a value under every key (for `WHERE <field>_idx = ANY($1)`). */
  candidatesFor(field: F, value: string): string[];
  /**
   * The blind index columns of an opened (plaintext) record under the current index key:
   * what a re-index job writes after an index key rotation.
   */
  indexesOf(record: Record<string, unknown>): Record<string, string | null>;
  /** Column that holds the blind index of `field`, or undefined when it has none. */
  indexColumn(field: F): string | undefined;
  /** True when an opened value equals `value` after normalization: filters index false positives. */
  matches(field: F, opened: unknown, value: string): boolean;
}

/**
 * Creates a record cipher for one table.
 *
 * @example
 * const users = createRecordCipher(envelope, {
 *   table: "users",
 *   encrypted: ["email", "phone", "ssn"],
 *   blindIndexes: { email: { normalize: "email" } },
 * }, { blindIndex: createBlindIndexer({ keys: process.env.INDEX_KEY! }) });
 * const row = await users.seal({ id: "42", email: "a@example.com", phone: "+1 555", ssn: null, name: "Ann" });
 * const user = await users.open(row);
 */
export function createRecordCipher<const F extends string, O extends "text" | "binary" = "text">(
  envelope: Envelope,
  schema: RecordSchema<F>,
  options: RecordCipherOptions<O> = {},
): RecordCipher<F, O> {
  const s = checkSchema(schema, options);
  const idField = s.idField ?? "id";
  const output = options.output === "binary" ? "binary" : "text";
  const encrypted = new Set<string>(s.encrypted);
  const specs = (s.blindIndexes ?? {}) as Record<string, BlindIndexSpec | undefined>;
  const indexer = options.blindIndex;
  const own = ownDataKeys(envelope);
  const transitional = options.transitional;
  const concurrency = checkConcurrency(options.concurrency);

  const idOf = (row: Record<string, unknown>, what: string): string => {
    const id = row?.[idField];
    if (typeof id === "string" && id.length > 0) {
      if (id.length > MAX_ID_BYTES || Buffer.byteLength(id, "utf8") > MAX_ID_BYTES) {
        throw new ConfigError(
          "ENVELOPE_BAD_INPUT",
          `${what}: the record's "${idField}" is longer than ${MAX_ID_BYTES} bytes (UTF-8), the limit of an encryption context value; the id is part of every field's context. Use a shorter id (a UUID, a number).`,
          { details: { table: s.table, field: idField } },
        );
      }
      return id;
    }
    if ((typeof id === "number" && Number.isSafeInteger(id)) || typeof id === "bigint") {
      return String(id);
    }
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `${what}: the record has no usable "${idField}" (got ${id === null ? "null" : typeof id}). The id is part of every field's encryption context, so it must be known before sealing: generate it (UUID) or reserve it (SELECT nextval(...)); encryptedPg().insert does this for serial ids.`,
      { details: { table: s.table, field: idField } },
    );
  };
  const context = (field: string, id: string): EncryptionContext => ({
    table: s.table,
    column: field,
    id,
  });
  // The KMS request carries the record's context; each field's AAD adds its column.
  const recordContext = (id: string): EncryptionContext => ({ table: s.table, id });

  const sealField = (m: Materials, field: string, value: unknown, id: string) => {
    const plaintext = encodeValue(value, field);
    try {
      const pad = s.pad?.[field as F];
      const sealed = envelope.encryptWithDataKey(m, plaintext, {
        context: context(field, id),
        output,
        ...(pad !== undefined ? { pad } : {}),
      });
      return sealed as SealedValue<O>;
    } finally {
      plaintext.fill(0);
    }
  };

  const indexInto = (out: Record<string, unknown>, field: string, value: unknown) => {
    const spec = specs[field];
    if (!spec) return;
    const column = spec.column ?? `${field}_idx`;
    if (value === null || value === undefined) {
      out[column] = value ?? null;
      return;
    }
    if (typeof value !== "string") {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `Field "${field}" has a blind index, so its value must be a string (got ${typeof value}).`,
        { details: { table: s.table, field } },
      );
    }
    out[column] = indexer!.index(field, s.table, value, spec);
  };

  const sealedOf = (value: unknown, field: string): string | Uint8Array => {
    if (typeof value === "string" || value instanceof Uint8Array) return value;
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `Field "${field}" is not a sealed value (got ${typeof value}). Rows passed to open() must be as stored; plaintext in an encrypted column means it was written without seal().`,
      { details: { table: s.table, field } },
    );
  };

  // envelope.decrypt checks the key commitment and serves the data key from the unwrap
  // cache: every field of a record has the same entries, hence one unwrap per record.
  const openOne = async (row: Record<string, unknown>, field: string, id: string) => {
    const value = row[field];
    if (value === null || value === undefined) return value;
    if (transitional) {
      const read = await transitional.open(envelope, sealedOf(value, field), context(field, id));
      return read.legacyFormat === undefined
        ? decodeValue(read.plaintext, field)
        : legacyFieldValue(read.plaintext, transitional.legacyAs, field);
    }
    const plaintext = await envelope.decrypt(sealedOf(value, field), {
      context: context(field, id),
    });
    return decodeValue(plaintext, field);
  };

  /** True when the transitional read is on and a field of the row still holds a legacy value. */
  const holdsLegacy = (row: Record<string, unknown>): boolean =>
    transitional !== undefined &&
    s.encrypted.some((f) => {
      const value = row[f];
      return value !== null && value !== undefined && !isSealedValue(sealedOf(value, f));
    });

  /** True when every sealed field of the row is wrapped under exactly the current encrypting keys. */
  const underCurrentKeys = (row: Record<string, unknown>): boolean => {
    const current = JSON.stringify([...envelope.describe().encrypt].sort());
    return s.encrypted.every((f) => {
      const value = row[f];
      if (value === null || value === undefined) return true;
      const refs = envelope
        .inspect(sealedOf(value, f))
        .entries.map((e) => `${e.provider}:${e.keyRef}`);
      return JSON.stringify(refs.sort()) === current;
    });
  };

  /** A fresh data key for the record, remembered as generated here (see {@link OwnDataKeys}). */
  const freshMaterials = async (id: string): Promise<Materials> => {
    const m = await envelope.generateDataKey({ context: recordContext(id) });
    own.add(s.table, id, m.dataKey);
    return m;
  };

  /**
   * The data key of the row's first sealed field, when `update` may seal new data under it;
   * undefined when it may not (then the whole record moves to a fresh key).
   *
   * A stored value can have been made by anyone holding an encrypt-only key (a local-rsa
   * public key, kms:Encrypt): `unwrapDataKey` checks only that the data key matches the
   * value's commitment, and a planted field under a data key the attacker chose passes that
   * check (and, without writer signatures, opens too). So the key is reused only when
   *  1. that very field opens under this row's context (tag and context verified), which
   *     also stops a field copied from another row; and
   *  2. the data key was generated in this process, by a record cipher on this Envelope,
   *     for this table and id — so nobody else chose it.
   * A field that does not open throws (typed, nothing to write).
   */
  const reusableMaterials = async (
    row: Record<string, unknown>,
    f: string,
    id: string,
  ): Promise<Materials | undefined> => {
    const stored = sealedOf(row[f], f);
    // One immutable copy: the value opened is the value whose key is taken.
    const sealed = typeof stored === "string" ? stored : Buffer.from(stored);
    const opened = await envelope.decrypt(sealed, { context: context(f, id) });
    opened.fill(0);
    const m = await envelope.unwrapDataKey(sealed, { context: context(f, id) });
    if (own.has(s.table, id, m.dataKey)) return m;
    m.dataKey.fill(0);
    return undefined;
  };

  const cipher: RecordCipher<F, O> = {
    schema: s,

    async seal<T extends Record<string, unknown>>(record: T) {
      const id = idOf(record, "seal");
      const out: Record<string, unknown> = { ...record };
      const present = s.encrypted.filter((f) => record[f] !== null && record[f] !== undefined);
      for (const f of s.encrypted) if (f in record) indexInto(out, f, record[f]);
      if (present.length === 0) return out as SealedRecord<T, F, O>;
      const m = await freshMaterials(id);
      try {
        for (const f of present) out[f] = sealField(m, f, record[f], id);
      } finally {
        m.dataKey.fill(0);
      }
      return out as SealedRecord<T, F, O>;
    },

    async open<T>(row: Record<string, unknown>) {
      const id = idOf(row, "open");
      const out: Record<string, unknown> = { ...row };
      const fields = s.encrypted.filter((f) => f in row);
      // Concurrent misses for one data key share one in-flight unwrap in the envelope.
      const opened = await Promise.all(fields.map((f) => openOne(row, f, id)));
      for (const [i, f] of fields.entries()) out[f] = opened[i];
      return out as T;
    },

    openMany<T>(rows: readonly Record<string, unknown>[], options: OpenManyOptions = {}) {
      const opener = {
        envelope,
        encrypted: s.encrypted,
        transitional,
        idOf,
        contextOf: context,
        sealedOf,
      };
      return openRows<T>(opener, rows, options?.concurrency ?? concurrency);
    },

    async openField(row, field) {
      checkField(field);
      return openOne(row, field, idOf(row, "openField"));
    },

    async update(row, changes) {
      const id = idOf(row, "update");
      if (idField in changes && String(changes[idField]) !== id) {
        throw new ConfigError(
          "ENVELOPE_BAD_INPUT",
          `update cannot change "${idField}": the id is part of every field's encryption context. Open the record, then seal it again under the new id.`,
          { details: { table: s.table, field: idField } },
        );
      }
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(changes)) if (!encrypted.has(k)) out[k] = v;
      const touched = Object.keys(changes).some((k) => encrypted.has(k));
      const sealsData = s.encrypted.some(
        (f) => f in changes && changes[f] !== null && changes[f] !== undefined,
      );
      const first = s.encrypted.find((f) => row[f] !== null && row[f] !== undefined);
      // A row not under exactly the current encrypting keys (a rotation is under way) moves
      // whole to a fresh data key when an encrypted field changes: re-sealing only the
      // changes under its old entries would land new data under the retiring key. So does a
      // row whose data key may not be reused (see reusableMaterials).
      let m: Materials | undefined;
      // A row still holding a legacy value (transitional read) is re-sealed whole, too.
      let whole = touched && first !== undefined && (holdsLegacy(row) || !underCurrentKeys(row));
      if (!whole && sealsData && first !== undefined) {
        m = await reusableMaterials(row, first, id);
        whole = m === undefined;
      }
      try {
        // The whole record is opened (every field verified) before anything is sealed: a
        // field that does not open throws here, and nothing is written.
        const values: Record<string, unknown> = whole
          ? { ...(await cipher.open(row)), ...changes }
          : changes;
        const toSeal: string[] = [];
        for (const f of s.encrypted) {
          if (!(f in values)) continue;
          const v = values[f];
          indexInto(out, f, v);
          if (v === null || v === undefined) out[f] = v ?? null;
          else toSeal.push(f);
        }
        if (toSeal.length === 0) return out;
        m ??= await freshMaterials(id);
        for (const f of toSeal) out[f] = sealField(m, f, values[f], id);
        return out;
      } finally {
        m?.dataKey.fill(0);
      }
    },

    indexFor(field, value) {
      return indexer_(field).index(field, s.table, value, specs[field]);
    },
    candidatesFor(field, value) {
      return indexer_(field).candidates(field, s.table, value, specs[field]);
    },
    indexesOf(record) {
      const out: Record<string, unknown> = {};
      for (const f of Object.keys(specs)) if (f in record) indexInto(out, f, record[f]);
      return out as Record<string, string | null>;
    },
    indexColumn(field) {
      const spec = specs[field];
      return spec ? (spec.column ?? `${field}_idx`) : undefined;
    },
    matches(field, opened, value) {
      if (typeof opened !== "string" || typeof value !== "string") return false;
      const n = specs[field]?.normalize;
      return normalizeWith(n, opened) === normalizeWith(n, value);
    },
  };

  function checkField(field: string): void {
    if (!encrypted.has(field)) {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `"${shown(field)}" is not an encrypted field of table "${s.table}" (encrypted: ${s.encrypted.join(", ")}).`,
        { details: { table: s.table, field: shown(field) } },
      );
    }
  }

  function indexer_(field: string): BlindIndexer {
    checkField(field);
    if (!specs[field]) {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `Field "${field}" of table "${s.table}" has no blind index; declare it in schema.blindIndexes.`,
        { details: { table: s.table, field } },
      );
    }
    return indexer!;
  }

  Object.defineProperty(cipher, "toJSON", {
    value: () => ({ table: s.table, encrypted: s.encrypted, envelope: envelope.describe() }),
  });
  Object.defineProperty(cipher, inspect.custom, {
    value: () => `RecordCipher { table: '${s.table}', encrypted: [${s.encrypted.join(", ")}] }`,
  });
  return Object.freeze(cipher);
}

function checkSchema<F extends string>(
  schema: RecordSchema<F>,
  options: RecordCipherOptions<"text" | "binary">,
): Readonly<RecordSchema<F>> {
  const bad = (field: string, problem: string) =>
    new ConfigError("ENVELOPE_BAD_CONFIG", `Record schema: ${field} ${problem}.`, {
      details: { field },
    });
  if (!schema || typeof schema.table !== "string" || schema.table.length === 0) {
    throw bad("table", "must be the table name (a non-empty string)");
  }
  // Names go into contexts, blind index key derivation and SQL: one limit for all of them.
  const checkName = (field: string, name: unknown) => {
    const problem = nameProblem(name);
    if (problem) throw bad(field, problem);
  };
  checkName("table", schema.table);
  const idField = schema.idField ?? "id";
  if (typeof idField !== "string" || idField.length === 0) {
    throw bad("idField", "must be a non-empty string");
  }
  checkName("idField", idField);
  if (!Array.isArray(schema.encrypted) || schema.encrypted.length === 0) {
    throw bad("encrypted", 'must list at least one field, e.g. ["email", "phone"]');
  }
  const seen = new Set<string>();
  for (const f of schema.encrypted) {
    if (typeof f !== "string" || f.length === 0) throw bad("encrypted", "holds a non-string name");
    checkName(`encrypted field "${shown(f)}"`, f);
    if (f === idField) throw bad("encrypted", `cannot include the id field "${idField}"`);
    if (seen.has(f)) throw bad("encrypted", `lists "${f}" twice`);
    seen.add(f);
  }
  const indexes = Object.entries(schema.blindIndexes ?? {}) as [string, BlindIndexSpec][];
  for (const [field, spec] of indexes) {
    if (!seen.has(field)) {
      throw bad(`blindIndexes.${shown(field)}`, "names a field that is not encrypted");
    }
    const column = spec?.column ?? `${field}_idx`;
    checkName(`blindIndexes.${field}.column`, column);
    if (seen.has(column) || column === idField) {
      throw bad(`blindIndexes.${field}.column`, `"${column}" is already a field of the record`);
    }
  }
  const pads = schema.pad ?? {};
  if (typeof pads !== "object" || pads === null || Array.isArray(pads)) {
    throw bad(
      "pad",
      'must map encrypted fields to a padding option, e.g. { email: 32, ssn: "pii" }',
    );
  }
  for (const [field, option] of Object.entries(pads)) {
    if (!seen.has(field)) throw bad(`pad.${shown(field)}`, "names a field that is not encrypted");
    padRule(option, `pad.${field}`);
  }
  if (indexes.length > 0 && !options.blindIndex) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "The schema declares blind indexes: pass options.blindIndex = createBlindIndexer({ keys }).",
      { details: { field: "blindIndex" } },
    );
  }
  if (options.transitional !== undefined && typeof options.transitional?.open !== "function") {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "options.transitional must be made by transitionalRead({ decoders, onLegacyRead }).",
      { details: { field: "transitional" } },
    );
  }
  if (options.output !== undefined && options.output !== "text" && options.output !== "binary") {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", 'output must be "text" or "binary".', {
      details: { field: "output" },
    });
  }
  return Object.freeze({
    ...schema,
    encrypted: Object.freeze([...schema.encrypted]),
    ...(schema.pad ? { pad: Object.freeze({ ...schema.pad }) } : {}),
  });
}

/** Data keys generated per Envelope remembered at most (oldest forgotten first). */
const OWN_DATA_KEYS_MAX = 10_000;

/**
 * The data keys record ciphers generated through one Envelope, each bound to its table and
 * record id: the only keys `update` seals new data under. Holds a keyed fingerprint
 * (HMAC-SHA256 under a random per-Envelope secret, cut to 16 bytes), never a key. Bounded:
 * a forgotten key only costs the next update of that record a fresh data key.
 */
class OwnDataKeys {
  readonly #secret = randomBytes(32);
  readonly #seen = new Map<string, true>();

  #tag(table: string, id: string, dataKey: Uint8Array): string {
    return createHmac("sha256", this.#secret)
      .update(JSON.stringify([table, id]))
      .update(dataKey)
      .digest()
      .subarray(0, 16)
      .toString("base64");
  }

  add(table: string, id: string, dataKey: Uint8Array): void {
    const tag = this.#tag(table, id, dataKey);
    this.#seen.delete(tag);
    this.#seen.set(tag, true);
    if (this.#seen.size > OWN_DATA_KEYS_MAX) {
      this.#seen.delete(this.#seen.keys().next().value!);
    }
  }

  has(table: string, id: string, dataKey: Uint8Array): boolean {
    const tag = this.#tag(table, id, dataKey);
    if (!this.#seen.has(tag)) return false;
    this.#seen.delete(tag); // most recently used last
    this.#seen.set(tag, true);
    return true;
  }
}

const ownByEnvelope = new WeakMap<Envelope, OwnDataKeys>();

function ownDataKeys(envelope: Envelope): OwnDataKeys {
  let own = ownByEnvelope.get(envelope);
  if (!own) {
    own = new OwnDataKeys();
    ownByEnvelope.set(envelope, own);
  }
  return own;
}
