import { type EnvelopeError, ProviderError } from "@envelope/core";
import { SecretKeyCache } from "@envelope/core/internal";
import { keyNotFound } from "./errors.js";

export interface IntermediateKeyCacheOptions {
  /** Unwrapped intermediate keys held at once. Default 256. */
  maxEntries?: number;
  /** How long an unwrapped intermediate key is kept, ms. Default 3600000 (1 h). */
  ttlMs?: number;
}

/**
 * Unwrapped intermediate keys by id, on core's zeroing secret-key cache: bounded by
 * entries (least recently used goes first) and age (from load); concurrent misses for one
 * id share one load (one master call); every key leaving the cache is zeroed.
 */
export class IntermediateKeyCache {
  readonly #keys: SecretKeyCache;

  constructor(options: IntermediateKeyCacheOptions, now: () => number) {
    this.#keys = new SecretKeyCache({
      maxEntries: options.maxEntries ?? 256,
      ttlMs: options.ttlMs ?? 3_600_000,
      clock: { now },
    });
  }

  /** Hits, misses, in-flight joins and evictions (keys that left for size or age). */
  get counters(): Readonly<{
    hits: number;
    misses: number;
    inflightJoins: number;
    evictions: number;
  }> {
    return this.#keys.counters;
  }

  /** The cached key (the cache's buffer: use it synchronously), or undefined. */
  peek(id: string): Buffer | undefined {
    return this.#keys.get(id)?.key;
  }

  /** Loads a missing key once for all concurrent callers; returns a private copy to zero. */
  async load(id: string, loader: () => Promise<Buffer>): Promise<Buffer> {
    return (await this.#keys.load(id, loader, () => undefined)).key;
  }

  /** Puts a copy of `key` in the cache (a freshly created intermediate key). */
  set(id: string, key: Uint8Array): void {
    this.#keys.set(id, key, undefined);
  }

  get size(): number {
    return this.#keys.size;
  }

  /** Zeroes and forgets every key. */
  clear(): void {
    this.#keys.clear();
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
 * Intermediate-key ids the key store did not hold, or whose record failed its checks,
 * remembered for a short time, so values that name them (planted by whoever can write to
 * the database) cost one store read (and at most one master call) per id and TTL, not one
 * per entry per decrypt. Bounded by entries and age.
 */
export class MissCache {
  readonly #seen = new Map<string, { at: number; failure: EnvelopeError | undefined }>();
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

  /** True while `id` is remembered as missing or broken (the store is not asked again). */
  has(id: string): boolean {
    const seen = this.#seen.get(id);
    if (seen === undefined) return false;
    if (this.#now() - seen.at >= this.#ttl) {
      this.#seen.delete(id);
      return false;
    }
    this.hits++;
    return true;
  }

  /**
   * The error to throw for a remembered id: a fresh one of the same code and message as
   * the first time (`keyNotFound` when the store did not hold it).
   */
  failure(id: string, store: string): EnvelopeError {
    const first = this.#seen.get(id)?.failure;
    if (!first) return keyNotFound(id, store);
    return new ProviderError(first.code as never, first.message, {
      details: { ...(first.details ?? {}), remembered: true },
    });
  }

  /** Remembers that the store did not hold `id` (no `failure`), or that its record failed. */
  add(id: string, failure?: EnvelopeError): void {
    this.#seen.delete(id);
    this.#seen.set(id, { at: this.#now(), failure });
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
