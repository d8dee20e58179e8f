import {
  type EnvelopeError,
  MAX_RETRY_AFTER_MS,
  ProviderError,
  parseRetryAfter,
  providerError,
  type RetryTarget,
  withRetry,
} from "@envelope/core";
import { describe, expect, it } from "vitest";

// A server's Retry-After (RFC 9110 §10.2.3) reaches withRetry as `details.retryAfterMs` on the
// classified error. These tests measure real waits: a lower bound is what the server asked
// for, so they cannot pass by retrying early.

const target: RetryTarget = { provider: "fake-kms", keyRef: "k1", operation: "Decrypt" };

/** A vendor error that says it was throttled, optionally with the server's requested wait. */
class Throttled extends Error {
  constructor(readonly retryAfterMs?: unknown) {
    super("throttled");
  }
}

const classify = (error: unknown): EnvelopeError => {
  const asked = error instanceof Throttled ? error.retryAfterMs : undefined;
  const extra = asked === undefined ? undefined : { retryAfterMs: asked as number };
  if (error instanceof Throttled)
    return providerError("ENVELOPE_KMS_THROTTLED", target, "throttled", "Slow down.", error, extra);
  return providerError("ENVELOPE_KMS_ACCESS_DENIED", target, "denied", "Grant it.", error, {
    retryAfterMs: 100,
  });
};

/** A call that fails with `errors` in turn, then succeeds; records when each attempt started. */
function script(errors: unknown[]) {
  const at: number[] = [];
  const call = async () => {
    at.push(performance.now());
    const next = errors.shift();
    if (next !== undefined) throw next;
    return "ok";
  };
  return { call, at, gaps: () => at.slice(1).map((t, i) => t - at[i]!) };
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

describe("parseRetryAfter (RFC 9110 §10.2.3: HTTP-date / delay-seconds)", () => {
  const sent = "Wed, 21 Oct 2015 07:27:30 GMT";
  it.each([
    ["1", 1000],
    ["0", 0],
    [" 120 ", 120_000],
    ["007", 7000],
    ["Wed, 21 Oct 2015 07:28:00 GMT", 30_000], // IMF-fixdate, 30 s after the response's Date
    ["Wed, 21 Oct 2015 07:28:00 UTC", 30_000], // Go's time.RFC1123, as older Vault quotas send it
    ["Wednesday, 21-Oct-15 07:28:00 GMT", 30_000], // obsolete RFC 850 form
    ["Wed Oct 21 07:28:00 2015", 30_000], // obsolete asctime form: UTC without saying so
    ["Wed, 21 Oct 2015 07:27:00 GMT", 0], // already past: retry now
  ])("%j → %d ms", (value, ms) => {
    expect(parseRetryAfter(value, { date: sent })).toBe(ms);
  });

  it.each([
    [undefined],
    [null],
    [""],
    ["-1"],
    ["1.5"],
    ["+3"],
    ["1e3"],
    ["soon"],
    ["1, 2"],
    ["Wed, 21 Oct 2015 07:28:00"], // a date without its zone
    ["2015-10-21T07:28:00Z"], // ISO 8601 is not an HTTP-date
    [`Wed, 21 Oct 2015 07:28:00 GMT${" ".repeat(100)}x`],
  ])("%j is not a Retry-After: undefined (the caller keeps its backoff)", (value) => {
    expect(parseRetryAfter(value)).toBeUndefined();
  });

  it("huge delay-seconds are clamped to a year, never Infinity or an unsafe number", () => {
    expect(parseRetryAfter("99999999999")).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter("9".repeat(400))).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter("3600")).toBe(3_600_000);
    expect(Number.isSafeInteger(MAX_RETRY_AFTER_MS)).toBe(true);
  });

  it("a date without the response's Date header is measured from `now`", () => {
    const now = Date.parse("Wed, 21 Oct 2015 07:27:58 GMT");
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", { now })).toBe(2000);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", { now, date: "garbage" })).toBe(2000);
  });
});

