import { LRUCache } from "lru-cache";
import { secretCopy } from "../crypto/secret-bytes.js";

/** One cached key and what its owner keeps beside it (never secret). */
export interface SecretEntry<M> {
  /** The cache's own copy: use it synchronously and do not keep it; it is zeroed on leaving. */
  readonly key: Buffer;
  readonly meta: M;
}

/** Why a key left the cache: "evict" (pushed out), "expire", "set" (replaced), "delete" (deleted or cleared). */
export type LeaveReason = LRUCache.DisposeReason;

export interface SecretKeyCacheOptions<M> {
  /** Most keys held at once; the least recently used leaves first. */
  maxEntries: number;
  /** Age (from when it was stored, not last used) after which a key is not served, ms. */
  ttlMs?: number | undefined;
  /** Clock for ages (tests). Default `performance`. */
  clock?: { now(): number } | undefined;
  /**
   * Zero expired keys every this many ms, with one unref'd interval timer that `close`
   * stops. Without it an expired key is zeroed when it is next looked up or pushed out.
   */
  sweepMs?: number | undefined;
  /** Told after a key left (it is already zeroed), for the owner's own bookkeeping. */
  onLeave?: ((entry: SecretEntry<M>, id: string, reason: LeaveReason) => void) | undefined;
}

/** Counters for metrics; `evictions` counts keys that left for size or age. */
export interface SecretKeyCacheCounters {
  hits: number;
  misses: number;
  evictions: number;
  inflightJoins: number;
}

/** One load in progress, shared by every concurrent miss for the same id. */
interface Flight {
  readonly result: Promise<Buffer>;
  waiters: number;
}

/**
 * The one cache of secret keys in Envelope (unwrapped data keys, reused data keys,
 * hierarchical intermediate keys): an LRU bounded by entries and age, whose keys are
 * private copies zeroed whenever they leave (evicted, expired, replaced, deleted,
 * cleared, closed); concurrent misses for one id share one load (single flight).
 */
export class SecretKeyCache<M = undefined> {
  readonly counters: SecretKeyCacheCounters = {
    hits: 0,
    misses: 0,
    evictions: 0,
    inflightJoins: 0,
  };
  readonly #lru: LRUCache<string, SecretEntry<M>>;
  readonly #inflight = new Map<string, Flight>();
  #sweep: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(options: SecretKeyCacheOptions<M>) {
    const { onLeave } = options;
    this.#lru = new LRUCache<string, SecretEntry<M>>({
      max: options.maxEntries,
      ...(options.ttlMs === undefined ? {} : { ttl: options.ttlMs }),
      // Ages run from the store; no per-entry timers (ttlAutopurge costs a setTimeout per
      // miss) and no cached clock reading (ttlResolution 0: a clock read is cheaper than
      // the timeout lru-cache would set to expire it, and a test clock is obeyed at once).
      updateAgeOnGet: false,
      ttlResolution: 0,
      ...(options.clock ? { perf: options.clock } : {}),
      dispose: (entry, id, reason) => {
        entry.key.fill(0);
        if (reason === "evict" || reason === "expire") this.counters.evictions++;
        onLeave?.(entry, id, reason);
      },
    });
    if (options.sweepMs !== undefined && options.ttlMs !== undefined) {
      this.#sweep = setInterval(() => this.#lru.purgeStale(), options.sweepMs);
      this.#sweep.unref();
    }
  }

  /** The entry under `id`, counted as a hit; undefined when absent or expired. */
  get(id: string): SecretEntry<M> | undefined {
    const found = this.#lru.get(id);
    if (found) this.counters.hits++;
    return found;
  }

  /** Like `get` (honours age, refreshes recency) but counts nothing. */
  lookup(id: string): SecretEntry<M> | undefined {
    return this.#lru.get(id);
  }

  /** The entry under `id` without refreshing its recency or counting (undefined if expired). */
  peek(id: string): SecretEntry<M> | undefined {
    return this.#lru.peek(id);
  }

  has(id: string): boolean {
    return this.#lru.has(id);
  }

  /**
   * Stores a private copy of `key` (the caller keeps and zeroes its own) and returns the
   * cached entry. A key already under `id` is zeroed. A closed cache stores nothing.
   */
  set(id: string, key: Uint8Array, meta: M): SecretEntry<M> | undefined {
    if (this.#closed) return undefined;
    const entry: SecretEntry<M> = { key: secretCopy(key), meta };
    this.#lru.set(id, entry);
    return entry;
  }

  /** Zeroes and drops the key under `id`, if any. */
  delete(id: string): void {
    this.#lru.delete(id);
  }

  /**
   * Loads a missing key through `loader`, sharing one call among concurrent callers; the
   * loader's buffer is zeroed once copied. Returns a private copy (zero it after use) and
   * whether this caller joined a flight already under way.
   */
  async load(
    id: string,
    loader: () => Promise<Uint8Array>,
    meta: () => M,
  ): Promise<{ key: Buffer; joined: boolean }> {
    let flight = this.#inflight.get(id);
    const joined = flight !== undefined;
    if (flight) {
      this.counters.inflightJoins++;
      flight.waiters++;
    } else {
      this.counters.misses++;
      flight = { waiters: 1, result: this.#fetch(id, loader, meta) };
      this.#inflight.set(id, flight);
    }
    let shared: Buffer;
    try {
      shared = await flight.result;
    } catch (error) {
      flight.waiters--;
      throw error;
    }
    // Every waiter registered before the flight landed (it leaves the map first); the last
    // one to resume takes the shared buffer itself, the others copy it.
    return { key: --flight.waiters === 0 ? shared : secretCopy(shared), joined };
  }

  async #fetch(id: string, loader: () => Promise<Uint8Array>, meta: () => M): Promise<Buffer> {
    try {
      const result = await loader();
      // Our own copies: a loader that reuses its buffer cannot alter the cache, and the
      // LRU may evict (and zero) the cached copy before the waiters resume.
      const shared = secretCopy(result);
      result.fill(0);
      this.set(id, shared, meta());
      return shared;
    } finally {
      this.#inflight.delete(id);
    }
  }

  /** Zeroes and drops every key. */
  clear(): void {
    this.#lru.clear();
  }

  /** Stops the sweep timer, zeroes every key, and stores nothing from now on. */
  close(): void {
    this.#closed = true;
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = undefined;
    this.clear();
  }

  get size(): number {
    return this.#lru.size;
  }
}
