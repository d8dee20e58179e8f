import {
  ConfigError,
  type DataKeyMaterials,
  decodeEnvelope,
  type EncryptionContext,
  Envelope,
  EnvelopeError,
  FormatError,
  fromText,
  isTextForm,
  type KeyProvider,
  type PadOption,
} from "@envelope/core";
import { RECORD_VALUE_TAGS } from "@envelope/legacy";
import type { Row } from "../adapters/types.js";
import type { AnyLegacyDecoder } from "./legacy.js";
import type { RecordPlan } from "./record-fields.js";
import type { ColumnPlan } from "./values.js";

/** A column value in the form the engine works with: `ev1:` text or binary bytes. */
export type Value = string | Buffer;

/** What to do with one stored value. */
export type Verdict = "skip" | "work";

/** A new value, and other columns of its row written in the same compare-and-swap (a blind index). */
export interface Applied {
  value: Value;
  also?: { column: ColumnPlan; value: string }[];
}

/**
 * The per-value half of a job: `classify` decides without any KMS call (so dry runs
 * and skips are free); `apply` produces the new value; `check` is the preflight proof
 * (full decrypt) run on a sample before anything is written.
 */
export interface ValueTransform {
  readonly kind: "rewrap" | "migrate";
  /** Throws an EnvelopeError for a value the job cannot handle (e.g. not an envelope). */
  classify(value: Value): Verdict;
  /**
   * `row`: the row the value was read from (a legacy decoder may read a version column);
   * `column`: the column it was read from.
   */
  apply(
    value: Value,
    context: EncryptionContext,
    form: "text" | "binary",
    row?: Row,
    column?: string,
  ): Promise<Applied>;
  /** Returns the value the job would write (undefined when it would write nothing). */
  check(
    value: Value,
    context: EncryptionContext,
    form: "text" | "binary",
    row?: Row,
    column?: string,
  ): Promise<Value | undefined>;
  /** `provider:keyRef` of each entry of an envelope value (status counts). */
  keyRefs(value: Value): string[];
  /** Called once every value of a row was applied (or failed): per-row state is released. */
  endRow?(row: Row): void;
}

const applied = (value: Value): Applied => ({ value });

const label = (p: { id?: string; providerId?: string; keyRef: string }) =>
  `${p.providerId ?? p.id}:${p.keyRef}`;

function parts(value: Value) {
  return decodeEnvelope(typeof value === "string" ? fromText(value) : value);
}

function keyRefsOf(value: Value): string[] {
  return parts(value).entries.map(label);
}

/**
 * Rewrap: re-protect each value's data key under `to`. A value whose entries are exactly
 * the targets is skipped. With `verifyBody` (the engine's default), each value's body is
 * authenticated under its row's context before it is rewrapped, so a corrupted or moved
 * value fails and is left as it was. With `verifyAll`, each new value is decrypted with
 * the target keys alone before it may be written.
 */
export function rewrapTransform(
  envelope: Envelope,
  to: readonly KeyProvider[],
  { verifyAll, verifyBody }: { verifyAll: boolean; verifyBody: boolean },
): ValueTransform {
  // provider id → key references of the targets: compared without an `id:keyRef` string per entry.
  const targetRefs = new Map<string, Set<string>>();
  for (const p of to) {
    const refs = targetRefs.get(p.id) ?? new Set<string>();
    targetRefs.set(p.id, refs.add(p.keyRef));
  }
  let targetCount = 0;
  for (const refs of targetRefs.values()) targetCount += refs.size;
  const targetOnly = new Envelope({ encrypt: [...to], cache: false });
  const verify = async (value: Value, context: EncryptionContext) => {
    try {
      (await targetOnly.decrypt(value, { context, as: "bytes" })).fill(0);
    } catch (error) {
      // An encrypt-only target (public key only) cannot prove it by decrypting.
      if (EnvelopeError.isInstance(error) && error.code === "ENVELOPE_ENCRYPT_ONLY") return;
      throw error;
    }
  };
  return {
    kind: "rewrap",
    classify(value) {
      // The entries' labels compared without building a string per entry (once per value).
      const { entries } = parts(value);
      if (entries.length !== targetCount) return "work";
      for (const e of entries) if (!targetRefs.get(e.providerId)?.has(e.keyRef)) return "work";
      return "skip";
    },
    apply(value, context) {
      // Not async, and `to` as is (rewrap copies it): this runs once per value.
      const rewrapped = envelope.rewrap(value, { to, context, verifyBody });
      if (!verifyAll) return rewrapped.then(applied);
      return rewrapped.then(async (out) => {
        await verify(out, context);
        return { value: out };
      });
    },
    async check(value, context) {
      (await envelope.decrypt(value, { context, as: "bytes" })).fill(0);
      const out = await envelope.rewrap(value, { to: [...to], context });
      await verify(out, context);
      return out;
    },
    keyRefs: keyRefsOf,
  };
}

