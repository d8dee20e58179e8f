import { randomBytes } from "node:crypto";
import {
  DecryptionError,
  Envelope,
  type EnvelopeError,
  type KeyProvider,
  localAesProvider,
  ProviderError,
  providerError,
  type RetryTarget,
  type WrappedKey,
  withRetry,
} from "@envelope/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { expectEnvelopeError, outcome, rejection } from "./support/codes.js";
import { countingProvider, isZero } from "./support/counting-provider.js";

afterEach(() => {
  vi.restoreAllMocks();
});

/** A counting provider whose wrap result is passed through `mangle`. */
function wrapping(mangle: (entry: WrappedKey) => unknown): KeyProvider {
  const base = countingProvider({ id: "fake-kms", keyRef: "k1" });
  return {
    ...base,
    wrap: async (dataKey, request) => mangle(await base.wrap(dataKey, request)) as WrappedKey,
  };
}

const contract = (error: unknown) =>
  expectEnvelopeError(error, ProviderError, "ENVELOPE_PROVIDER_CONTRACT");

describe("the core checks what providers return", () => {
  const badEntries: [string, (e: WrappedKey) => unknown][] = [
    ["a wrong provider id", (e) => ({ ...e, providerId: "other-kms" })],
    ["an invalid provider id", (e) => ({ ...e, providerId: "Fake KMS" })],
    ["an empty wrapped key", (e) => ({ ...e, wrapped: new Uint8Array(0) })],
    ["a wrapped key over 4096 bytes", (e) => ({ ...e, wrapped: new Uint8Array(4097) })],
    ["a wrapped key that is not bytes", (e) => ({ ...e, wrapped: "AAAA" })],
    ["an empty key ref", (e) => ({ ...e, keyRef: "" })],
    ["a key ref over 2048 bytes", (e) => ({ ...e, keyRef: "k".repeat(2049) })],
    [
      "a key ref over 2048 UTF-8 bytes but few characters",
      (e) => ({ ...e, keyRef: "€".repeat(683) }),
    ],
    ["nothing", () => undefined],
    ["a string", () => "wrapped"],
  ];

  it.each(badEntries)("encrypt refuses %s from wrap, and returns nothing", async (_, mangle) => {
    const env = new Envelope({ encrypt: wrapping(mangle) });
    contract(await rejection(env.encrypt("must not be sealed")));
  });

  it.each(badEntries)("multi-wrap refuses %s from a secondary provider", async (_, mangle) => {
    const env = new Envelope({ encrypt: [countingProvider(), wrapping(mangle)] });
    contract(await rejection(env.encrypt("x")));
  });

  it.each(badEntries)("rewrap refuses %s from the target", async (_, mangle) => {
    const source = countingProvider();
    const sealed = await new Envelope({ encrypt: source }).encrypt("x");
    const env = new Envelope({ encrypt: source });
    contract(await rejection(env.rewrap(sealed, { to: wrapping(mangle) })));
  });

  it("accepts a key ref of exactly 2048 bytes", async () => {
    const env = new Envelope({ encrypt: wrapping((e) => ({ ...e, keyRef: "k".repeat(2048) })) });
    expect((await env.encrypt("x")).length).toBeGreaterThan(2048);
  });

  it("generateDataKey returning a 31-byte key is a contract error; nothing is sealed", async () => {
    const kms = countingProvider({ generateDataKey: true });
    const env = new Envelope({ encrypt: kms });
    vi.spyOn(kms as Required<KeyProvider>, "generateDataKey").mockResolvedValue({
      dataKey: randomBytes(31),
      entry: { providerId: "counting", keyRef: kms.keyRef, wrapped: randomBytes(40) },
    });
    contract(await rejection(env.encrypt("x")));
  });

  it("generateDataKey returning a non-buffer key or nothing is a contract error", async () => {
    for (const result of [undefined, { dataKey: "0".repeat(32), entry: {} }, { entry: {} }]) {
      const kms = countingProvider({ generateDataKey: true });
      vi.spyOn(kms as Required<KeyProvider>, "generateDataKey").mockResolvedValue(result as never);
      contract(await rejection(new Envelope({ encrypt: kms }).encrypt("x")));
    }
  });

  it("generateDataKey returning a bad entry is refused, and the generated key is zeroed", async () => {
    const kms = countingProvider({ generateDataKey: true });
    const original = kms.generateDataKey!.bind(kms);
    vi.spyOn(kms as Required<KeyProvider>, "generateDataKey").mockImplementation(
      async (request) => {
        const generated = await original(request);
        return { ...generated, entry: { ...generated.entry, providerId: "someone-else" } };
      },
    );
    contract(await rejection(new Envelope({ encrypt: kms }).encrypt("x")));
    expect(kms.generated).toHaveLength(1);
    expect(isZero(kms.generated[0]!)).toBe(true);
  });

  it.each([
    ["31 bytes", () => randomBytes(31)],
    ["33 bytes", () => randomBytes(33)],
    ["an empty buffer", () => new Uint8Array(0)],
    ["a string", () => "k".repeat(32)],
    ["nothing", () => undefined],
  ])(
    "unwrap returning %s is refused as a bad entry; no plaintext is returned",
    async (_, result) => {
      const kms = countingProvider();
      const sealed = await new Envelope({ encrypt: kms }).encrypt("secret");
      vi.spyOn(kms, "unwrap").mockImplementation(async () => result() as Uint8Array);
      for (const cache of [undefined, false] as const) {
        const env = new Envelope({ encrypt: kms, ...(cache === false ? { cache } : {}) });
        const error = await rejection(env.decrypt(sealed));
        expectEnvelopeError(error, ProviderError, "ENVELOPE_UNWRAP_FAILED");
        expect(env.cacheStats().size).toBe(0);
      }
    },
  );

  it("a wrong 32-byte key from unwrap is caught by the key commitment", async () => {
    const kms = countingProvider();
    const sealed = await new Envelope({ encrypt: kms }).encrypt("secret");
    vi.spyOn(kms, "unwrap").mockResolvedValue(randomBytes(32));
    const error = await rejection(new Envelope({ encrypt: kms }).decrypt(sealed));
    expectEnvelopeError(error, DecryptionError, "ENVELOPE_COMMITMENT_MISMATCH");
  });

  it("an untyped error from unwrap becomes ENVELOPE_UNWRAP_FAILED with the cause", async () => {
    const kms = countingProvider();
    const sealed = await new Envelope({ encrypt: kms }).encrypt("x");
    const cause = new TypeError("socket hang up");
    vi.spyOn(kms, "unwrap").mockRejectedValue(cause);
    const error = await rejection(new Envelope({ encrypt: kms }).decrypt(sealed));
    expect(expectEnvelopeError(error, ProviderError, "ENVELOPE_UNWRAP_FAILED").cause).toBe(cause);
  });

  it("an untyped error from wrap becomes ENVELOPE_KMS_ERROR naming the provider", async () => {
    const kms = countingProvider({ id: "fake-kms", keyRef: "k1" });
    const cause = new RangeError("bad thing");
    vi.spyOn(kms, "wrap").mockRejectedValue(cause);
    const error = await rejection(new Envelope({ encrypt: kms }).encrypt("x"));
    const e = expectEnvelopeError(error, ProviderError, "ENVELOPE_KMS_ERROR");
    expect(e.cause).toBe(cause);
    expect(e.message).toContain("fake-kms");
    expect(e.details).toMatchObject({ provider: "fake-kms", keyRef: "k1" });
  });

  it("a typed provider error passes through unchanged", async () => {
    const kms = countingProvider();
    const typed = new ProviderError("ENVELOPE_KMS_ACCESS_DENIED", "no kms:Encrypt permission");
    vi.spyOn(kms, "wrap").mockRejectedValue(typed);
    expect(await rejection(new Envelope({ encrypt: kms }).encrypt("x"))).toBe(typed);
  });

  it("decrypt prefers a provider failure over the commitment failure of another entry", async () => {
    // Entry 1's provider is down; entry 2 unwraps to a wrong key. The operator should
    // hear about the outage, which is what they can fix.
    const down = countingProvider({ id: "kms-a" });
    const wrong = countingProvider({ id: "kms-b" });
    const sealed = await new Envelope({ encrypt: [down, wrong] }).encrypt("x");
    const denied = new ProviderError("ENVELOPE_KMS_ACCESS_DENIED", "denied");
    vi.spyOn(down, "unwrap").mockRejectedValue(denied);
    vi.spyOn(wrong, "unwrap").mockResolvedValue(randomBytes(32));
    // Its code and class lead; since both entries failed, the message lists each one tried.
    const error = await rejection(new Envelope({ encrypt: [down, wrong] }).decrypt(sealed));
    expectEnvelopeError(error, ProviderError, "ENVELOPE_KMS_ACCESS_DENIED");
    expect((error as Error).cause).toBe(denied);
    expect((error as Error).message).toMatch(
      /kms-a .*ENVELOPE_KMS_ACCESS_DENIED; kms-b .*ENVELOPE_COMMITMENT_MISMATCH/,
    );
  });

  it("a provider that does not handle an entry is never asked to unwrap it", async () => {
    const a = localAesProvider({ keys: randomBytes(32) });
    const sealed = await new Envelope({ encrypt: a }).encrypt("x");
    const other = countingProvider({ id: "local-aes" });
    const error = await rejection(new Envelope({ encrypt: other }).decrypt(sealed));
    expectEnvelopeError(error, DecryptionError, "ENVELOPE_NO_MATCHING_KEY");
    expect(other.calls.unwrap).toBe(0);
  });
});

