import { randomBytes } from "node:crypto";
import {
  decodeEnvelope,
  type EncryptionContext,
  Envelope,
  type KeyProvider,
  UnwrapCache,
} from "@envelope/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { expectEnvelopeError, rejection } from "./support/codes.js";
import { countingProvider, isZero } from "./support/counting-provider.js";

afterEach(() => {
  vi.restoreAllMocks();
});

/** A clock for the unwrap cache's TTLs that only moves when told to. */
function manualClock() {
  let now = 1_000_000;
  return {
    now: () => now,
    // Async for the callers' sake; the cache reads the clock on every lookup (no memo).
    advance: async (ms: number) => {
      now += ms;
    },
  };
}

/**
 * Records every buffer the Envelope's unwrap cache hands out from its own storage (data
 * keys and remembered message keys), so a test can check they are zeroed later. Test-only:
 * it wraps the prototype methods, it adds no API.
 */
function captureCacheBuffers(): Buffer[] {
  const captured: Buffer[] = [];
  const peek = UnwrapCache.prototype.peek;
  vi.spyOn(UnwrapCache.prototype, "peek").mockImplementation(function (this: UnwrapCache, key) {
    const found = peek.call(this, key);
    if (found) captured.push(found);
    return found;
  });
  const peekMessageKey = UnwrapCache.prototype.peekMessageKey;
  vi.spyOn(UnwrapCache.prototype, "peekMessageKey").mockImplementation(function (
    this: UnwrapCache,
    messageId,
  ) {
    const found = peekMessageKey.call(this, messageId);
    if (found) captured.push(found.key);
    return found;
  });
  return captured;
}

const messageIdOf = (sealed: Buffer) =>
  Buffer.from(decodeEnvelope(sealed).messageId).toString("hex");

