import { ConfigError, Envelope, UnwrapCache } from "@envelope/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DataKeyCache } from "../src/cache/data-key-cache.js";
import { expectEnvelopeError, rejection, thrown } from "./support/codes.js";
import { countingProvider, isZero } from "./support/counting-provider.js";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const context = { table: "users", column: "email", id: "42" };
const fakeTimers = () =>
  vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "setTimeout", "clearTimeout"] });

/** Every buffer a method of `proto` handed out (the cache's own buffers, by contract). */
function handedOut<T extends object>(proto: T, method: keyof T, pick: (r: never) => unknown) {
  const seen: Buffer[] = [];
  const original = proto[method] as (...args: unknown[]) => unknown;
  vi.spyOn(proto, method as never).mockImplementation(function (this: unknown, ...args: never[]) {
    const result = original.apply(this, args);
    const buffer = result === undefined ? undefined : pick(result as never);
    if (buffer instanceof Buffer) seen.push(buffer);
    return result;
  } as never);
  return seen;
}

describe("Envelope.close", () => {
  it("stops the unwrap cache's sweep timer and the data-key cache's", async () => {
    fakeTimers();
    const plain = new Envelope({ encrypt: countingProvider() });
    expect(vi.getTimerCount()).toBe(1);
    await plain.close();
    expect(vi.getTimerCount()).toBe(0);

    const reusing = new Envelope({ encrypt: countingProvider(), dataKeyReuse: {} });
    expect(vi.getTimerCount()).toBe(2);
    await reusing[Symbol.asyncDispose]();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("zeroes every cached data key and remembered message key", async () => {
    const dataKeys = handedOut(UnwrapCache.prototype, "peek", (b: Buffer) => b);
    const messageKeys = handedOut(
      UnwrapCache.prototype,
      "peekMessageKey",
      (r: { key: Buffer }) => r.key,
    );
    const envelope = new Envelope({ encrypt: countingProvider() });
    const sealed = await Promise.all(
      ["a@example.com", "b@example.com"].map((v) => envelope.encrypt(v, { context })),
    );
    // First read unwraps and caches; the second derives and remembers the message key;
    // the third is served from the remembered key.
    for (let i = 0; i < 3; i++) for (const s of sealed) await envelope.decrypt(s, { context });
    expect(dataKeys.length).toBeGreaterThan(0);
    expect(messageKeys.length).toBeGreaterThan(0);
    expect([...dataKeys, ...messageKeys].some(isZero)).toBe(false);

    await envelope.close();
    expect(dataKeys.every(isZero)).toBe(true);
    expect(messageKeys.every(isZero)).toBe(true);
    expect(envelope.cacheStats().size).toBe(0);
  });

  it("zeroes reused data keys", async () => {
    const reused = handedOut(DataKeyCache.prototype, "take", (m: { dataKey: Buffer }) => m.dataKey);
    const envelope = new Envelope({ encrypt: countingProvider(), dataKeyReuse: {} });
    await envelope.encrypt("one", { context });
    await envelope.encrypt("two", { context });
    expect(reused.length).toBe(1);
    expect(isZero(reused[0]!)).toBe(false);
    await envelope[Symbol.asyncDispose]();
    expect(isZero(reused[0]!)).toBe(true);
  });

  it("refuses every later call with ENVELOPE_CLOSED, and may be called twice", async () => {
    const envelope = new Envelope({ encrypt: countingProvider() });
    const sealed = await envelope.encrypt("x", { context });
    const materials = await envelope.generateDataKey({ context });
    await envelope.close();
    await envelope.close();
    const calls: Promise<unknown>[] = [
      envelope.encrypt("y", { context }),
      envelope.decrypt(sealed, { context }),
      envelope.rewrap(sealed, { context }),
      envelope.generateDataKey({ context }),
      envelope.unwrapDataKey(sealed, { context }),
    ];
    for (const call of calls) {
      expectEnvelopeError(await rejection(call), ConfigError, "ENVELOPE_CLOSED");
    }
    const sync = thrown(() => envelope.encryptWithDataKey(materials, "z", { context }));
    expectEnvelopeError(sync, ConfigError, "ENVELOPE_CLOSED");
    materials.dataKey.fill(0);
  });
});
