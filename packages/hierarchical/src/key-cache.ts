export interface IntermediateKeyCacheOptions {
  /** Unwrapped intermediate keys held at once. Default 256. */
  maxEntries?: number;
  /** How long an unwrapped intermediate key is kept, ms. Default 3600000 (1 h). */
  ttlMs?: number;
}

interface Slot {
  readonly key: Buffer;
  readonly loadedAt: number;
}

/**
 * Unwrapped intermediate keys by id: bounded by entries (least recently used goes first)
 * and age; concurrent misses for one id share one load (one master call); every key
 * leaving the cache is zeroed. A Map keeps insertion order, which is all an LRU needs.
 */
export class IntermediateKeyCache {
  readonly #slots = new Map<string, Slot>();
  readonly #inflight = new Map<string, Promise<Buffer>>();
  readonly #max: number;
  readonly #ttl: number;
  readonly #now: () => number;
  readonly counters = { hits: 0, misses: 0, inflightJoins: 0, evictions: 0 };

  constructor(options: IntermediateKeyCacheOptions, now: () => number) {
    this.#max = options.maxEntries ?? 256;
    this.#ttl = options.ttlMs ?? 3_600_000;
    this.#now = now;
  }

  /** The cached key (the cache's buffer: use it synchronously), or undefined. */
  peek(id: string): Buffer | undefined {
    const slot = this.#slots.get(id);
    if (!slot) return undefined;
    if (this.#now() - slot.loadedAt >= this.#ttl) {
      this.#drop(id, slot);
      return undefined;
    }
    this.#slots.delete(id);
    this.#slots.set(id, slot);
    this.counters.hits++;
    return slot.key;
  }

  /** Loads a missing key once for all concurrent callers; returns a private copy to zero. */
  async load(id: string, loader: () => Promise<Buffer>): Promise<Buffer> {
    let flight = this.#inflight.get(id);
    if (flight) {
      this.counters.inflightJoins++;
    } else {
      this.counters.misses++;
      flight = this.#fetch(id, loader);
      this.#inflight.set(id, flight);
    }
    return Buffer.from(await flight);
  }

  /** Puts a copy of `key` in the cache (a freshly created intermediate key). */
  set(id: string, key: Uint8Array): void {
    const old = this.#slots.get(id);
    if (old) this.#drop(id, old);
    this.#slots.set(id, { key: Buffer.from(key), loadedAt: this.#now() });
    while (this.#slots.size > this.#max) {
      const [oldest, slot] = this.#slots.entries().next().value as [string, Slot];
      this.#drop(oldest, slot);
    }
  }

  get size(): number {
    return this.#slots.size;
  }

  clear(): void {
    for (const [id, slot] of this.#slots) this.#drop(id, slot, false);
  }

  async #fetch(id: string, loader: () => Promise<Buffer>): Promise<Buffer> {
    try {
      const key = await loader();
      this.set(id, key);
      // Waiters copy from `key` once this settles; zero it after they have.
      setImmediate(() => key.fill(0));
      return key;
    } finally {
      this.#inflight.delete(id);
    }
  }

  #drop(id: string, slot: Slot, evicted = true): void {
    slot.key.fill(0);
    this.#slots.delete(id);
    if (evicted) this.counters.evictions++;
  }
}