describe("unwrap cache through the client", () => {
  it("counts hits and misses and unwraps each data key once", async () => {
    const kms = countingProvider();
    const env = new Envelope({ encrypt: kms });
    const a = await env.encrypt("a");
    const b = await env.encrypt("b");
    expect(env.cacheStats()).toMatchObject({ hits: 0, misses: 0, size: 0 });
    expect(await env.decrypt(a, { as: "text" })).toBe("a");
    expect(env.cacheStats()).toMatchObject({ hits: 0, misses: 1, size: 1 });
    for (let i = 0; i < 5; i++) expect(await env.decrypt(a, { as: "text" })).toBe("a");
    expect(env.cacheStats()).toMatchObject({ hits: 5, misses: 1, size: 1, inflightJoins: 0 });
    expect(await env.decrypt(b, { as: "text" })).toBe("b");
    expect(env.cacheStats()).toMatchObject({ hits: 5, misses: 2, size: 2 });
    expect(kms.calls.unwrap).toBe(2);
  });

  it("100 concurrent decrypts of one envelope make exactly one unwrap (single flight)", async () => {
    const kms = countingProvider({ delayMs: 20 });
    const env = new Envelope({ encrypt: kms });
    const sealed = await env.encrypt("together", { context: { id: "1" } });
    const results = await Promise.all(
      Array.from({ length: 100 }, () => env.decrypt(sealed, { context: { id: "1" }, as: "text" })),
    );
    expect(results.every((r) => r === "together")).toBe(true);
    expect(kms.calls.unwrap).toBe(1);
    expect(env.cacheStats()).toMatchObject({ misses: 1, inflightJoins: 99, hits: 0, size: 1 });
    await env.decrypt(sealed, { context: { id: "1" } });
    expect(env.cacheStats().hits).toBe(1);
    expect(kms.calls.unwrap).toBe(1);
  });

  it("concurrent decrypts share a failing unwrap too, and the failure is not cached", async () => {
    const kms = countingProvider({ delayMs: 10 });
    const env = new Envelope({ encrypt: kms });
    const sealed = await env.encrypt("x");
    const failing = vi.spyOn(kms, "unwrap").mockRejectedValueOnce(new Error("KMS down"));
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => env.decrypt(sealed)));
    expect(failing).toHaveBeenCalledTimes(1);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      if (r.status === "rejected")
        expectEnvelopeError(r.reason, undefined, "ENVELOPE_UNWRAP_FAILED");
    }
    expect(env.cacheStats()).toMatchObject({ misses: 1, inflightJoins: 9, size: 0 });
    expect(await env.decrypt(sealed, { as: "text" })).toBe("x");
    expect(failing).toHaveBeenCalledTimes(2);
  });

  it("expires keys after the TTL: a new unwrap, and an eviction counted", async () => {
    const clock = manualClock();
    const kms = countingProvider();
    const env = new Envelope({ encrypt: kms, cache: { ttlMs: 60_000, clock } });
    const sealed = await env.encrypt("ttl");
    await env.decrypt(sealed);
    await clock.advance(59_000);
    await env.decrypt(sealed);
    expect(kms.calls.unwrap).toBe(1);
    expect(env.cacheStats()).toMatchObject({ hits: 1, evictions: 0 });
    await clock.advance(2_000);
    expect(await env.decrypt(sealed, { as: "text" })).toBe("ttl");
    expect(kms.calls.unwrap).toBe(2);
    expect(env.cacheStats()).toMatchObject({ misses: 2, evictions: 1, size: 1 });
  });

  it("does not extend the TTL on a hit", async () => {
    const clock = manualClock();
    const kms = countingProvider();
    const env = new Envelope({ encrypt: kms, cache: { ttlMs: 10_000, clock } });
    const sealed = await env.encrypt("x");
    await env.decrypt(sealed);
    for (let i = 0; i < 3; i++) {
      await clock.advance(3_000);
      await env.decrypt(sealed);
    }
    expect(kms.calls.unwrap).toBe(1);
    await clock.advance(3_000); // 12 s after the unwrap
    await env.decrypt(sealed);
    expect(kms.calls.unwrap).toBe(2);
  });

  it("stays within maxEntries, counting evictions", async () => {
    const kms = countingProvider();
    const env = new Envelope({ encrypt: kms, cache: { maxEntries: 3 } });
    const sealed = await Promise.all(Array.from({ length: 5 }, (_, i) => env.encrypt(`m${i}`)));
    for (const s of sealed) await env.decrypt(s);
    expect(env.cacheStats()).toMatchObject({ misses: 5, evictions: 2, size: 3 });
    // The least recently used (the first) was evicted: it needs the KMS again.
    await env.decrypt(sealed[0]!);
    expect(kms.calls.unwrap).toBe(6);
    await env.decrypt(sealed[4]!);
    expect(kms.calls.unwrap).toBe(6);
    expect(env.cacheStats().size).toBe(3);
  });

  it("zeroes data keys and message keys it evicts for size", async () => {
    const captured = captureCacheBuffers();
    const env = new Envelope({ encrypt: countingProvider(), cache: { maxEntries: 1 } });
    const first = await env.encrypt("first");
    // miss (load), then data-key hit (derives and remembers the message key), then message-key hit
    for (let i = 0; i < 3; i++) await env.decrypt(first);
    expect(captured).toHaveLength(2);
    expect(captured.some(isZero)).toBe(false);
    await env.decrypt(await env.encrypt("second"));
    expect(env.cacheStats().evictions).toBe(1);
    expect(captured.every(isZero)).toBe(true);
  });

  it("zeroes keys that expire", async () => {
    const clock = manualClock();
    const captured = captureCacheBuffers();
    const env = new Envelope({ encrypt: countingProvider(), cache: { ttlMs: 1000, clock } });
    const sealed = await env.encrypt("x");
    await env.decrypt(sealed);
    await env.decrypt(sealed);
    expect(captured.length).toBeGreaterThan(0);
    expect(captured.some(isZero)).toBe(false);
    await clock.advance(1_001);
    await env.decrypt(sealed);
    expect(captured.slice(0, 1).every(isZero)).toBe(true);
  });

  it("clearCaches zeroes and drops every cached key", async () => {
    const captured = captureCacheBuffers();
    const kms = countingProvider();
    const env = new Envelope({ encrypt: kms });
    const sealed = await Promise.all([env.encrypt("a"), env.encrypt("b")]);
    for (const s of [...sealed, ...sealed, ...sealed]) await env.decrypt(s);
    expect(captured).toHaveLength(4);
    expect(captured.some(isZero)).toBe(false);
    env.clearCaches();
    expect(captured.every(isZero)).toBe(true);
    expect(env.cacheStats().size).toBe(0);
    expect(env.cacheStats().evictions).toBe(0); // a clear is not an eviction
    await env.decrypt(sealed[0]!);
    expect(kms.calls.unwrap).toBe(3);
  });

  it("zeroes the buffer the provider returned from unwrap", async () => {
    for (const cache of [undefined, false] as const) {
      const kms = countingProvider();
      const env = new Envelope({ encrypt: kms, ...(cache === false ? { cache } : {}) });
      await env.decrypt(await env.encrypt("x"));
      await env.rewrap(await env.encrypt("y"), { to: localTarget() });
      expect(kms.unwrapped).toHaveLength(2);
      for (const buffer of kms.unwrapped)
        expect(isZero(buffer), `cache ${String(cache)}`).toBe(true);
    }
  });

  it("with the cache disabled, every decrypt unwraps and the counters stay zero", async () => {
    const kms = countingProvider();
    const env = new Envelope({ encrypt: kms, cache: false });
    const sealed = await env.encrypt("x");
    for (let i = 0; i < 4; i++) await env.decrypt(sealed);
    expect(kms.calls.unwrap).toBe(4);
    expect(env.cacheStats()).toEqual({
      hits: 0,
      misses: 0,
      evictions: 0,
      inflightJoins: 0,
      size: 0,
      dataKeysReused: 0,
    });
  });

  it("keys the cache by wrapped bytes: two envelopes, two unwraps", async () => {
    const kms = countingProvider();
    const env = new Envelope({ encrypt: kms });
    const [a, b] = await Promise.all([env.encrypt("same"), env.encrypt("same")]);
    await env.decrypt(a);
    await env.decrypt(b);
    expect(kms.calls.unwrap).toBe(2);
    expect(env.cacheStats().size).toBe(2);
  });

  it("keys the cache by the provider's kmsContextKey: another KMS context is a separate entry", async () => {
    const kms = countingProvider({ kmsContext: (c) => c.tenant ?? "" });
    const env = new Envelope({ encrypt: kms });
    const sealed = await env.encrypt("t", { context: { tenant: "a", id: "1" } });
    // miss, data-key hit, message-key hit
    for (let i = 0; i < 3; i++) await env.decrypt(sealed, { context: { tenant: "a", id: "1" } });
    expect(kms.calls.unwrap).toBe(1);
    // A real KMS refuses the other tenant's context; the cache must not answer for it.
    const error = await rejection(env.decrypt(sealed, { context: { tenant: "b", id: "1" } }));
    expectEnvelopeError(error, undefined, "ENVELOPE_UNWRAP_FAILED");
    expect(kms.unwrapContexts).toEqual(["a", "b"]);
  });

  it("a remembered message key opens only an envelope that still carries its entry", async () => {
    const a = countingProvider();
    const b = countingProvider();
    const env = new Envelope({ encrypt: a });
    const sealed = await env.encrypt("moved");
    for (let i = 0; i < 3; i++) await env.decrypt(sealed);
    expect(env.cacheStats()).toMatchObject({ hits: 2, misses: 1 });
    // Same message id, commitment and body, but now wrapped only under b, which env lacks.
    const moved = await new Envelope({ encrypt: b, decrypt: [a] }).rewrap(sealed);
    expect(messageIdOf(moved)).toBe(messageIdOf(sealed));
    const error = await rejection(env.decrypt(moved));
    expectEnvelopeError(error, undefined, "ENVELOPE_NO_MATCHING_KEY");
    expect((await env.decrypt(sealed)).toString()).toBe("moved");
  });

  it("a remembered message key expires with its data key", async () => {
    const clock = manualClock();
    const kms = countingProvider();
    const env = new Envelope({ encrypt: kms, cache: { ttlMs: 1000, clock } });
    const sealed = await env.encrypt("x");
    for (let i = 0; i < 3; i++) await env.decrypt(sealed);
    expect(kms.calls.unwrap).toBe(1);
    await clock.advance(1_001);
    await env.decrypt(sealed);
    expect(kms.calls.unwrap).toBe(2);
  });

  it("without kmsContextKey, the context is not part of the cache key (the AAD still binds it)", async () => {
    const kms = countingProvider();
    const env = new Envelope({ encrypt: kms });
    const sealed = await env.encrypt("t", { context: { id: "1" } });
    await env.decrypt(sealed, { context: { id: "1" } });
    const error = await rejection(env.decrypt(sealed, { context: { id: "2" } }));
    expectEnvelopeError(error, undefined, "ENVELOPE_DECRYPT_FAILED");
    expect(kms.calls.unwrap).toBe(1);
  });

  it("keys the cache by provider and key reference", async () => {
    // Same master key, two key refs: identical wrapped bytes must still be two entries.
    const master = randomBytes(32);
    const v1 = countingProvider({ keyRef: "v1", masterKey: master });
    const v2 = countingProvider({ keyRef: "v2", masterKey: master });
    const env = new Envelope({ encrypt: v1, decrypt: [v2] });
    const sealed = await env.encrypt("x");
    const relabelled = await new Envelope({ encrypt: v1 }).rewrap(sealed, { to: v2 });
    expect(Buffer.from(decodeEnvelope(relabelled).entries[0]!.wrapped)).toEqual(
      Buffer.from(decodeEnvelope(sealed).entries[0]!.wrapped),
    );
    v1.reset();
    await env.decrypt(sealed);
    await env.decrypt(relabelled);
    expect(v1.calls.unwrap + v2.calls.unwrap).toBe(2);
  });
});

