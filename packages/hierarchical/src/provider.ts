import { inspect } from "node:util";
import {
  aesKeyWrap,
  ConfigError,
  EnvelopeError,
  type GeneratedDataKey,
  type KeyProvider,
  type ReadinessTargets,
  SUITE_AES256GCM_SHA512_COMMIT,
  type WrappedKey,
} from "@envelope/core";
import {
  badWrapped,
  derive,
  nextSeed,
  SEED_LENGTH,
  unwrapWith,
  WRAPPED_LENGTH,
} from "./data-key.js";
import { corruptRecord, keyNotFound, PROVIDER_ID, storeUnavailable } from "./errors.js";
import {
  IntermediateKeyCache,
  type IntermediateKeyCacheOptions,
  MissCache,
  type MissCacheOptions,
} from "./key-cache.js";
import { createIntermediateKey, unwrapIntermediateKey } from "./master.js";
import {
  IK_ID_PATTERN,
  type IntermediateKeyRecord,
  keyCheckMatches,
  recordIntact,
} from "./record.js";
import type { KeyStore } from "./store/types.js";

export interface RotateAfter {
  /** Start a new intermediate key once the current one is this old, ms. Default 86400000 (24 h). */
  ageMs?: number;
  /** … or once it has wrapped this many data keys in this process. Default 1000000. */
  uses?: number;
}

export interface HierarchicalOptions {
  /** The master key provider that wraps intermediate keys (a KMS, local-aes, local-rsa…). */
  master: KeyProvider;
  /** Older master providers that may still unwrap intermediate keys (during a master rotation). */
  decrypt?: readonly KeyProvider[];
  /** Where intermediate-key records are kept. Back it up: see the README. */
  store: KeyStore;
  /** When to start a new intermediate key. */
  rotateAfter?: RotateAfter;
  /** Cache of unwrapped intermediate keys. */
  cache?: IntermediateKeyCacheOptions;
  /**
   * Memory of intermediate-key ids the store did not hold (bounded, short TTL), so values
   * naming unknown ids cannot make every decrypt read the key store again. The trade-off:
   * an IK that another process stores after this process looked for it (a store replica
   * that lags, a restore from backup) is found only once `ttlMs` has passed.
   */
  missCache?: MissCacheOptions;
  /**
   * The suite of the values this provider's data keys seal: 1 (default: HKDF-SHA256, every
   * reader) or 3 (one SHA-512 call per message, ~3× cheaper per distinct record; needs
   * readers with suite 0x03 support, FORMAT.md §15). Switch to 3 only once every process
   * that reads these values runs a version that knows suite 0x03. Signed writers ignore it.
   */
  suite?: 1 | 3;
  /**
   * How often (ms) a writer re-reads the record of the IK it seals under and checks it
   * against the key it holds (one store read, no master call). When the record is gone or
   * belongs to another key (a deleted or edited row, a restore from an older backup), the
   * writer starts a new IK instead of sealing values nobody else could open. Default 60000.
   */
  storeCheckMs?: number;
  /** Clock, ms since the epoch (tests). Default `Date.now`. */
  now?: () => number;
}

/** Counters of a hierarchical provider, for metrics and benchmarks. */
export interface HierarchicalStats {
  /** Calls made to the master provider (create + unwrap of intermediate keys). */
  masterCalls: number;
  intermediateKeysCreated: number;
  cacheHits: number;
  cacheMisses: number;
  inflightJoins: number;
  cacheSize: number;
  /** Key-store reads (`get`) made to load intermediate keys. */
  storeReads: number;
  /** Lookups of unknown intermediate-key ids answered from the miss cache (no store read). */
  missCacheHits: number;
  /** Unknown intermediate-key ids remembered now. */
  missCacheSize: number;
  /** Id of the intermediate key new data keys are wrapped under, if any yet. */
  current: string | undefined;
}

