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

/** One unwrap in progress, shared by every concurrent miss for the same key. */
interface Flight {
  readonly result: Promise<Buffer>;
  waiters: number;
}

interface CachedKey {
  readonly dataKey: Buffer;
  /** Ids of the messages whose keys were remembered under this data key, oldest first. */
  readonly messages: Set<string>;
}

/**
 * The AES key of one message, derived from a cached data key and commitment-checked.
 * `origin` is the caller's note of which entry and provider it came from (no secrets).
 */
export interface RememberedMessageKey<O = unknown> {
  /** The cache's buffer: use it synchronously and do not keep it. */
  readonly key: Buffer;
  readonly origin: O;
}

interface MessageRecord extends RememberedMessageKey {
  readonly owner: CachedKey;
  /** The owner's cache key: the same string object each time, so its hash is computed once. */
  readonly cacheKey: string;
}

// A warm decrypt of a recently seen message skips HKDF (≈8 µs, more than the AES itself).
const MESSAGE_KEYS_PER_DATA_KEY = 16;

/**
 * Unwrapped data keys, keyed by everything that determined the unwrap (provider, key
 * reference, wrapped bytes, KMS-level context). Bounded by entries and TTL; concurrent
 * misses for one key share one provider call; every key leaving the cache is zeroed.
 * Message keys derived from a cached data key are remembered by message id (at most 16
 * per data key) and leave with it.
 *
 * Buffers returned by `peek` belong to the cache: use them synchronously and do not keep
 * them. `load` returns a private copy the caller must zero.
 */
export class UnwrapCache {
  private readonly lru: LRUCache<string, CachedKey>;
  // Looked up by message id alone: building the data key's cache key (the wrapped bytes,
  // 384 for RSA-3072) and hashing it costs more than the AES of a small value.
  private readonly messages = new Map<string, MessageRecord>();
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
        for (const id of entry.messages) this.forget(id, entry);
        entry.messages.clear();
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
   * The remembered key of message `messageId`, or undefined. Counts as a hit. Served only
   * while its data key is still cached (not expired, evicted or cleared).
   */
  peekMessageKey<O>(messageId: string): RememberedMessageKey<O> | undefined {
    const found = this.messages.get(messageId);
    if (!found) return undefined;
    // get, not peek: honours the TTL and keeps the data key recent in the LRU.
    if (this.lru.get(found.cacheKey) !== found.owner) {
      this.forget(messageId, found.owner);
      return undefined;
    }
    this.counters.hits++;
    return found as RememberedMessageKey<O>;
  }

  /**
   * Remembers the key of message `messageId`, derived from the cached data key `key`
   * (takes ownership of `messageKey`; zeroes it if that data key is no longer cached).
   */
  rememberMessageKey(key: string, messageId: string, messageKey: Buffer, origin?: unknown): void {
    const owner = this.lru.peek(key);
    if (!owner) {
      messageKey.fill(0);
      return;
    }
    const previous = this.messages.get(messageId);
    if (previous) this.forget(messageId, previous.owner);
    if (owner.messages.size >= MESSAGE_KEYS_PER_DATA_KEY) {
      const [oldest] = owner.messages;
      this.forget(oldest!, owner);
    }
    owner.messages.add(messageId);
    this.messages.set(messageId, { key: messageKey, origin, owner, cacheKey: key });
  }

  /** Zeroes and drops a remembered message key if `owner` still holds it. */
  private forget(messageId: string, owner: CachedKey): void {
    owner.messages.delete(messageId);
    const found = this.messages.get(messageId);
    if (found?.owner !== owner) return;
    found.key.fill(0);
    this.messages.delete(messageId);
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
      this.lru.set(key, { dataKey: Buffer.from(shared), messages: new Set() });
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
    this.lru.set(key, { dataKey: Buffer.from(dataKey), messages: new Set() });
  }

  /** Drops every key (each is zeroed). */
  clear(): void {
    this.lru.clear();
    for (const found of this.messages.values()) found.key.fill(0);
    this.messages.clear();
  }

  stats(): UnwrapCacheStats {
    return { ...this.counters, size: this.lru.size };
  }
}
