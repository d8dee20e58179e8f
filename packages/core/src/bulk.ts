import { setImmediate } from "node:timers";
import type { PlaintextInput } from "./bytes.js";
import { latin1 } from "./crypto/seal.js";
import { ConfigError, EnvelopeError } from "./errors.js";
import type { EncryptionContext } from "./format/context.js";
import type { Sealed } from "./format/parse.js";
import { fromText, textHead } from "./format/text.js";
import { entryBytes } from "./format/v1/entry-bytes.js";
import type { BulkOpen, HeldKey } from "./keyring/bulk-open.js";

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

/** How `decryptGrouped` opens one item: `bulk` goes to the key ring (KeyRing.open). */
export type OpenItem<T> = (item: DecryptManyItem, bulk: BulkOpen) => Promise<T>;

/**
 * Decrypts `items` in groups that share a data key (the same wrapped-key entries: the
 * fields of one record, values under a reused data key). A value is grouped by the bytes
 * of its entries (groupKeyOf) and parsed once, by `open`, when its lane reaches it: parts
 * kept from grouping until then outlived the young-generation GC (docs/PERFORMANCE.md). A
 * lane takes a whole group: its first value pays the unwrap, the rest open from its key.
 *
 * Lanes start while the items are still being grouped: a new group gets a lane at once
 * while fewer than `concurrency` run, so the first KMS calls go out before the rest of the
 * batch is grouped. Grouping runs to the end synchronously, before any lane resumes, so a
 * lane sees every member of its group.
 *
 * Every KMS unwrap of the call passes one gate of `concurrency` permits: the bound holds
 * whatever the values (a planted copy that misses its group's key, another entry tried)
 * and whatever else uses the client's cache meanwhile.
 *
 * KMS answers arrive in bursts (every lane waits the same latency) on one thread, and an
 * answer waits while the thread opens values: a lane that opened its group before sending
 * its next call made every later answer of the burst, and so every later call, late. So
 * once a KMS answer has put a group's data key in the unwrap cache (`afterUnwrap`, only
 * for a value with one candidate entry), the lane keeps a copy for the group (the cache may
 * evict its own meanwhile), sends its next group's call at once, and then waits for a turn
 * to open the group: a few groups per event-loop iteration, so the answers that came due
 * meanwhile are taken first. The group's other values open with the held key when their
 * only entry has the same unwrap-cache key (the same wrapped key under the same
 * KMS-bound context); any other value takes the normal path. Held keys are zeroed when
 * their group is done. Results come back in input order; a bad item gets its own error.
 */
export async function decryptGrouped<T>(
  items: readonly DecryptManyItem[],
  options: BulkOptions,
  open: OpenItem<T>,
): Promise<BulkResult<T>[]> {
  const lanes = concurrencyOf(options);
  checkItems(items, "decryptMany");
  const results = new Array<BulkResult<T>>(items.length);
  const queue: number[][] = [];
  let next = 0;
  // Each item as it was grouped: a caller replacing `items[i]` or its `sealed` while the
  // batch runs cannot move a value into another group.
  const grouped = new Array<unknown>(items.length);
  const openAt = (i: number, bulk: BulkOpen) =>
    settle(() => open(itemAt(grouped[i], i) as DecryptManyItem, bulk));
  const gate = callGate(lanes);
  const turns = turnsPerIteration(GROUPS_PER_TURN);
  const lane = async () => {
    let following: Slot<T> | undefined;
    let stopped = false;
    const start = (group: number[]): Slot<T> => {
      const slot: Slot<T> = {
        group,
        first: undefined as unknown as Promise<BulkResult<T>>,
        loaded: new Set(),
      };
      const afterUnwrap = async (key: HeldKey) => {
        if (stopped) {
          key.dataKey.fill(0);
          return;
        }
        slot.held = key;
        if (!following && next < queue.length) {
          following = start(queue[next++]!);
          following.first.catch(() => {}); // awaited below; a bug thrown meanwhile must not go unhandled
        }
        await turns();
      };
      slot.first = openAt(group[0]!, { gate, afterUnwrap, loaded: slot.loaded });
      return slot;
    };
    let slot = next < queue.length ? start(queue[next++]!) : undefined;
    try {
      while (slot) {
        try {
          results[slot.group[0]!] = await slot.first;
          const rest = { gate, held: slot.held, loaded: slot.loaded };
          for (let j = 1; j < slot.group.length; j++) {
            results[slot.group[j]!] = await openAt(slot.group[j]!, rest);
          }
        } finally {
          slot.held?.dataKey.fill(0);
        }
        slot = following ?? (next < queue.length ? start(queue[next++]!) : undefined);
        following = undefined;
      }
    } finally {
      stopped = true; // a bug ended the lane: keys still arriving are zeroed at once
      following?.held?.dataKey.fill(0);
    }
  };
  const running: Promise<void>[] = [];
  const groups = new Map<string, number[]>();
  for (let i = 0; i < items.length; i++) {
    const item = snapshot(items, i, ["sealed", "context"]);
    grouped[i] = item;
    const key = groupKeyOf(item) ?? `#${i}`; // not a v1 value: its own group, fails alone
    const group = groups.get(key);
    if (group) {
      group.push(i);
      continue;
    }
    groups.set(key, [i]);
    queue.push(groups.get(key)!);
    if (running.length < lanes) running.push(lane()); // its unwrap starts now
  }
  await Promise.all(running);
  return results;
}

