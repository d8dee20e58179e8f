import type { EncryptionMaterials } from "../crypto/materials.js";
import { ConfigError } from "../errors.js";
import type { WrappedKey } from "../format/envelope.js";
import { SecretKeyCache } from "./secret-key-cache.js";

export type { EncryptionMaterials } from "../crypto/materials.js";

/**
 * Limits for opt-in data-key reuse on encrypt. Each message still gets its own AES key
 * (HKDF of the data key and a random 32-byte message id), so these bound the blast
 * radius of one data key, not GCM nonce safety.
 */
export interface DataKeyReuseOptions {
  /** Messages per data key. Default 1000; at most 2^32. */
  maxMessages?: number;
  /** Plaintext bytes per data key. Default 1 GiB; at most 2^48. */
  maxBytes?: number;
  /** Age of a data key in ms. Default 60000; at most 24 h. */
  maxAgeMs?: number;
  /** Distinct KMS contexts held at once. Default 100. */
  maxEntries?: number;
}

/** What is kept beside a reused data key: its entries and how much it has sealed. */
interface Slot {
  readonly entries: readonly WrappedKey[];
  messages: number;
  bytes: number;
  readonly createdAt: number;
}

const HARD = { maxMessages: 2 ** 32, maxBytes: 2 ** 48, maxAgeMs: 86_400_000 };

/** Reuses a data key (and its wrapped entries) for several encrypts, within limits. */
export class DataKeyCache {
  private readonly limits: Required<Omit<DataKeyReuseOptions, "maxEntries">>;
  private readonly slots: SecretKeyCache<Slot>;
  reused = 0;

  constructor(
    options: DataKeyReuseOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.limits = {
      maxMessages: limit(options.maxMessages, 1000, HARD.maxMessages, "maxMessages"),
      maxBytes: limit(options.maxBytes, 2 ** 30, HARD.maxBytes, "maxBytes"),
      maxAgeMs: limit(options.maxAgeMs, 60_000, HARD.maxAgeMs, "maxAgeMs"),
    };
    // `take` checks every limit itself; the TTL and sweep only zero a key that has aged
    // out without being asked for again (one unref'd timer, stopped by `close`).
    this.slots = new SecretKeyCache<Slot>({
      maxEntries: limit(options.maxEntries, 100, 100_000, "maxEntries"),
      ttlMs: this.limits.maxAgeMs,
      clock: { now },
      sweepMs: Math.max(1000, Math.floor(this.limits.maxAgeMs / 4)),
    });
  }

  /**
   * Materials for one more message of `bytes` bytes under `key`, or undefined when none
   * are cached or using them would pass a limit (the spent slot is dropped and zeroed).
   * The data key is the cache's: use it synchronously.
   */
  take(key: string, bytes: number): EncryptionMaterials | undefined {
    const found = this.slots.lookup(key);
    if (!found) return undefined;
    const slot = found.meta;
    const fresh =
      slot.messages < this.limits.maxMessages &&
      slot.bytes + bytes <= this.limits.maxBytes &&
      this.now() - slot.createdAt < this.limits.maxAgeMs;
    if (!fresh) {
      this.slots.delete(key);
      return undefined;
    }
    slot.messages++;
    slot.bytes += bytes;
    this.reused++;
    return { dataKey: found.key, entries: slot.entries };
  }

  /** Stores fresh materials (a copy of the data key), already counting their first use. */
  put(key: string, materials: EncryptionMaterials, bytes: number): void {
    if (bytes > this.limits.maxBytes) return;
    this.slots.set(key, materials.dataKey, {
      entries: materials.entries,
      messages: 1,
      bytes,
      createdAt: this.now(),
    });
  }

  /** Zeroes and drops every data key. */
  clear(): void {
    this.slots.clear();
  }

  /** Zeroes every data key and stores none from now on. */
  close(): void {
    this.slots.close();
  }
}

function limit(value: number | undefined, fallback: number, hard: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1 || value > hard) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `dataKeyReuse.${name} must be an integer between 1 and ${hard}; got ${String(value)}.`,
      { details: { field: `dataKeyReuse.${name}` } },
    );
  }
  return value;
}
