import { LRUCache } from "lru-cache";
import { ConfigError } from "../errors.js";

export interface UnwrapCacheOptions {
  /** Most data keys held at once. Default 1000. */
  maxEntries?: number;
  /** How long an unwrapped data key may be reused, in ms. Default 300000 (5 min). */
  ttlMs?: number;
  /** Clock for TTLs (tests only). Default `performance`. */
  clock?: { now(): number };
}

/** Counters exposed for metrics. `evictions` counts keys dropped for size or age. */
export interface UnwrapCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  inflightJoins: number;
  size: number;
}

/**
 * Unwrapped data keys, keyed by everything that determined the unwrap (provider, key
 * reference, wrapped bytes, KMS-level context). Bounded by entries and TTL; concurrent
 * misses for one key share one provider call; every key leaving the cache is zeroed.
 *
 * Buffers returned by `peek` belong to the cache: use them synchronously and do not keep
 * them. `load` returns a private copy the caller must zero.
 */
/** One unwrap in progress, shared by every concurrent miss for the same key. */
interface Flight {
  readonly result: Promise<Buffer>;
  waiters: number;
}

interface CachedKey {
  readonly dataKey: Buffer;
  /** Per-message AES keys already derived and commitment-checked, by message id (latin1). */
  readonly messageKeys: Map<string, Buffer>;
}

// A warm decrypt of a recently seen message skips HKDF (≈8 µs, more than the AES itself).
const MESSAGE_KEYS_PER_DATA_KEY = 16;

export class UnwrapCache {
  private readonly lru: LRUCache<string, CachedKey>;
  private readonly inflight = new Map<string, Flight>();
  private readonly counters = { hits: 0, misses: 0, evictions: 0, inflightJoins: 0 };

  constructor(options: UnwrapCacheOptions = {}) {
    const max = options.maxEntries ?? 1000;
    const ttl = options.ttlMs ?? 300_000;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        "cache.maxEntries must be a positive integer (e.g. 1000).",
      );
    }
    if (!Number.isSafeInteger(ttl) || ttl < 1) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        "cache.ttlMs must be a positive integer of milliseconds (e.g. 300000).",
      );
    }
    this.lru = new LRUCache<string, CachedKey>({
      max,
      ttl,
      // No per-entry timers (ttlAutopurge costs a setTimeout per miss); one unref'd sweep
      // below zeroes expired keys within a quarter of the TTL.
      updateAgeOnGet: false,
      ...(options.clock ? { perf: options.clock } : {}),
      dispose: (entry, _key, reason) => {
        entry.dataKey.fill(0);
        for (const key of entry.messageKeys.values()) key.fill(0);
        entry.messageKeys.clear();
        if (reason === "evict" || reason === "expire") this.counters.evictions++;
      },
    });
    const sweep = setInterval(() => this.lru.purgeStale(), Math.max(1000, Math.floor(ttl / 4)));
    sweep.unref();
  }

  /** A cached data key, or undefined. The buffer is the cache's: use it synchronously. */
  peek(key: string): Buffer | undefined {
    const found = this.lru.get(key);
    if (found) this.counters.hits++;
    return found?.dataKey;
  }

  /**
   * The derived, commitment-checked AES key of one message under a cached data key, or
   * undefined. Counts as a hit. The buffer is the cache's: use it synchronously.
   */
  peekMessageKey(key: string, messageId: string): Buffer | undefined {
    const found = this.lru.get(key)?.messageKeys.get(messageId);
    if (found) this.counters.hits++;
    return found;
  }

  /** Remembers a message key derived from the cached data key `key` (takes ownership). */
  rememberMessageKey(key: string, messageId: string, messageKey: Buffer): void {
    const entry = this.lru.peek(key);
    if (!entry) {
      messageKey.fill(0);
      return;
    }
    if (entry.messageKeys.size >= MESSAGE_KEYS_PER_DATA_KEY) {
      const [oldest] = entry.messageKeys.keys();
      entry.messageKeys.get(oldest!)?.fill(0);
      entry.messageKeys.delete(oldest!);
    }
    entry.messageKeys.get(messageId)?.fill(0);
    entry.messageKeys.set(messageId, messageKey);
  }

  /**
   * Loads a missing data key through `loader`, sharing one call among concurrent callers.
   * Returns a private copy (zero it after use) and whether this caller joined a flight.
   */
  async load(
    key: string,
    loader: () => Promise<Uint8Array>,
  ): Promise<{ dataKey: Buffer; joined: boolean }> {
    let flight = this.inflight.get(key);
    const joined = flight !== undefined;
    if (flight) {
      this.counters.inflightJoins++;
      flight.waiters++;
    } else {
      this.counters.misses++;
      flight = { waiters: 1, result: this.fetch(key, loader) };
      this.inflight.set(key, flight);
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
    return { dataKey: --flight.waiters === 0 ? shared : Buffer.from(shared), joined };
  }

  private async fetch(key: string, loader: () => Promise<Uint8Array>): Promise<Buffer> {
    try {
      const result = await loader();
      // Our own copies: a provider that reuses its buffer cannot alter the cache, and the
      // LRU may evict (and zero) the cached copy before the waiters resume.
      const shared = Buffer.from(result);
      result.fill(0);
      this.lru.set(key, { dataKey: Buffer.from(shared), messageKeys: new Map() });
      return shared;
    } finally {
      this.inflight.delete(key);
    }
  }

  /**
   * Stores a data key this process just generated (a private copy), so the first read of
   * what it sealed costs no unwrap. Does nothing if the key is already cached.
   */
  prime(key: string, dataKey: Uint8Array): void {
    if (this.lru.has(key)) return;
    this.lru.set(key, { dataKey: Buffer.from(dataKey), messageKeys: new Map() });
  }

  /** Drops every key (each is zeroed). */
  clear(): void {
    this.lru.clear();
  }

  stats(): UnwrapCacheStats {
    return { ...this.counters, size: this.lru.size };
  }
}