/**
 * Migrate: turn a legacy value (plaintext, hand-rolled AES, Fernet, pgcrypto, versioned)
 * into an envelope under the target keys. Values that already are envelopes are skipped; a
 * value the decoder's shape test (`matches`) rejects is `ENVELOPE_LEGACY_UNRECOGNIZED` and
 * is left as is. Every new value is decrypted again and compared with the legacy
 * plaintext before it may be written.
 *
 * With `records` (a table the app reads through `@envelope/records`), the decoder returns
 * the field's tagged plaintext (see `recordValueDecoder`), the value is padded as the
 * schema says, and its blind index is returned to be written with it.
 */
export function migrateTransform(
  target: Envelope,
  legacy: AnyLegacyDecoder,
  records?: RecordPlan,
): ValueTransform {
  // Records: the fields of one row share one data key, as the record cipher seals them
  // (one KMS call per record, wrapped with the record context { table, id }). Released by
  // endRow once the row's values are done.
  const rowKeys = new WeakMap<Row, Promise<DataKeyMaterials>>();
  const rowKey = (row: Row, table: string, id: string) => {
    let key = rowKeys.get(row);
    if (!key) {
      const fresh = target.generateDataKey({ context: { table, id } });
      // A failed call (throttled) is not kept: the engine's retry asks again.
      fresh.catch(() => rowKeys.get(row) === fresh && rowKeys.delete(row));
      rowKeys.set(row, fresh);
      key = fresh;
    }
    return key;
  };
  const encrypt = async (
    plaintext: Buffer,
    options: { context: EncryptionContext; output: "text" | "binary"; pad?: PadOption },
    shared: { row: Row; table: string } | undefined,
  ): Promise<Value> => {
    if (!shared) return target.encrypt(plaintext, options);
    const materials = await rowKey(shared.row, shared.table, String(options.context.id));
    return target.encryptWithDataKey(materials, plaintext, options);
  };
  const seal = async (
    value: Value,
    context: EncryptionContext,
    form: "text" | "binary",
    row?: Row,
    column?: string,
    shareRowKey = false,
  ): Promise<Applied> => {
    const plaintext = await legacy.decode(value, row);
    try {
      const field = column === undefined ? undefined : records?.fields.get(column);
      const pad = field?.pad === undefined ? {} : { pad: field.pad };
      // Computed before sealing: a value the index refuses (not text) is not written.
      const also = field?.index
        ? [{ column: field.index.column, value: field.index.of(fieldText(plaintext)) }]
        : undefined;
      const shared =
        shareRowKey && records && field && row ? { row, table: records.table } : undefined;
      const out = await encrypt(plaintext, { context, output: form, ...pad }, shared);
      const back = await target.decrypt(out, { context, as: "bytes" });
      const same = back.equals(plaintext);
      back.fill(0);
      if (!same) {
        throw new ConfigError(
          "ENVELOPE_PROVIDER_CONTRACT",
          "Migration self-check failed: the new envelope did not decrypt to the legacy plaintext. Nothing was written.",
        );
      }
      return also ? { value: out, also } : { value: out };
    } finally {
      plaintext.fill(0);
    }
  };
  const recognized = (value: Value) => !legacy.matches || legacy.matches(value);
  return {
    kind: "migrate",
    classify(value) {
      if (isEnvelope(value)) return "skip";
      if (!recognized(value)) throw unrecognizedValue(legacy.format);
      return "work";
    },
    apply: (value, context, form, row, column) => seal(value, context, form, row, column, true),
    // The preflight's sample seals each value under a key of its own (nothing is written).
    async check(value, context, form, row, column) {
      return isEnvelope(value) ? undefined : (await seal(value, context, form, row, column)).value;
    },
    endRow(row) {
      const key = rowKeys.get(row);
      rowKeys.delete(row);
      key?.then(
        (m) => m.dataKey.fill(0),
        () => {},
      );
    },
    keyRefs(value) {
      if (isEnvelope(value)) return keyRefsOf(value);
      const format = recognized(value) ? (legacy.formatOf?.(value) ?? legacy.format) : undefined;
      return format ? [`legacy:${format}`] : [];
    },
  };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The string a records field's tagged plaintext holds (what the app's blind index was computed from). */
function fieldText(tagged: Buffer): string {
  if (tagged[0] !== RECORD_VALUE_TAGS.string) {
    throw new FormatError(
      "ENVELOPE_BAD_FORMAT",
      'A blind-indexed field must hold text, but the migrated value is not a string field. Migrate it with records valueType "string".',
      { details: { field: "legacyValue" } },
    );
  }
  try {
    return strictUtf8.decode(tagged.subarray(1));
  } catch (cause) {
    throw new FormatError(
      "ENVELOPE_BAD_FORMAT",
      "A legacy value decrypted to bytes that are not UTF-8 text, so it has no blind index. It was left unchanged.",
      { cause, details: { field: "legacyValue" } },
    );
  }
}

function unrecognizedValue(format: string): FormatError {
  return new FormatError(
    "ENVELOPE_LEGACY_UNRECOGNIZED",
    `Value is neither an Envelope value nor in the legacy format given (${format}). It was left unchanged: add its format to --from, or allow plaintext only if it really is plaintext.`,
    { details: { field: "legacyValue" } },
  );
}

function isEnvelope(value: Value): boolean {
  if (typeof value === "string" && !isTextForm(value)) return false;
  try {
    parts(value);
    return true;
  } catch {
    return false;
  }
}