describe("UnwrapCache on its own", () => {
  const key = (n: number) => `k${n}`;
  const loaderOf = (fill: number) => async () => Buffer.alloc(32, fill);

  it("load returns a private copy and zeroes the loader's buffer", async () => {
    const cache = new UnwrapCache({ maxEntries: 2 });
    const returned = Buffer.alloc(32, 7);
    const { dataKey, joined } = await cache.load(key(1), async () => returned);
    expect(joined).toBe(false);
    expect(isZero(returned)).toBe(true);
    expect(dataKey.equals(Buffer.alloc(32, 7))).toBe(true);
    dataKey.fill(0);
    expect(cache.peek(key(1))?.equals(Buffer.alloc(32, 7))).toBe(true);
  });

  it("zeroes on eviction, expiry and clear, counting only evictions and expiries", async () => {
    const clock = manualClock();
    const cache = new UnwrapCache({ maxEntries: 2, ttlMs: 1000, clock });
    for (const n of [1, 2]) await cache.load(key(n), loaderOf(n));
    const one = cache.peek(key(1))!;
    const two = cache.peek(key(2))!;
    await cache.load(key(3), loaderOf(3)); // evicts k1 (least recently set)
    expect(isZero(one)).toBe(true);
    expect(isZero(two)).toBe(false);
    expect(cache.stats()).toMatchObject({ evictions: 1, size: 2 });
    await clock.advance(1001);
    expect(cache.peek(key(2))).toBeUndefined();
    expect(isZero(two)).toBe(true);
    expect(cache.stats().evictions).toBeGreaterThanOrEqual(2);
    await cache.load(key(4), loaderOf(4));
    const four = cache.peek(key(4))!;
    const before = cache.stats().evictions;
    cache.clear();
    expect(isZero(four)).toBe(true);
    expect(cache.stats()).toMatchObject({ size: 0, evictions: before });
  });

  it("zeroes remembered message keys with their data key, and bounds them per data key", async () => {
    const cache = new UnwrapCache({ maxEntries: 1 });
    await cache.load(key(1), loaderOf(1));
    const messageKeys = Array.from({ length: 20 }, (_, i) => Buffer.alloc(32, i + 1));
    messageKeys.forEach((m, i) => {
      cache.rememberMessageKey(key(1), `m${i}`, m);
    });
    // Only the most recent 16 are kept; older ones are zeroed when dropped.
    expect(messageKeys.slice(0, 4).every(isZero)).toBe(true);
    expect(cache.peekMessageKey("m19")?.key.equals(Buffer.alloc(32, 20))).toBe(true);
    expect(cache.peekMessageKey("m0")).toBeUndefined();
    await cache.load(key(2), loaderOf(2));
    expect(messageKeys.every(isZero)).toBe(true);
    // Remembering under a key that is not cached takes ownership and zeroes it.
    const orphan = Buffer.alloc(32, 9);
    cache.rememberMessageKey(key(1), "m", orphan);
    expect(isZero(orphan)).toBe(true);
  });

  it.each([
    [{ maxEntries: 0 }, "cache.maxEntries"],
    [{ maxEntries: 1.5 }, "cache.maxEntries"],
    [{ ttlMs: 0 }, "cache.ttlMs"],
    [{ ttlMs: Number.NaN }, "cache.ttlMs"],
  ])("rejects %j naming %s", (options, field) => {
    let error: unknown;
    try {
      new UnwrapCache(options);
    } catch (e) {
      error = e;
    }
    expect(expectEnvelopeError(error, undefined, "ENVELOPE_BAD_CONFIG").message).toContain(field);
  });
});

