import { ConfigError } from "../errors.js";
import { type SecretEntry, SecretKeyCache } from "./secret-key-cache.js";

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
 * Ids of the messages whose keys were remembered under a data key, oldest first. Made on
 * the first one: a cold read (a data key used once) allocates no Set.
 */
interface Messages {
  messages: Set<string> | undefined;
}
type CachedKey = SecretEntry<Messages>;

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

const noMessages = (): Messages => ({ messages: undefined });

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
  private readonly keys: SecretKeyCache<Messages>;
  // Looked up by message id alone: building the data key's cache key (the wrapped bytes,
  // 384 for RSA-3072) and hashing it costs more than the AES of a small value.
  private readonly messages = new Map<string, MessageRecord>();
  private readonly max: number;

  constructor(options: UnwrapCacheOptions = {}) {
    const max = options.maxEntries ?? 1000;
    this.max = max;
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
    this.keys = new SecretKeyCache({
      maxEntries: max,
      ttlMs: ttl,
      clock: options.clock,
      // One unref'd sweep zeroes expired keys within a quarter of the TTL; `close` stops it.
      sweepMs: Math.max(1000, Math.floor(ttl / 4)),
      // A data key takes the message keys derived from it along when it leaves.
      onLeave: (entry) => {
        const { messages } = entry.meta;
        if (!messages) return;
        for (const id of messages) this.forget(id, entry);
        messages.clear();
      },
    });
  }

  /** Most data keys held at once. */
  get maxEntries(): number {
    return this.max;
  }

  /** A cached data key, or undefined. The buffer is the cache's: use it synchronously. */
  peek(key: string): Buffer | undefined {
    return this.keys.get(key)?.key;
  }

  /**
   * Whether any message key is remembered. False for a reader whose providers all opt out
   * of the cache (hierarchical): it then skips building the message id of each read.
   */
  get remembersMessages(): boolean {
    return this.messages.size > 0;
  }

  /**
   * The remembered key of message `messageId`, or undefined. Counts as a hit. Served only
   * while its data key is still cached (not expired, evicted or cleared).
   */
  peekMessageKey<O>(messageId: string): RememberedMessageKey<O> | undefined {
    const found = this.messages.get(messageId);
    if (!found) return undefined;
    // get, not peek: honours the TTL and keeps the data key recent in the LRU.
    if (this.keys.lookup(found.cacheKey) !== found.owner) {
      this.forget(messageId, found.owner);
      return undefined;
    }
    this.keys.counters.hits++;
    return found as RememberedMessageKey<O>;
  }

  /**
   * Remembers the key of message `messageId`, derived from the cached data key `key`
   * (takes ownership of `messageKey`; zeroes it if that data key is no longer cached).
   */
  rememberMessageKey(key: string, messageId: string, messageKey: Buffer, origin?: unknown): void {
    const owner = this.keys.peek(key);
    if (!owner) {
      messageKey.fill(0);
      return;
    }
    const previous = this.messages.get(messageId);
    if (previous) this.forget(messageId, previous.owner);
    owner.meta.messages ??= new Set();
    if (owner.meta.messages.size >= MESSAGE_KEYS_PER_DATA_KEY) {
      const [oldest] = owner.meta.messages;
      this.forget(oldest!, owner);
    }
    owner.meta.messages.add(messageId);
    this.messages.set(messageId, { key: messageKey, origin, owner, cacheKey: key });
  }

  /** Zeroes and drops a remembered message key if `owner` still holds it. */
  private forget(messageId: string, owner: CachedKey): void {
    owner.meta.messages?.delete(messageId);
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
    const { key: dataKey, joined } = await this.loadKey(key, loader);
    return { dataKey, joined };
  }

  /** `load` for the keyring: the same, without a second async frame on every miss. */
  loadKey(
    key: string,
    loader: () => Promise<Uint8Array>,
  ): Promise<{ key: Buffer; joined: boolean }> {
    return this.keys.load(key, loader, noMessages);
  }

  /**
   * Stores a data key this process just generated (a private copy), so the first read of
   * what it sealed costs no unwrap. Does nothing if the key is already cached.
   */
  prime(key: string, dataKey: Uint8Array): void {
    if (this.keys.has(key)) return;
    this.keys.set(key, dataKey, noMessages());
  }

  /** Drops every key (each is zeroed). */
  clear(): void {
    this.keys.clear();
    for (const found of this.messages.values()) found.key.fill(0);
    this.messages.clear();
  }

  /**
   * Stops the sweep timer and zeroes every key; the cache stores nothing afterwards (each
   * lookup misses). For a client that is shutting down: `Envelope.close()` calls it.
   */
  close(): void {
    this.keys.close();
    this.clear();
  }

  stats(): UnwrapCacheStats {
    return { ...this.keys.counters, size: this.keys.size };
  }
}