describe("withRetry", () => {
  const target: RetryTarget = { provider: "fake-kms", keyRef: "k1", operation: "Decrypt" };
  const classify = (error: unknown): EnvelopeError => {
    const name = (error as Error).name;
    if (name === "ThrottlingException")
      return providerError("ENVELOPE_KMS_THROTTLED", target, "throttled", "Slow down.", error);
    if (name === "AccessDeniedException")
      return providerError(
        "ENVELOPE_KMS_ACCESS_DENIED",
        target,
        "access denied",
        "Grant kms:Decrypt.",
        error,
      );
    if (name === "ServiceUnavailable")
      return providerError(
        "ENVELOPE_KMS_UNAVAILABLE",
        target,
        "unavailable",
        "Retry later.",
        error,
      );
    return providerError("ENVELOPE_KMS_ERROR", target, "failed", "See cause.", error);
  };
  const vendorError = (name: string) => Object.assign(new Error(name), { name });
  const fast = { baseDelayMs: 1, maxDelayMs: 5, timeoutMs: 1000 };

  it("returns the first success without retrying", async () => {
    const call = vi.fn(async () => "ok");
    expect(await withRetry(target, call, classify, fast)).toBe("ok");
    expect(call).toHaveBeenCalledTimes(1);
  });

  it("retries throttling and succeeds within the bound", async () => {
    let n = 0;
    const call = vi.fn(async () => {
      if (++n < 3) throw vendorError("ThrottlingException");
      return "ok";
    });
    expect(await withRetry(target, call, classify, { ...fast, attempts: 3 })).toBe("ok");
    expect(call).toHaveBeenCalledTimes(3);
  });

  it("gives up after `attempts` with the typed error, the attempt count and the cause", async () => {
    const last = vendorError("ServiceUnavailable");
    const call = vi.fn(async () => {
      throw last;
    });
    const error = await rejection(withRetry(target, call, classify, { ...fast, attempts: 4 }));
    const e = expectEnvelopeError(error, ProviderError, "ENVELOPE_KMS_UNAVAILABLE");
    expect(call).toHaveBeenCalledTimes(4);
    expect(e.details).toMatchObject({ attempts: 4, provider: "fake-kms", keyRef: "k1" });
    expect(e.message).toContain("4 attempt");
    expect(e.cause).toBe(last);
  });

  it("the advice after the last attempt fits the failure: quota for throttling, the endpoint for timeouts and outages", async () => {
    const fails = (name: string) => async () => {
      throw vendorError(name);
    };
    const throttled = await rejection(
      withRetry(target, fails("ThrottlingException"), classify, fast),
    );
    expect((throttled as Error).message).toContain("quota");
    const down = await rejection(withRetry(target, fails("ServiceUnavailable"), classify, fast));
    expect((down as Error).message).not.toContain("quota");
    expect((down as Error).message).toContain("endpoint");
    const hung = await rejection(
      withRetry(target, () => new Promise<never>(() => {}), classify, {
        ...fast,
        timeoutMs: 20,
        attempts: 2,
      }),
    );
    expectEnvelopeError(hung, ProviderError, "ENVELOPE_KMS_TIMEOUT");
    expect((hung as Error).message).not.toContain("quota");
    expect((hung as Error).message).toContain("timeoutMs");
  });

  it("backs off exponentially with full jitter, capped at maxDelayMs", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.999);
    const delays: number[] = [];
    const realSetTimeout = globalThis.setTimeout;
    vi.spyOn(globalThis, "setTimeout").mockImplementation(((fn: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      return realSetTimeout(fn, ms === 10_000 ? ms : 0);
    }) as typeof setTimeout);
    const call = async () => {
      throw vendorError("ThrottlingException");
    };
    await rejection(
      withRetry(target, call, classify, {
        attempts: 5,
        baseDelayMs: 100,
        maxDelayMs: 300,
        timeoutMs: 10_000,
      }),
    );
    const backoffs = delays.filter((d) => d !== 10_000).map(Math.round);
    expect(backoffs).toEqual([100, 200, 300, 300]);
  });

  it("does not retry access denied (or anything not transient)", async () => {
    for (const name of ["AccessDeniedException", "SomethingElse"]) {
      const call = vi.fn(async () => {
        throw vendorError(name);
      });
      const error = await rejection(withRetry(target, call, classify, { ...fast, attempts: 5 }));
      expect(call).toHaveBeenCalledTimes(1);
      const e = expectEnvelopeError(error, ProviderError);
      expect(e.code).toBe(
        name === "AccessDeniedException" ? "ENVELOPE_KMS_ACCESS_DENIED" : "ENVELOPE_KMS_ERROR",
      );
      expect(e.details.attempts).toBeUndefined();
    }
  });

  it("passes typed errors through without classifying them", async () => {
    const classifySpy = vi.fn(classify);
    const typed = new ProviderError("ENVELOPE_KEY_DISABLED", "key disabled");
    const error = await rejection(
      withRetry(target, async () => Promise.reject(typed), classifySpy, fast),
    );
    expect(error).toBe(typed);
    expect(classifySpy).not.toHaveBeenCalled();
  });

  it("times out a hung call with ENVELOPE_KMS_TIMEOUT, aborting its signal, and retries it", async () => {
    const signals: AbortSignal[] = [];
    const call = vi.fn(
      (signal: AbortSignal) =>
        new Promise<string>(() => {
          signals.push(signal);
        }),
    );
    const started = performance.now();
    const error = await rejection(
      withRetry(target, call, classify, { attempts: 2, timeoutMs: 20, baseDelayMs: 1 }),
    );
    const e = expectEnvelopeError(error, ProviderError, "ENVELOPE_KMS_TIMEOUT");
    expect(call).toHaveBeenCalledTimes(2);
    expect(signals.every((s) => s.aborted)).toBe(true);
    expect(e.message).toContain("20 ms");
    expect(e.details).toMatchObject({
      provider: "fake-kms",
      keyRef: "k1",
      operation: "Decrypt",
      attempts: 2,
    });
    // Two 20 ms timeouts; the margin allows for timers counted from the event loop's cached
    // clock (a busy loop before \`started\` makes them fire that much early by this clock).
    expect(performance.now() - started).toBeGreaterThanOrEqual(20);
  });

  it("a call that recovers after a timeout succeeds on the next attempt", async () => {
    let n = 0;
    const call = (signal: AbortSignal) =>
      ++n === 1
        ? new Promise<string>((_, reject) =>
            signal.addEventListener("abort", () => reject(new Error("aborted"))),
          )
        : Promise.resolve("ok");
    expect(
      await withRetry(target, call, classify, { attempts: 2, timeoutMs: 20, baseDelayMs: 1 }),
    ).toBe("ok");
  });

  it("attempts below 1 still make one attempt", async () => {
    const call = vi.fn(async () => "ok");
    expect(await withRetry(target, call, classify, { ...fast, attempts: 0 })).toBe("ok");
    expect(call).toHaveBeenCalledTimes(1);
  });

  it("an Envelope decrypt through a retrying provider sees one typed error", async () => {
    const inner = countingProvider({ id: "fake-kms", keyRef: "k1" });
    const sealed = await new Envelope({ encrypt: inner }).encrypt("x");
    let failures = 2;
    const flaky: KeyProvider = {
      ...inner,
      unwrap: (entry, request) =>
        withRetry(
          target,
          async () => {
            if (failures-- > 0) throw vendorError("ThrottlingException");
            return inner.unwrap(entry, request);
          },
          classify,
          fast,
        ),
    };
    expect(await new Envelope({ encrypt: flaky }).decrypt(sealed, { as: "text" })).toBe("x");
    failures = 10;
    const result = await outcome(new Envelope({ encrypt: flaky }).decrypt(sealed));
    expect(result.ok).toBe(false);
    if (!result.ok) expectEnvelopeError(result.error, ProviderError, "ENVELOPE_KMS_THROTTLED");
  });
});
