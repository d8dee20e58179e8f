import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SecretKeyCache } from "../src/cache/secret-key-cache.js";
import { isZero } from "./support/counting-provider.js";

afterEach(() => {
  vi.useRealTimers();
});

/** A clock that moves only when told to. */
function manualClock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const key = () => randomBytes(32);

describe("SecretKeyCache: every key that leaves is zeroed", () => {
  it("keeps a private copy: the caller's buffer is not the cached one", () => {
    const cache = new SecretKeyCache({ maxEntries: 2 });
    const mine = key();
    const entry = cache.set("a", mine, undefined)!;
    expect(entry.key).not.toBe(mine);
    expect(entry.key.equals(mine)).toBe(true);
    mine.fill(0);
    expect(isZero(cache.get("a")!.key)).toBe(false);
  });

  it("zeroes the least recently used key when a new one pushes it out, and counts it", () => {
    const cache = new SecretKeyCache({ maxEntries: 2 });
    const a = cache.set("a", key(), undefined)!.key;
    cache.set("b", key(), undefined);
    cache.get("a"); // a is now more recent than b
    const b = cache.get("b")!.key;
    cache.get("a");
    cache.set("c", key(), undefined);
    expect(isZero(b)).toBe(true);
    expect(isZero(a)).toBe(false);
    expect(cache.counters.evictions).toBe(1);
  });

  it("zeroes a key that expired when it is next looked up, and serves it no more", () => {
    const clock = manualClock();
    const cache = new SecretKeyCache({ maxEntries: 10, ttlMs: 1000, clock });
    const a = cache.set("a", key(), undefined)!.key;
    clock.advance(999);
    expect(cache.get("a")?.key).toBe(a);
    clock.advance(2);
    expect(cache.get("a")).toBeUndefined();
    expect(isZero(a)).toBe(true);
    expect(cache.counters.evictions).toBe(1);
  });

  it("zeroes a replaced, a deleted and every cleared key", () => {
    const cache = new SecretKeyCache({ maxEntries: 10 });
    const first = cache.set("a", key(), undefined)!.key;
    const second = cache.set("a", key(), undefined)!.key;
    expect(isZero(first)).toBe(true);
    cache.delete("a");
    expect(isZero(second)).toBe(true);
    const rest = ["x", "y", "z"].map((id) => cache.set(id, key(), undefined)!.key);
    cache.clear();
    expect(rest.every(isZero)).toBe(true);
    expect(cache.size).toBe(0);
  });

  it("tells the owner after the key left, already zeroed", () => {
    const seen: [string, string, boolean][] = [];
    const cache = new SecretKeyCache<{ note: string }>({
      maxEntries: 1,
      onLeave: (entry, id, reason) => seen.push([id, reason, isZero(entry.key)]),
    });
    cache.set("a", key(), { note: "first" });
    cache.set("b", key(), { note: "second" });
    cache.delete("b");
    expect(seen).toEqual([
      ["a", "evict", true],
      ["b", "delete", true],
    ]);
  });
});

describe("SecretKeyCache: single flight", () => {
  it("concurrent misses share one load; each caller gets its own copy; the loader's buffer is zeroed", async () => {
    const cache = new SecretKeyCache({ maxEntries: 10 });
    const loaded = key();
    const value = Buffer.from(loaded);
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const loader = async () => {
      calls++;
      await gate;
      return loaded;
    };
    const all = Promise.all([1, 2, 3].map(() => cache.load("a", loader, () => undefined)));
    release();
    const results = await all;
    expect(calls).toBe(1);
    expect(results.map((r) => r.joined)).toEqual([false, true, true]);
    expect(results.every((r) => r.key.equals(value))).toBe(true);
    const buffers = new Set([...results.map((r) => r.key), cache.get("a")!.key]);
    expect(buffers.size).toBe(4);
    expect(isZero(loaded)).toBe(true);
    expect(cache.counters).toMatchObject({ misses: 1, inflightJoins: 2 });
  });

  it("a failed load is thrown to every waiter and caches nothing", async () => {
    const cache = new SecretKeyCache({ maxEntries: 10 });
    const loader = async (): Promise<Uint8Array> => {
      throw new Error("KMS down");
    };
    const results = await Promise.allSettled([
      cache.load("a", loader, () => undefined),
      cache.load("a", loader, () => undefined),
    ]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(cache.size).toBe(0);
  });
});

describe("SecretKeyCache: close", () => {
  it("the sweep zeroes expired keys without a lookup; close stops its timer and zeroes the rest", () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "setTimeout", "clearTimeout"] });
    const clock = manualClock();
    const cache = new SecretKeyCache({ maxEntries: 10, ttlMs: 4000, clock, sweepMs: 1000 });
    expect(vi.getTimerCount()).toBe(1);
    const old = cache.set("old", key(), undefined)!.key;
    clock.advance(3000);
    const recent = cache.set("recent", key(), undefined)!.key;
    clock.advance(1500);
    vi.advanceTimersByTime(1000);
    expect(isZero(old)).toBe(true);
    expect(isZero(recent)).toBe(false);

    cache.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(isZero(recent)).toBe(true);
    expect(cache.size).toBe(0);
    // Closed: nothing is stored any more.
    expect(cache.set("late", key(), undefined)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("starts no timer without a TTL or a sweep interval", () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "setTimeout", "clearTimeout"] });
    new SecretKeyCache({ maxEntries: 10, ttlMs: 1000 }).set("a", key(), undefined);
    new SecretKeyCache({ maxEntries: 10, sweepMs: 1000 }).set("a", key(), undefined);
    expect(vi.getTimerCount()).toBe(0);
  });
});
