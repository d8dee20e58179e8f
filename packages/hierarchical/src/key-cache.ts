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

export interface MissCacheOptions {
  /** Unknown intermediate-key ids remembered at once (least recently seen goes first). Default 1024. */
  maxEntries?: number;
  /**
   * How long "not in the key store" is remembered, ms. Default 10000 (10 s). An IK that
   * another process stores after this process looked for it is found once this has passed.
   */
  ttlMs?: number;
}

/**
 * Intermediate-key ids the key store did not hold, remembered for a short time, so values
 * that name unknown ids (planted by whoever can write to the database) cost one store read
 * per id and TTL, not one per entry per decrypt. Bounded by entries and age.
 */
export class MissCache {
  readonly #seen = new Map<string, number>();
  readonly #max: number;
  readonly #ttl: number;
  readonly #now: () => number;
  /** Lookups answered from this cache (no store read). */
  hits = 0;

  constructor(options: MissCacheOptions, now: () => number) {
    this.#max = options.maxEntries ?? 1024;
    this.#ttl = options.ttlMs ?? 10_000;
    this.#now = now;
  }

  /** True while `id` is remembered as missing (the store is not asked again). */
  has(id: string): boolean {
    const at = this.#seen.get(id);
    if (at === undefined) return false;
    if (this.#now() - at >= this.#ttl) {
      this.#seen.delete(id);
      return false;
    }
    this.hits++;
    return true;
  }

  /** Remembers that the store did not hold `id`. */
  add(id: string): void {
    this.#seen.delete(id);
    this.#seen.set(id, this.#now());
    while (this.#seen.size > this.#max) this.#seen.delete(this.#seen.keys().next().value as string);
  }

  /** Forgets `id` (it was just stored by this process). */
  delete(id: string): void {
    this.#seen.delete(id);
  }

  get size(): number {
    return this.#seen.size;
  }

  clear(): void {
    this.#seen.clear();
  }
}
