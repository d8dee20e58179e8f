import { randomBytes } from "node:crypto";
import { Envelope, EnvelopeError, type KeyProvider } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { hierarchicalProvider, type KeyStore, memoryKeyStore } from "../src/index.js";
import { countingMaster } from "./helpers.js";

const context = { table: "users", column: "email", id: "42" };

/** A store that counts `get` calls and can be told to fail the next one. */
function countingStore(inner: KeyStore = memoryKeyStore()) {
  const counts = { get: 0, failNext: false };
  const store: KeyStore = {
    ...inner,
    name: inner.name,
    get: (id) => {
      counts.get++;
      if (counts.failNext) {
        counts.failNext = false;
        return Promise.reject(new Error("connection reset"));
      }
      return inner.get(id);
    },
  };
  return { store, counts };
}

const unknownId = () => `ik-${randomBytes(12).toString("hex")}`;

/**
 * What a database writer can plant without any key: a value whose entries all name
 * intermediate keys the store does not hold (valid-looking ids, random seeds).
 */
function plantedEntries(ids: string[]): KeyProvider[] {
  return ids.map((keyRef) => ({
    id: "hierarchical",
    keyRef,
    handles: () => false,
    wrap: async () => ({ providerId: "hierarchical", keyRef, wrapped: randomBytes(32) }),
    unwrap: () => Promise.reject(new Error("not used")),
  }));
}

async function rejection(promise: Promise<unknown>): Promise<EnvelopeError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(EnvelopeError.isInstance(error), String(error)).toBe(true);
  return error as EnvelopeError;
}

describe("hierarchical mode remembers unknown intermediate-key ids", () => {
  it("10 decrypts of values naming 16 unknown ids read the store at most once per id", async () => {
    const ids = Array.from({ length: 16 }, unknownId);
    const planter = new Envelope({ encrypt: plantedEntries(ids) });
    const hostile = await Promise.all(
      Array.from({ length: 10 }, () => planter.encrypt("x", { context })),
    );
    expect(
      new Envelope({ encrypt: plantedEntries(ids) }).inspect(hostile[0]!).entries,
    ).toHaveLength(16);

    const { store, counts } = countingStore();
    const provider = hierarchicalProvider({ master: countingMaster().provider, store });
    // The default entry cap (3) refuses these values before any store read; raise it to
    // measure the miss memory alone, as a client configured for wide multi-wrap would be.
    const capped = new Envelope({ encrypt: provider, cache: false });
    const refused = await rejection(capped.decrypt(hostile[0]!, { context }));
    expect(refused.code).toBe("ENVELOPE_LIMIT_EXCEEDED");
    expect(counts.get).toBe(0);
    const reader = new Envelope({ encrypt: provider, cache: false, maxEntriesTried: 16 });
    for (const value of hostile) {
      const error = await rejection(reader.decrypt(value, { context }));
      expect(error.code).toBe("ENVELOPE_KEY_NOT_FOUND");
    }
    // Before: one read per entry per decrypt (160). Now: at most one per distinct id.
    expect(counts.get).toBeGreaterThan(0);
    expect(counts.get).toBeLessThanOrEqual(ids.length);
    expect(provider.stats().storeReads).toBe(counts.get);
    const afterFirstRound = counts.get;
    for (const value of hostile) await rejection(reader.decrypt(value, { context }));
    expect(counts.get).toBe(afterFirstRound);
    expect(provider.stats().missCacheHits).toBeGreaterThan(0);

    // Concurrent decrypts share the remembered misses (and in-flight reads) too.
    await Promise.all(hostile.map((v) => rejection(reader.decrypt(v, { context }))));
    expect(counts.get).toBe(afterFirstRound);
  });

  it("the memory is bounded by missCache.maxEntries", async () => {
    const ids = Array.from({ length: 12 }, unknownId);
    const { store } = countingStore();
    const provider = hierarchicalProvider({
      master: countingMaster().provider,
      store,
      missCache: { maxEntries: 4 },
    });
    const reader = new Envelope({ encrypt: provider, cache: false });
    for (const id of ids) {
      const value = await new Envelope({ encrypt: plantedEntries([id]) }).encrypt("x", { context });
      await rejection(reader.decrypt(value, { context }));
    }
    expect(provider.stats().missCacheSize).toBe(4);
  });

  it("an intermediate key stored by another process after a miss is found once the miss TTL has passed", async () => {
    let now = 1_000_000;
    const master = countingMaster();
    const writerStore = memoryKeyStore("writer");
    const writer = new Envelope({
      encrypt: hierarchicalProvider({ master: master.provider, store: writerStore }),
    });
    const sealed = await writer.encrypt("alice@example.com", { context });

    // The reader's store does not have the record yet (a replica that lags, a late restore).
    const { store, counts } = countingStore(memoryKeyStore("reader"));
    const provider = hierarchicalProvider({
      master: master.provider,
      store,
      missCache: { ttlMs: 5_000 },
      now: () => now,
    });
    const reader = new Envelope({ encrypt: provider, cache: false });
    expect((await rejection(reader.decrypt(sealed, { context }))).code).toBe(
      "ENVELOPE_KEY_NOT_FOUND",
    );
    expect(counts.get).toBe(1);

    const [record] = await writerStore.list();
    await store.put(record!);
    now += 4_999; // still remembered as missing: the documented trade-off
    expect((await rejection(reader.decrypt(sealed, { context }))).code).toBe(
      "ENVELOPE_KEY_NOT_FOUND",
    );
    expect(counts.get).toBe(1);

    now += 1; // TTL passed: the store is asked again and the key is found
    expect(await reader.decrypt(sealed, { context, as: "text" })).toBe("alice@example.com");
    expect(counts.get).toBe(2);
  });

  it("a store failure is not remembered as a miss", async () => {
    const master = countingMaster();
    const inner = memoryKeyStore();
    const writer = new Envelope({
      encrypt: hierarchicalProvider({ master: master.provider, store: inner }),
    });
    const sealed = await writer.encrypt("x", { context });
    const { store, counts } = countingStore(inner);
    const reader = new Envelope({
      encrypt: hierarchicalProvider({ master: master.provider, store }),
      cache: false,
    });
    counts.failNext = true;
    expect((await rejection(reader.decrypt(sealed, { context }))).code).toBe(
      "ENVELOPE_KMS_UNAVAILABLE",
    );
    expect(await reader.decrypt(sealed, { context, as: "text" })).toBe("x");
    expect(counts.get).toBe(2);
  });

  it("rejects a bad missCache option with ENVELOPE_BAD_CONFIG", async () => {
    for (const missCache of [{ ttlMs: 0 }, { maxEntries: -1 }, { maxEntries: 1.5 }]) {
      expect(() =>
        hierarchicalProvider({
          master: countingMaster().provider,
          store: memoryKeyStore(),
          missCache,
        }),
      ).toThrow(expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }));
    }
  });
});
