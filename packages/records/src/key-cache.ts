import { ConfigError, type WrappedKey } from "@envelope/core";

/** Bounds of the record data-key cache. */
export interface RecordKeyCacheOptions {
  /** Most record data keys held at once. Default 1000. */
  maxEntries?: number;
  /** How long a data key stays usable after it was unwrapped or generated, in ms. Default 300000. */
  ttlMs?: number;
  /** Clock (tests). Default `performance`. */
  clock?: { now(): number };
}

export interface RecordKeyCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  size: number;
}

interface Slot {
  readonly dataKey: Buffer;
  readonly expires: number;
}

/**
 * Data keys of recently sealed or opened records, so that opening the other fields of a
 * record, or re-sealing a changed field, needs no KMS call. Keyed by table, id and the
 * wrapped-key entries (the data key is only ever used with the entries it came with, and
 * every use is still checked against each value's key commitment). Bounded by count and
 * TTL (least recently used first); every key leaving the cache is zeroed.
 */
export class RecordKeyCache {
  readonly #slots = new Map<string, Slot>();
  readonly #max: number;
  readonly #ttl: number;
  readonly #clock: { now(): number };
  readonly #stats = { hits: 0, misses: 0, evictions: 0 };

  constructor(options: RecordKeyCacheOptions = {}) {
    this.#max = options.maxEntries ?? 1000;
    this.#ttl = options.ttlMs ?? 300_000;
    this.#clock = options.clock ?? performance;
    if (!Number.isSafeInteger(this.#max) || this.#max < 1) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        "cache.maxEntries must be a positive integer (e.g. 1000), or pass cache: false.",
        { details: { field: "cache.maxEntries" } },
      );
    }
    if (!Number.isSafeInteger(this.#ttl) || this.#ttl < 1) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        "cache.ttlMs must be a positive integer of milliseconds (e.g. 300000), or pass cache: false.",
        { details: { field: "cache.ttlMs" } },
      );
    }
  }

  /** A private copy of the cached data key (zero it after use), or undefined. */
  get(key: string): Buffer | undefined {
    const slot = this.#slots.get(key);
    if (!slot) {
      this.#stats.misses++;
      return undefined;
    }
    if (slot.expires <= this.#clock.now()) {
      this.#drop(key, slot);
      this.#stats.evictions++;
      this.#stats.misses++;
      return undefined;
    }
    // Re-insert: Map order is the LRU order.
    this.#slots.delete(key);
    this.#slots.set(key, slot);
    this.#stats.hits++;
    return Buffer.from(slot.dataKey);
  }

  /** Stores a copy of `dataKey` (the caller keeps and zeroes its own). */
  set(key: string, dataKey: Uint8Array): void {
    const old = this.#slots.get(key);
    if (old) this.#drop(key, old);
    this.#slots.set(key, { dataKey: Buffer.from(dataKey), expires: this.#clock.now() + this.#ttl });
    while (this.#slots.size > this.#max) {
      const [oldest, slot] = this.#slots.entries().next().value as [string, Slot];
      this.#drop(oldest, slot);
      this.#stats.evictions++;
    }
  }

  /** Zeroes and drops every key. */
  clear(): void {
    for (const [key, slot] of this.#slots) this.#drop(key, slot);
  }

  stats(): RecordKeyCacheStats {
    return { ...this.#stats, size: this.#slots.size };
  }

  #drop(key: string, slot: Slot): void {
    slot.dataKey.fill(0);
    this.#slots.delete(key);
  }
}

/** Cache key of a record's data key: table, id and every wrapped entry. */
export function recordKeyId(table: string, id: string, entries: readonly WrappedKey[]): string {
  const parts = [table, id];
  for (const e of entries) {
    const wrapped = Buffer.from(e.wrapped.buffer, e.wrapped.byteOffset, e.wrapped.length);
    parts.push(e.providerId, e.keyRef, wrapped.toString("base64"));
  }
  return parts.map((p) => `${p.length}:${p}`).join("");
}