describe("data-key reuse on encrypt", () => {
  const wrappedOf = (sealed: Buffer) =>
    Buffer.from(decodeEnvelope(sealed).entries[0]!.wrapped).toString("hex");

  async function encryptMany(
    env: Envelope,
    count: number,
    context?: (i: number) => EncryptionContext,
  ) {
    const out: Buffer[] = [];
    for (let i = 0; i < count; i++)
      out.push(await env.encrypt(`value ${i}`, { context: context?.(i) ?? {} }));
    return out;
  }

  it.each([
    ["generateDataKey", true],
    ["wrap", false],
  ] as const)("maxMessages 3: 7 encrypts make 3 %s calls", async (_, generate) => {
    const kms = countingProvider({ generateDataKey: generate });
    const env = new Envelope({ encrypt: kms, dataKeyReuse: { maxMessages: 3 } });
    const sealed = await encryptMany(env, 7);
    expect(generate ? kms.calls.generateDataKey : kms.calls.wrap).toBe(3);
    expect(env.cacheStats().dataKeysReused).toBe(4);
    // Groups of 3, 3, 1 share a wrapped key; every message has its own id.
    const groups = sealed.map(wrappedOf);
    expect(new Set(groups).size).toBe(3);
    expect(groups[0]).toBe(groups[2]);
    expect(groups[3]).not.toBe(groups[2]);
    expect(new Set(sealed.map(messageIdOf)).size).toBe(7);
    for (const [i, s] of sealed.entries())
      expect(await env.decrypt(s, { as: "text" })).toBe(`value ${i}`);
    expect(kms.calls.unwrap).toBe(3);
  });

  it("core zeroes the data keys generateDataKey returned", async () => {
    const kms = countingProvider({ generateDataKey: true });
    const env = new Envelope({ encrypt: kms, dataKeyReuse: { maxMessages: 2 } });
    await encryptMany(env, 4);
    expect(kms.generated).toHaveLength(2);
    expect(kms.generated.every(isZero)).toBe(true);
  });

  it("maxBytes bounds the plaintext under one data key; a value above it never reuses", async () => {
    const kms = countingProvider({ generateDataKey: true });
    const env = new Envelope({ encrypt: kms, dataKeyReuse: { maxBytes: 10 } });
    for (let i = 0; i < 4; i++) await env.encrypt("abcd"); // 4, 8 | 4, 8
    expect(kms.calls.generateDataKey).toBe(2);
    await env.encrypt("ab"); // 8 + 2 = 10: exactly at the limit, still reused
    expect(kms.calls.generateDataKey).toBe(2);
    await env.encrypt("0123456789a"); // 11 bytes: a fresh key, not kept for reuse
    await env.encrypt("0123456789a");
    expect(kms.calls.generateDataKey).toBe(4);
  });

  it("maxAgeMs retires a data key by age", async () => {
    let now = 5_000_000;
    vi.spyOn(Date, "now").mockImplementation(() => now);
    const kms = countingProvider({ generateDataKey: true });
    const env = new Envelope({ encrypt: kms, dataKeyReuse: { maxAgeMs: 1000 } });
    await env.encrypt("a");
    now += 999;
    await env.encrypt("b");
    expect(kms.calls.generateDataKey).toBe(1);
    now += 1;
    await env.encrypt("c");
    expect(kms.calls.generateDataKey).toBe(2);
  });

  it("different kmsContextKey values never share a data key", async () => {
    const kms = countingProvider({ generateDataKey: true, kmsContext: (c) => c.tenant ?? "" });
    const env = new Envelope({ encrypt: kms, dataKeyReuse: { maxMessages: 100 } });
    const tenants = ["a", "b", "a", "b", "a"];
    const sealed = await encryptMany(env, tenants.length, (i) => ({
      tenant: tenants[i]!,
      id: String(i),
    }));
    expect(kms.calls.generateDataKey).toBe(2);
    const wrapped = sealed.map(wrappedOf);
    expect(wrapped[0]).toBe(wrapped[2]);
    expect(wrapped[1]).toBe(wrapped[3]);
    expect(wrapped[0]).not.toBe(wrapped[1]);
    for (const [i, s] of sealed.entries()) {
      expect(
        await env.decrypt(s, { context: { tenant: tenants[i]!, id: String(i) }, as: "text" }),
      ).toBe(`value ${i}`);
    }
  });

  it("without kmsContextKey, contexts share a data key but each stays bound to its own", async () => {
    const kms = countingProvider({ generateDataKey: true });
    const env = new Envelope({ encrypt: kms, dataKeyReuse: {} });
    const sealed = await encryptMany(env, 3, (i) => ({ id: String(i) }));
    expect(kms.calls.generateDataKey).toBe(1);
    const error = await rejection(env.decrypt(sealed[0]!, { context: { id: "1" } }));
    expectEnvelopeError(error, undefined, "ENVELOPE_DECRYPT_FAILED");
    expect(await env.decrypt(sealed[1]!, { context: { id: "1" }, as: "text" })).toBe("value 1");
  });

  it("clearCaches drops reusable data keys", async () => {
    const kms = countingProvider({ generateDataKey: true });
    const env = new Envelope({ encrypt: kms, dataKeyReuse: {} });
    await env.encrypt("a");
    await env.encrypt("b");
    env.clearCaches();
    await env.encrypt("c");
    expect(kms.calls.generateDataKey).toBe(2);
  });

  it("multi-wrap reuse wraps under every key once per data key", async () => {
    const a = countingProvider({ id: "kms-a" });
    const b = countingProvider({ id: "kms-b" });
    const env = new Envelope({ encrypt: [a, b], dataKeyReuse: { maxMessages: 5 } });
    const sealed = await encryptMany(env, 5);
    expect([a.calls.wrap, b.calls.wrap]).toEqual([1, 1]);
    for (const only of [a, b]) {
      const reader = new Envelope({ encrypt: only });
      expect(await reader.decrypt(sealed[4]!, { as: "text" })).toBe("value 4");
    }
  });

  it.each([
    [{ maxMessages: 0 }, "dataKeyReuse.maxMessages"],
    [{ maxMessages: 2 ** 32 + 1 }, "dataKeyReuse.maxMessages"],
    [{ maxBytes: -1 }, "dataKeyReuse.maxBytes"],
    [{ maxAgeMs: 86_400_001 }, "dataKeyReuse.maxAgeMs"],
    [{ maxEntries: 0.5 }, "dataKeyReuse.maxEntries"],
  ])("rejects %j naming %s", (options, field) => {
    let error: unknown;
    try {
      new Envelope({ encrypt: countingProvider(), dataKeyReuse: options });
    } catch (e) {
      error = e;
    }
    const e = expectEnvelopeError(error, undefined, "ENVELOPE_BAD_CONFIG");
    expect(e.message).toContain(field);
    expect(e.details.field).toBe(field);
  });
});

/** A second provider to rewrap to (so rewrap has to unwrap locally). */
function localTarget(): KeyProvider {
  return countingProvider({ id: "target" });
}
