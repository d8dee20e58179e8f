import { inspect } from "node:util";
import {
  ConfigError,
  type DataKeyMaterials,
  type EncryptionContext,
  type Envelope,
  isTextForm,
} from "@envelope/core";
import type { BlindIndexer, BlindIndexSpec } from "./blind-index.js";
import { decodeValue, encodeValue } from "./codec.js";
import { placeOf, shown, withDetails } from "./names.js";
import { normalizeWith } from "./normalize.js";
import { checkConcurrency, openRows } from "./open-many.js";
import { recordIdReader } from "./record-id.js";
import { recordKeys } from "./record-keys.js";
import { checkSchema } from "./record-schema.js";
import type {
  OpenManyOptions,
  RecordCipher,
  RecordCipherOptions,
  RecordSchema,
  SealedRecord,
  SealedValue,
} from "./record-types.js";
import { isWellFormedSealed } from "./sealed-value.js";
import { isSealedValue, legacyFieldValue } from "./transitional.js";

// The types live in record-types.ts, the schema checks in record-schema.ts, the record of
// data keys generated here in own-data-keys.ts; re-exported so imports keep working.
export type {
  OpenManyOptions,
  RecordCipher,
  RecordCipherOptions,
  RecordSchema,
  SealedRecord,
  SealedValue,
} from "./record-types.js";