/** A KeyProvider with hierarchical extras. */
export interface HierarchicalProvider extends KeyProvider {
  /** Counters (no key material). */
  stats(): HierarchicalStats;
  /** Starts a new intermediate key now (e.g. after a suspected leak); returns its id. */
  rotate(): Promise<string>;
  /** Zeroes and forgets every cached intermediate key, and forgets remembered misses (e.g. after a restore). */
  clear(): void;
}

interface Current {
  readonly id: string;
  readonly key: Buffer;
  readonly createdAt: number;
  uses: number;
  /** When its store record was last seen intact and matching `key`. */
  checkedAt: number;
}

/**
 * Failures of an IK record that last until someone repairs the store: a checksum or key
 * check that fails, a wrapped IK the master refuses, a master key that is not configured.
 * Throttling, outages and denied access are asked again at once.
 */
const LASTING = new Set(["ENVELOPE_BAD_KEY", "ENVELOPE_UNWRAP_FAILED", "ENVELOPE_KEY_NOT_FOUND"]);

/** The id a readiness probe reads before any IK exists: well-formed, never generated (newIkId). */
const PROBE_ID = `ik-${"0".repeat(24)}`;

/** An entry of one of the two shapes a data key takes here (seed or AES-KW wrapped). */
const wellSized = (entry: WrappedKey) =>
  entry.wrapped.length === WRAPPED_LENGTH || entry.wrapped.length === SEED_LENGTH;

/**
 * Hierarchical key mode: each record's data key is derived from (on encrypt) or wrapped
 * by (on rewrap, AES-256 key wrap) a cached intermediate key (IK); IKs are wrapped by the master provider and kept in a
 * key store. Encrypt makes no master call except when a new IK starts (by age or use
 * count); decrypt makes one per IK, not per record. Entries carry provider id
 * `hierarchical` and the IK id as key reference. Rotating the master key (`rotateMaster`)
 * rewraps only the IK records.
 *
 * @example
 * const store = await fileKeyStore({ path: "/var/lib/app/envelope-keys.json", create: true });
 * const provider = hierarchicalProvider({ master: localAesProvider({ keys: process.env.MASTER_KEY! }), store });
 * const envelope = new Envelope({ encrypt: provider });
 */
