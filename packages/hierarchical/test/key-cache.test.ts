import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { IntermediateKeyCache } from "../src/key-cache.js";

const isZero = (b: Uint8Array) => b.every((x) => x === 0);

function manualClock() {
  let now = 1_700_000_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe("IntermediateKeyCache (core's zeroing secret-key cache)", () => {
  it("zeroes the least recently used key when the cache is full", () => {
    const cache = new IntermediateKeyCache({ maxEntries: 2 }, Date.now);
    cache.set("ik-a", randomBytes(32));
    cache.set("ik-b", randomBytes(32));
    const a = cache.peek("ik-a")!;
    cache.peek("ik-b");
    cache.set("ik-c", randomBytes(32));
    expect(isZero(a)).toBe(true);
    expect(cache.peek("ik-a")).toBeUndefined();
    expect(cache.size).toBe(2);
    expect(cache.counters.evictions).toBe(1);
  });

  it("zeroes a key older than ttlMs (age from load, not from last use)", () => {
    const clock = manualClock();
    const cache = new IntermediateKeyCache({ ttlMs: 1000 }, clock.now);
    cache.set("ik-a", randomBytes(32));
    const a = cache.peek("ik-a")!;
    clock.advance(600);
    expect(cache.peek("ik-a")).toBe(a);
    clock.advance(600);
    expect(cache.peek("ik-a")).toBeUndefined();
    expect(isZero(a)).toBe(true);
  });

  it("loads a missing key once for concurrent callers, each with a copy of its own", async () => {
    const cache = new IntermediateKeyCache({}, Date.now);
    const secret = randomBytes(32);
    const expected = Buffer.from(secret);
    let loads = 0;
    const loader = async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 5));
      return secret;
    };
    const [x, y] = await Promise.all([cache.load("ik-a", loader), cache.load("ik-a", loader)]);
    expect(loads).toBe(1);
    expect(x).not.toBe(y);
    expect(x.equals(expected) && y.equals(expected)).toBe(true);
    expect(cache.counters).toMatchObject({ misses: 1, inflightJoins: 1 });
    const cached = cache.peek("ik-a")!;
    cache.clear();
    expect(isZero(cached)).toBe(true);
  });
});