/** A lane's group: its first value's open, and the key the lane holds for the rest. */
interface Slot<T> {
  readonly group: number[];
  first: Promise<BulkResult<T>>;
  held?: HeldKey;
  /** Unwrap-cache keys its values loaded (BulkOpen.loaded): per group, so it stays small. */
  readonly loaded: Set<string>;
}

/** At most `limit` calls running at once; the others wait, in order, for a permit. */
function callGate(limit: number): BulkOpen["gate"] {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (call) => {
    if (running < limit) running++;
    else await new Promise<void>((resolve) => waiting.push(resolve)); // handed a permit
    try {
      return await call();
    } finally {
      const nextCall = waiting.shift();
      if (nextCall) nextCall();
      else running--;
    }
  };
}

/** Groups a bulk read opens per event-loop iteration before it lets due callbacks run. */
const GROUPS_PER_TURN = 4;

/**
 * Turns given out in request order, `perIteration` per event-loop iteration (a check
 * phase): between two, the loop runs the timer and I/O callbacks that came due.
 */
function turnsPerIteration(perIteration: number): () => Promise<void> {
  const waiting: (() => void)[] = [];
  let scheduled = false;
  const grant = () => {
    for (const resolve of waiting.splice(0, perIteration)) resolve();
    scheduled = waiting.length > 0;
    if (scheduled) setImmediate(grant); // queued in this check phase: the next iteration
  };
  return () =>
    new Promise<void>((resolve) => {
      waiting.push(resolve);
      if (!scheduled) {
        scheduled = true;
        setImmediate(grant);
      }
    });
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
      results[i] = await settle(() =>
        seal(itemAt(snapshot(items, i, ["plaintext", "context"]), i) as EncryptManyItem),
      );
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

/** The item, or a per-item ENVELOPE_BAD_INPUT when it is not an object or not readable. */
function itemAt(item: unknown, i: number): object {
  if (item instanceof UnreadableItem) throw item.error;
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

/**
 * The group of an item's value: the bytes of all its entries (provider, key reference,
 * wrapped key, in order), so a record's fields share one. Not the first entry alone: a
 * planted value copying another record's first entry would join its group and then try an
 * entry of its own while the lane's next unwrap is out, past `concurrency`. Read from the
 * length fields without a full parse (a third of a warm bulk read's CPU went to parsing to
 * group, docs/PERFORMANCE.md); `open` parses and checks every value. A planted value whose
 * entries copy a record's but which fails that parse joins the record's group and fails
 * alone; if it comes first, the record's other fields open without a held key (one gated
 * unwrap, no early start of the lane's next call). A text value is grouped by the head of
 * its text decoded alone (textEntries), so a malformed text value may join a group the same
 * way. Undefined when it is no item or not a v1 value.
 */
function groupKeyOf(item: unknown): string | undefined {
  if (!isItem(item)) return undefined;
  const { sealed } = item as DecryptManyItem;
  let entries: Uint8Array | undefined;
  if (sealed instanceof Uint8Array) entries = entryBytes(sealed);
  else if (typeof sealed === "string") entries = textEntries(sealed);
  return entries && latin1(entries);
}

/**
 * Bytes of a text value decoded to find its entries (a multiple of 3: whole base64 groups).
 * A header and entries of 3 KiB hold any single entry and most pairs, so a large value is
 * not decoded in full here and again by `open` (docs/PERFORMANCE.md, fifteenth pass).
 */
const TEXT_HEAD_BYTES = 3 * 1024;

/** A text value's entry bytes, from its head, else from the whole value (longer entries). */
function textEntries(sealed: string): Uint8Array | undefined {
  const head = textHead(sealed, TEXT_HEAD_BYTES);
  if (!head) return undefined; // no text form: opened alone, where `open` reports the error
  const entries = entryBytes(head);
  if (entries || head.length < TEXT_HEAD_BYTES) return entries; // found, or the value was all head
  try {
    return entryBytes(fromText(sealed));
  } catch {
    return undefined; // malformed: opened alone, where `open` reports the error
  }
}

/** An item whose fields could not be read (a getter threw): it fails alone, with `error`. */
class UnreadableItem {
  constructor(readonly error: ConfigError) {}
}

/**
 * Item `i`'s `fields` read once, or the non-item as it is (it fails alone). A getter that
 * throws (the item's, or the array's own at `i`) makes an UnreadableItem: that item fails,
 * not the whole batch. A context's own fields are read, and checked, when it is opened.
 */
function snapshot(items: readonly unknown[], i: number, fields: readonly string[]): unknown {
  let field = "";
  try {
    const item = items[i];
    if (!isItem(item)) return item;
    const copy: Record<string, unknown> = {};
    for (field of fields) copy[field] = (item as Record<string, unknown>)[field];
    return copy;
  } catch {
    const at = field ? `items[${i}].${field}` : `items[${i}]`;
    return new UnreadableItem(
      new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `${at} could not be read: a getter threw. Give plain objects ({ sealed, context } or { plaintext, context }).`,
        { details: { field: at } },
      ),
    );
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

export function concurrencyOf(options: BulkOptions): number {
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