export function hierarchicalProvider(options: HierarchicalOptions): HierarchicalProvider {
  const { master, store } = options;
  if (!master || typeof master.wrap !== "function" || !store || typeof store.get !== "function") {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "hierarchical: give a master key provider and a key store.",
      {
        details: { field: !master ? "master" : "store" },
      },
    );
  }
  const masters = [master, ...(options.decrypt ?? [])];
  const maxAge = positive(options.rotateAfter?.ageMs, 86_400_000, "rotateAfter.ageMs");
  const maxUses = positive(options.rotateAfter?.uses, 1_000_000, "rotateAfter.uses");
  positive(options.cache?.maxEntries, 256, "cache.maxEntries");
  positive(options.cache?.ttlMs, 3_600_000, "cache.ttlMs");
  positive(options.missCache?.maxEntries, 1024, "missCache.maxEntries");
  positive(options.missCache?.ttlMs, 10_000, "missCache.ttlMs");
  const storeCheckMs = positive(options.storeCheckMs, 60_000, "storeCheckMs");
  if (options.suite !== undefined && options.suite !== 1 && options.suite !== 3) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `hierarchical: suite must be 1 or 3; got ${String(options.suite)}.`,
      { details: { field: "suite" } },
    );
  }
  const fast = options.suite === 3;
  const now = options.now ?? Date.now;
  const cache = new IntermediateKeyCache(options.cache ?? {}, now);
  const misses = new MissCache(options.missCache ?? {}, now);
  let storeReads = 0;
  let current: Current | undefined;
  /** The IK `id` when it needs no store or KMS call: the current one, or cached. */
  const ikAtHand = (id: string) => (current?.id === id ? current.key : cache.peek(id));
  let creating: Promise<void> | undefined;
  let masterCalls = 0;
  let created = 0;

  const usable = (c: Current | undefined): c is Current =>
    c !== undefined && c.uses < maxUses && now() - c.createdAt < maxAge;

  // Single flight: concurrent first uses (or a burst at rotation) create one IK.
  const startNew = (): Promise<void> => {
    creating ??= (async () => {
      masterCalls++;
      const { record, key } = await createIntermediateKey(master, now());
      try {
        // Stored before first use: a key that is not saved must never wrap a data key.
        await store.put(record);
      } catch (error) {
        key.fill(0);
        throw EnvelopeError.isInstance(error) ? error : storeUnavailable(store.name, "put", error);
      }
      created++;
      misses.delete(record.id);
      cache.set(record.id, key);
      current?.key.fill(0);
      current = { id: record.id, key, createdAt: record.createdAt, uses: 0, checkedAt: now() };
    })().finally(() => {
      creating = undefined;
    });
    return creating;
  };

  // The record of the IK this process seals under must still be in the store: if it was
  // deleted or replaced, values sealed now would open nowhere else (nor here after a
  // restart). Checked every storeCheckMs with one store read and the key check (no master
  // call); on a mismatch the IK is retired and the next seal starts a new one. A store that
  // fails is not evidence of loss: sealing goes on and the check runs again next period.
  let checking: Promise<void> | undefined;
  const checkCurrent = (c: Current): Promise<void> => {
    checking ??= (async () => {
      let record: unknown;
      try {
        record = await store.get(c.id);
      } catch {
        c.checkedAt = now();
        return;
      }
      const r = record as IntermediateKeyRecord | undefined;
      if (r !== undefined && recordIntact(r) && r.id === c.id && keyCheckMatches(c.key, r)) {
        c.checkedAt = now();
        return;
      }
      if (current === c) {
        current = undefined;
        c.key.fill(0);
      }
    })().finally(() => {
      checking = undefined;
    });
    return checking;
  };

  const readRecord = (id: string) =>
    store.get(id).catch((error) => {
      throw EnvelopeError.isInstance(error) ? error : storeUnavailable(store.name, "get", error);
    });

  const loadKey = async (id: string): Promise<Buffer> => {
    storeReads++;
    const record = await readRecord(id);
    // Only "not there" is remembered; a store that failed is asked again next time.
    if (!record) {
      misses.add(id);
      throw keyNotFound(id, store.name);
    }
    if (record.id !== id) {
      // A store that answers with another id's record (a lookup bug, an edited id column):
      // that record's key check proves only its own id, so it must not open this one.
      throw corruptRecord(id, store.name, "the store returned the record of another id");
    }
    masterCalls++;
    try {
      return await unwrapIntermediateKey(record, masters, store.name);
    } catch (error) {
      // A record that fails its checks fails the same way until someone repairs it: remember
      // it like a miss, so a planted record costs one master call per TTL, not one per decrypt.
      if (EnvelopeError.isInstance(error) && LASTING.has(error.code)) misses.add(id, error);
      throw error;
    }
  };

  const provider = {
    id: PROVIDER_ID,
    get keyRef(): string {
      return current?.id ?? "unassigned";
    },
    handles: (entry: WrappedKey) =>
      entry.providerId === PROVIDER_ID && IK_ID_PATTERN.test(entry.keyRef),

    /**
     * The encrypt path: a data key derived as HMAC-SHA256(IK, label || seed) from a fresh
     * random 256-bit seed, and the seed is the entry. One HMAC (~1.5 µs) instead of an AES
     * key wrap (~5 µs) each way; the data key is as unpredictable as a random one to
     * anyone without the IK, and seeds never repeat in practice (2^-128 after 2^64 keys).
     */
    async generateDataKey(): Promise<GeneratedDataKey> {
      if (current !== undefined && now() - current.checkedAt >= storeCheckMs)
        await checkCurrent(current);
      while (!usable(current)) {
        await startNew();
        // Used even if the master took longer than rotateAfter.ageMs to create it (else a
        // slow master or a short ageMs would create IKs without end); checked and counted
        // below without an await in between.
        const fresh = current as Current | undefined; // set by startNew (TS cannot see it)
        if (fresh !== undefined && fresh.uses < maxUses) break;
      }
      // Check and count in one synchronous step, so the use limit holds under concurrency.
      const ik = current!;
      ik.uses++;
      const seed = nextSeed();
      const entry = { providerId: PROVIDER_ID, keyRef: ik.id, wrapped: seed };
      const dataKey = derive(ik.key, seed);
      return fast ? { dataKey, entry, suite: SUITE_AES256GCM_SHA512_COMMIT } : { dataKey, entry };
    },

    /** Wraps a given data key (rewrap into hierarchical mode) with AES-KW under the current IK. */
    async wrap(dataKey: Uint8Array): Promise<WrappedKey> {
      if (current !== undefined && now() - current.checkedAt >= storeCheckMs)
        await checkCurrent(current);
      while (!usable(current)) {
        await startNew();
        // Used even if the master took longer than rotateAfter.ageMs to create it (else a
        // slow master or a short ageMs would create IKs without end); checked and counted
        // below without an await in between.
        const fresh = current as Current | undefined; // set by startNew (TS cannot see it)
        if (fresh !== undefined && fresh.uses < maxUses) break;
      }
      const ik = current!;
      ik.uses++;
      // AES-KW needs no nonce: an intermediate key can wrap any number of data keys.
      return { providerId: PROVIDER_ID, keyRef: ik.id, wrapped: aesKeyWrap(ik.key, dataKey) };
    },

    // LocalUnwrap: with the IK at hand, the data key is one HMAC away (no promise).
    unwrapNow(entry: WrappedKey): Uint8Array | undefined {
      if (!wellSized(entry)) return undefined;
      const hot = ikAtHand(entry.keyRef);
      return hot ? unwrapWith(hot, entry) : undefined;
    },

    async unwrap(entry: WrappedKey): Promise<Uint8Array> {
      if (!wellSized(entry)) throw badWrapped(entry.keyRef);
      const hot = ikAtHand(entry.keyRef);
      if (hot) return unwrapWith(hot, entry);
      if (misses.has(entry.keyRef)) throw misses.failure(entry.keyRef, store.name);
      const key = await cache.load(entry.keyRef, () => loadKey(entry.keyRef));
      try {
        return unwrapWith(key, entry);
      } finally {
        key.fill(0);
      }
    },

    // ReadinessDelegation: `Envelope.check()` proves the master key and the store, and
    // creates, stores or counts no intermediate key (a canary through generateDataKey would).
    readinessTargets: (): ReadinessTargets => ({
      master,
      decrypt: options.decrypt ?? [],
      probe: async () => {
        // The current IK's record (or an id no IK has): the store answers, and holds the
        // key this process seals under, which every other reader (and this one after a
        // restart) loads from it. A store restored from an older backup fails here.
        const id = current?.id;
        const record = await readRecord(id ?? PROBE_ID);
        if (id === undefined) return;
        if (!record) throw keyNotFound(id, store.name);
        if (!recordIntact(record)) throw corruptRecord(id, store.name, "checksum mismatch");
      },
    }),

    stats: (): HierarchicalStats => ({
      masterCalls,
      intermediateKeysCreated: created,
      cacheHits: cache.counters.hits,
      cacheMisses: cache.counters.misses,
      inflightJoins: cache.counters.inflightJoins,
      cacheSize: cache.size,
      storeReads,
      missCacheHits: misses.hits,
      missCacheSize: misses.size,
      current: current?.id,
    }),

    async rotate(): Promise<string> {
      if (creating) await creating;
      await startNew();
      return current!.id;
    },

    clear(): void {
      cache.clear();
      misses.clear();
      current?.key.fill(0);
      current = undefined;
    },

    toJSON: () => ({
      provider: PROVIDER_ID,
      current: current?.id,
      master: `${master.id}:${master.keyRef}`,
      store: store.name,
    }),
    [inspect.custom]: () =>
      `HierarchicalProvider { current: '${current?.id ?? "none"}', master: '${master.id}:${master.keyRef}', store: '${store.name}' }`,
  };
  return provider;
}

function positive(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `hierarchical: ${field} must be a positive integer; got ${String(value)}.`,
      {
        details: { field },
      },
    );
  }
  return value;
}
