import type { PlaintextInput } from "./bytes.js";
import { ConfigError, EnvelopeError } from "./errors.js";
import type { EncryptionContext } from "./format/context.js";
import { parse, type Sealed } from "./format/parse.js";

/** One item's outcome: its value, or the typed error that item alone failed with. */
export type BulkResult<T> = { ok: true; value: T } | { ok: false; error: EnvelopeError };

export interface BulkOptions {
  /**
   * Distinct data keys unwrapped at once (KMS calls in flight). Default 16. The rate of
   * a bulk decrypt over distinct records is bounded by concurrency / KMS latency.
   */
  concurrency?: number;
}

export interface DecryptManyItem {
  sealed: Sealed;
  /** The context given at encrypt; optional when the envelope stores its context. */
  context?: EncryptionContext;
}

export interface EncryptManyItem {
  plaintext: PlaintextInput;
  context?: EncryptionContext;
}

const DEFAULT_CONCURRENCY = 16;
const MAX_CONCURRENCY = 1024;

/**
 * Decrypts `items` in groups that share a data key (same first wrapped-key entry: the
 * fields of one record, values under a reused data key). One lane takes a whole group:
 * its first value pays the unwrap, the rest open from the unwrap cache right after, so a
 * data key is unwrapped once and lanes never wait on one another's KMS call. Results come
 * back in input order; a bad item gets its own error and does not fail the batch.
 */
export async function decryptGrouped<T>(
  items: readonly DecryptManyItem[],
  options: BulkOptions,
  open: (item: DecryptManyItem) => Promise<T>,
): Promise<BulkResult<T>[]> {
  const lanes = concurrencyOf(options);
  checkItems(items, "decryptMany");
  const groups = new Map<string, number[]>();
  items.forEach((item, i) => {
    const key = (isItem(item) && dataKeyOf(item.sealed)) || `#${i}`; // unparsable: its own group, fails alone
    const group = groups.get(key);
    if (group) group.push(i);
    else groups.set(key, [i]);
  });
  const results = new Array<BulkResult<T>>(items.length);
  const queue = [...groups.values()];
  let next = 0;
  const lane = async () => {
    while (next < queue.length) {
      for (const i of queue[next++]!) results[i] = await settle(() => open(itemAt(items, i)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(lanes, queue.length) }, lane));
  return results;
}

/** Encrypts `items` with at most `concurrency` in flight; results in input order. */
export async function encryptEach<T>(
  items: readonly EncryptManyItem[],
  options: BulkOptions,
  seal: (item: EncryptManyItem) => Promise<T>,
): Promise<BulkResult<T>[]> {
  const lanes = concurrencyOf(options);
  checkItems(items, "encryptMany");
  const results = new Array<BulkResult<T>>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await settle(() => seal(itemAt(items, i)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(lanes, items.length) }, lane));
  return results;
}

function checkItems(items: unknown, method: string): void {
  if (!Array.isArray(items)) {
    throw new ConfigError("ENVELOPE_BAD_INPUT", `${method} takes an array of items.`, {
      details: { field: "items" },
    });
  }
}

const isItem = (item: unknown): item is object => typeof item === "object" && item !== null;

/** The item, or a per-item ENVELOPE_BAD_INPUT when it is not an object. */
function itemAt<T>(items: readonly T[], i: number): T {
  const item = items[i];
  if (!isItem(item)) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `Item ${i} is not an object: give { sealed, context } or { plaintext, context }.`,
      {
        details: { field: `items[${i}]` },
      },
    );
  }
  return item;
}

/** The first entry's bytes name the data key; undefined when the value does not parse. */
function dataKeyOf(sealed: Sealed): string | undefined {
  try {
    const entry = parse(sealed).entries[0]!;
    return `${entry.providerId}\u0000${entry.keyRef}\u0000${Buffer.from(entry.wrapped).toString("latin1")}`;
  } catch {
    return undefined;
  }
}

async function settle<T>(run: () => Promise<T>): Promise<BulkResult<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    // An untyped error is a bug (ours or a provider's), not a bad item: fail loudly.
    if (!EnvelopeError.isInstance(error)) throw error;
    return { ok: false, error };
  }
}

function concurrencyOf(options: BulkOptions): number {
  const n = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_CONCURRENCY) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `concurrency must be a whole number from 1 to ${MAX_CONCURRENCY} (got ${String(n)}).`,
      { details: { field: "concurrency" } },
    );
  }
  return n;
}