describe("withRetry honours the server's Retry-After (details.retryAfterMs)", () => {
  it("waits at least what the server asked before the next attempt, though its own backoff is 1 ms", async () => {
    const s = script([new Throttled(400), new Throttled(250)]);
    const result = await withRetry(target, s.call, classify, {
      attempts: 3,
      baseDelayMs: 1,
      maxDelayMs: 2000,
    });
    expect(result).toBe("ok");
    const [first, second] = s.gaps();
    expect(first).toBeGreaterThanOrEqual(395); // timers may fire up to 1 ms early
    expect(second).toBeGreaterThanOrEqual(245);
    // Jitter on top is bounded by the backoff (1 ms, 2 ms): no needless long waits.
    expect(first).toBeLessThan(400 + 300);
  });

  it("never waits past maxDelayMs: a Retry-After equal to the cap waits the cap, no more", async () => {
    const s = script([new Throttled(300)]);
    await withRetry(target, s.call, classify, { attempts: 2, baseDelayMs: 1000, maxDelayMs: 300 });
    expect(s.gaps()[0]).toBeGreaterThanOrEqual(295);
    expect(s.gaps()[0]).toBeLessThan(300 + 250);
  });

  it("when the server asks for longer than maxDelayMs, gives up at once and says how long it asked", async () => {
    const s = script([new Throttled(30_000), new Throttled(30_000), new Throttled(30_000)]);
    const started = performance.now();
    const error = await rejection(
      withRetry(target, s.call, classify, { attempts: 3, baseDelayMs: 1, maxDelayMs: 2000 }),
    );
    expect(performance.now() - started).toBeLessThan(1000);
    expect(s.at).toHaveLength(1); // no early retry the server would refuse again
    expect(error.code).toBe("ENVELOPE_KMS_THROTTLED");
    expect(error.details).toMatchObject({ attempts: 1, retryAfterMs: 30_000, keyRef: "k1" });
    expect(error.message).toContain("asked to wait 30 s (Retry-After)");
    expect(error.message).toContain("retry.maxDelayMs (2000 ms)");
    expect(error.message).toContain("Gave up after 1 attempt(s)");
  });

  it("a huge Retry-After gives up at once even with the largest maxDelayMs (no overflowed timer)", async () => {
    const s = script([new Throttled(parseRetryAfter("9".repeat(40)))]);
    const error = await rejection(
      withRetry(target, s.call, classify, {
        attempts: 2,
        baseDelayMs: 1,
        maxDelayMs: Number.MAX_SAFE_INTEGER,
      }),
    );
    expect(s.at).toHaveLength(1);
    expect(error.details.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
    expect(error.message).toContain("asked to wait 31536000 s");
  });

  it("the last attempt's Retry-After is named in the final error", async () => {
    const s = script([new Throttled(5), new Throttled(7000)]);
    const error = await rejection(
      withRetry(target, s.call, classify, { attempts: 2, baseDelayMs: 1, maxDelayMs: 50 }),
    );
    expect(s.at).toHaveLength(2);
    expect(error.message).toContain("asked to wait 7 s (Retry-After)");
    expect(error.details).toMatchObject({ attempts: 2, retryAfterMs: 7000 });
  });

  it.each([[0], [-5], [Number.NaN], ["3000"]])(
    "a retryAfterMs of %j keeps the plain backoff",
    async (asked) => {
      const s = script([new Throttled(asked), new Throttled(asked)]);
      expect(
        await withRetry(target, s.call, classify, { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 }),
      ).toBe("ok");
      for (const gap of s.gaps()) expect(gap).toBeLessThan(200);
    },
  );

  it("a non-retryable error is not retried because it carries a Retry-After", async () => {
    const s = script([new Error("denied")]);
    const error = await rejection(withRetry(target, s.call, classify, { baseDelayMs: 1 }));
    expect(error.code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    expect(s.at).toHaveLength(1);
  });
});

describe("what the final error says", () => {
  it("a Retry-After of 0 on the last attempt adds nothing to the message", async () => {
    const s = script([new Throttled(0), new Throttled(0)]);
    const error = await rejection(
      withRetry(target, s.call, classify, { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 }),
    );
    expect(error.message).not.toContain("Retry-After");
    expect(error.message).toContain("Gave up after 2 attempt(s)");
  });
});
