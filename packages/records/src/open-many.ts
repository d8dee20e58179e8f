import {
  type BulkResult,
  ConfigError,
  type DecryptManyItem,
  type EncryptionContext,
  type Envelope,
  EnvelopeError,
} from "@envelope/core";
import { decodeValue } from "./codec.js";
import { placeOf, withDetails } from "./names.js";
import { isSealedValue, legacyFieldValue, type TransitionalRead } from "./transitional.js";

type Row = Record<string, unknown>;

/** Distinct data keys (records) unwrapped at once when nothing else is configured. */
export const DEFAULT_OPEN_CONCURRENCY = 16;
/** Same ceiling as core's `decryptMany`. */
export const MAX_OPEN_CONCURRENCY = 1024;

/** What `openRows` needs of a record cipher: its envelope and its per-row checks. */
export interface RowOpener {
  readonly envelope: Envelope;
  readonly encrypted: readonly string[];
  readonly transitional: TransitionalRead | undefined;
  /** The row's id as a context value; throws a typed error when the row has none. */
  idOf(row: Row, what: string): string;
  contextOf(field: string, id: string): EncryptionContext;
  /** The stored value as sealed bytes/text; throws a typed error for anything else. */
  sealedOf(value: unknown, field: string): string | Uint8Array;
}

/** One encrypted field of one row: where its plaintext comes from. */
type Slot =
  | { field: string; kind: "envelope"; item: number; context: EncryptionContext }
  | { field: string; kind: "legacy"; value: string | Uint8Array; context: EncryptionContext };

type Plan = { ok: true; row: Row; slots: Slot[] } | { ok: false; error: EnvelopeError };

/** A field's plaintext before decoding, and how to decode it. */
type Opened = { field: string; plaintext: Buffer; legacy: boolean; context: EncryptionContext };

/**
 * Opens many stored rows. Every envelope value of every row goes into ONE `decryptMany`:
 * core groups the values that share a data key (the fields of one record) on one lane, so
 * a record's data key is unwrapped once and at most `concurrency` unwraps are in flight.
 * Legacy values (transitional read) are decoded locally, never sent there. A row whose
 * id, value, decryption or type tag fails gets that typed error; the other rows open.
 */
export async function openRows<T>(
  opener: RowOpener,
  rows: readonly unknown[],
  concurrency: number,
): Promise<BulkResult<T>[]> {
  if (!Array.isArray(rows)) {
    throw new ConfigError("ENVELOPE_BAD_INPUT", "openMany takes an array of stored rows.", {
      details: { field: "rows" },
    });
  }
  const items: DecryptManyItem[] = [];
  const plans = rows.map((row, i) => plan(opener, row, i, items));
  const decrypted = await opener.envelope.decryptMany(items, { concurrency });
  const results: BulkResult<T>[] = [];
  try {
    for (const p of plans) {
      results.push(p.ok ? await finish<T>(opener, p.row, p.slots, decrypted) : p);
    }
  } catch (bug) {
    // An untyped error (a decoder bug) aborts the call: zero what was not decoded yet.
    for (const d of decrypted) if (d.ok) d.value.fill(0);
    throw bug;
  }
  return results;
}

/** Checks a row and queues its envelope values; nothing is decrypted here. */
function plan(opener: RowOpener, row: unknown, index: number, items: DecryptManyItem[]): Plan {
  if (typeof row !== "object" || row === null || Array.isArray(row)) {
    return {
      ok: false,
      error: new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `Row ${index} is not an object: openMany takes the rows as stored (objects of column values).`,
        { details: { field: `rows[${index}]` } },
      ),
    };
  }
  const r = row as Row;
  const queued: DecryptManyItem[] = [];
  try {
    const id = opener.idOf(r, "openMany");
    const slots: Slot[] = [];
    for (const field of opener.encrypted) {
      const value = r[field];
      if (!(field in r) || value === null || value === undefined) continue;
      const context = opener.contextOf(field, id);
      let sealed: string | Uint8Array;
      try {
        sealed = opener.sealedOf(value, field);
      } catch (error) {
        throw withDetails(error, placeOf(context));
      }
      if (opener.transitional && !isSealedValue(sealed)) {
        slots.push({ field, kind: "legacy", value: sealed, context });
      } else {
        slots.push({ field, kind: "envelope", item: items.length + queued.length, context });
        queued.push({ sealed, context });
      }
    }
    items.push(...queued); // only once the whole row checked out
    return { ok: true, row: r, slots };
  } catch (error) {
    return { ok: false, error: typed(error) };
  }
}

/** The row with its fields opened, or the first field error; plaintext bytes are zeroed either way. */
async function finish<T>(
  opener: RowOpener,
  row: Row,
  slots: readonly Slot[],
  decrypted: readonly BulkResult<Buffer>[],
): Promise<BulkResult<T>> {
  const opened: Opened[] = [];
  let failure: EnvelopeError | undefined;
  for (const slot of slots) {
    if (slot.kind === "envelope") {
      const result = decrypted[slot.item]!;
      if (result.ok) {
        opened.push({
          field: slot.field,
          plaintext: result.value,
          legacy: false,
          context: slot.context,
        });
      } else failure ??= withDetails(result.error, placeOf(slot.context));
      continue;
    }
    try {
      // Audited per value by the transitional read, as `open` does.
      const read = await opener.transitional!.open(opener.envelope, slot.value, slot.context);
      opened.push({
        field: slot.field,
        plaintext: read.plaintext,
        legacy: true,
        context: slot.context,
      });
    } catch (error) {
      failure ??= withDetails(typed(error), placeOf(slot.context));
    }
  }
  if (failure) {
    for (const o of opened) o.plaintext.fill(0);
    return { ok: false, error: failure };
  }
  const out: Row = { ...row };
  for (const [i, o] of opened.entries()) {
    try {
      out[o.field] = o.legacy
        ? legacyFieldValue(o.plaintext, opener.transitional!.legacyAs, o.field)
        : decodeValue(o.plaintext, o.field); // checks the type tag, zeroes the bytes
    } catch (error) {
      for (const rest of opened.slice(i + 1)) rest.plaintext.fill(0);
      return { ok: false, error: withDetails(typed(error), placeOf(o.context)) };
    }
  }
  return { ok: true, value: out as T };
}

/** A typed error passes through; anything else is a bug (ours or a decoder's): fail loudly. */
function typed(error: unknown): EnvelopeError {
  if (EnvelopeError.isInstance(error)) return error;
  throw error;
}

/** The configured open concurrency, checked when the cipher is created. */
export function checkConcurrency(n: unknown): number {
  if (n === undefined) return DEFAULT_OPEN_CONCURRENCY;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1 || n > MAX_OPEN_CONCURRENCY) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `concurrency must be a whole number from 1 to ${MAX_OPEN_CONCURRENCY} (got ${String(n)}): the records opened at once (KMS calls in flight).`,
      { details: { field: "concurrency" } },
    );
  }
  return n;
}