type Materials = DataKeyMaterials;

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
  const transitional = options.transitional;
  const concurrency = checkConcurrency(options.concurrency);

  const envelopesAsData = options.allowEnvelopePlaintext ?? false;

  const idOf = recordIdReader(s.table, idField);

  /**
   * Refuses a plaintext that is itself a well-formed Envelope value (core's strict decoder,
   * not a prefix): sealing it would store an envelope of an envelope, which `open` returns
   * as ciphertext and whose blind index is computed over the ciphertext — what a rerun of a
   * "seal every row" loop over rows it already sealed does.
   */
  const refuseSealed = (field: string, value: unknown) => {
    if (
      envelopesAsData === true ||
      (Array.isArray(envelopesAsData) && envelopesAsData.includes(field))
    ) {
      return;
    }
    if (
      typeof value === "string"
        ? !isTextForm(value)
        : !(value instanceof Uint8Array && isSealedValue(value))
    ) {
      return;
    }
    if (!isWellFormedSealed(value)) return;
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `Field "${field}" of "${s.table}" already holds an Envelope value (already sealed): sealing it again would store an envelope of an envelope, which open() returns as ciphertext. Select only rows not yet sealed, e.g. WHERE ${field} NOT LIKE 'ev1:%' (bytea: WHERE get_byte(${field}, 0) <> 1), or pass stored rows to open() first. If this field really stores Envelope values as data, list it in options.allowEnvelopePlaintext.`,
      { details: { table: s.table, field } },
    );
  };
  const context = (field: string, id: string): EncryptionContext => ({
    table: s.table,
    column: field,
    id,
  });

  /** Seals one field; `plaintext` is its encoding (zeroed here), or made from `value`. */
  const sealField = (
    m: Materials,
    field: string,
    value: unknown,
    id: string,
    plaintext = encodeValue(value, field),
  ) => {
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

  /**
   * Refuses a blind index column given without its field: the cipher computes it from the
   * value it seals, and an index written alone would make a lookup find a row whose value
   * does not match (or no longer find the row by its value). `alone(field)` says whether the
   * field is absent beside it.
   */
  const refuseIndexAlone = (
    given: Record<string, unknown>,
    what: string,
    alone: (field: string) => boolean,
    skipNull: boolean,
  ) => {
    for (const [field, spec] of Object.entries(specs)) {
      const column = spec?.column ?? `${field}_idx`;
      const value = given[column];
      if (value === undefined || (skipNull && value === null) || !alone(field)) continue;
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `${what} of "${s.table}": the blind index column "${column}" is given without its field "${field}". The cipher computes it from the value it seals; written alone it would make findByBlindIndex find a row with no matching value to open (or lose the row's own index). Change "${field}" instead; the index follows.`,
        { details: { table: s.table, field: column } },
      );
    }
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
  // Its errors name the row: `{ table, column, id }` added to their details (non-secret:
  // the context is not secret), so a failed list read says which row to look at.
  const openOne = async (row: Record<string, unknown>, field: string, id: string) => {
    const value = row[field];
    if (value === null || value === undefined) return value;
    try {
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
    } catch (error) {
      throw withDetails(error, placeOf(context(field, id)));
    }
  };

  /** True when the transitional read is on and a field of the row still holds a legacy value. */
  const holdsLegacy = (row: Record<string, unknown>): boolean =>
    transitional !== undefined &&
    s.encrypted.some((f) => {
      const value = row[f];
      return value !== null && value !== undefined && !isSealedValue(sealedOf(value, f));
    });

  const keys = recordKeys(envelope, s.table, s.encrypted, sealedOf, context);

  const cipher: RecordCipher<F, O> = {
    schema: s,

    async seal<T extends Record<string, unknown>>(record: T) {
      const id = idOf(record, "seal");
      const out: Record<string, unknown> = { ...record };
      const present = s.encrypted.filter((f) => record[f] !== null && record[f] !== undefined);
      for (const f of present) refuseSealed(f, record[f]);
      // A null index beside no field is what a row read before indexing holds: kept.
      refuseIndexAlone(record, "seal", (f) => !(f in record), true);
      for (const f of s.encrypted) if (f in record) indexInto(out, f, record[f]);
      if (present.length === 0) return out as SealedRecord<T, F, O>;
      // Encoded once, before the KMS call: a value that cannot be encoded is refused first.
      const encoded: Buffer[] = [];
      try {
        for (const f of present) encoded.push(encodeValue(record[f], f));
        const m = await keys.fresh(id);
        try {
          for (const [i, f] of present.entries()) {
            out[f] = sealField(m, f, record[f], id, encoded[i]);
          }
        } finally {
          m.dataKey.fill(0);
        }
      } finally {
        for (const plaintext of encoded) plaintext.fill(0);
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

    async update(row, given) {
      // `undefined` means "leave it as it is" (as in Prisma, Drizzle and Sequelize), not
      // NULL: such a change is dropped here, or it would erase the stored value and index.
      const changes = definedOnly(given);
      const id = idOf(row, "update");
      if (idField in changes && String(changes[idField]) !== id) {
        throw new ConfigError(
          "ENVELOPE_BAD_INPUT",
          `update cannot change "${idField}": the id is part of every field's encryption context. Open the record, then seal it again under the new id.`,
          { details: { table: s.table, field: idField } },
        );
      }
      for (const f of s.encrypted) {
        if (!(f in changes)) continue;
        refuseSealed(f, changes[f]);
        // Refused before any unwrap or KMS call, not after.
        const v = changes[f];
        if (v !== null && v !== undefined) encodeValue(v, f).fill(0);
      }
      refuseIndexAlone(changes, "update", (f) => !(f in changes), false);
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
      let whole =
        touched && first !== undefined && (holdsLegacy(row) || !keys.underCurrentKeys(row));
      if (!whole && sealsData && first !== undefined) {
        try {
          m = await keys.reusable(row, first, id);
        } catch (error) {
          throw withDetails(error, placeOf(context(first, id)));
        }
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
        m ??= await keys.fresh(id);
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
      for (const f of Object.keys(specs)) {
        if (!(f in record)) continue;
        refuseSealed(f, record[f]);
        indexInto(out, f, record[f]);
      }
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

/** `changes` without its keys whose value is `undefined`. */
function definedOnly<T extends Record<string, unknown>>(changes: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(changes)) if (v !== undefined) out[k] = v;
  return out as Partial<T>;
}
