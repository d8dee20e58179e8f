import type { BulkResult, PadOption } from "@envelope/core";
import type { BlindIndexer, BlindIndexSpec } from "./blind-index.js";
import type { TransitionalRead } from "./transitional.js";

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
  /**
   * Fields whose plaintext may itself be an Envelope value (`true`: every field). Off by
   * default: `seal`, `update` and `indexesOf` refuse a value that is a well-formed Envelope
   * value (an `ev1:` string or its binary form, checked with core's decoder) with
   * `ENVELOPE_BAD_INPUT`, because it is nearly always a row sealed twice — a rerun of a
   * "seal the existing rows" loop — whose `open` would return ciphertext. Only for an app
   * that stores envelopes as data in an encrypted field.
   */
  allowEnvelopePlaintext?: boolean | readonly string[];
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
   *
   * Refused (`ENVELOPE_BAD_INPUT`): a change of the id, a blind index column without its
   * field (the cipher computes indexes), a value that is already an Envelope value.
   * A change whose value is `undefined` is no change (the field is left as it is); `null`
   * clears the field and its blind index.
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
