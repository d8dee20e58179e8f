import { Envelope, ProviderError } from "@envelope/core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./helpers.js";

// Key Vault answers 429 with Retry-After (seconds). The real SDK clients run against the
// test server, whose 429 carries `Retry-After: 1`; the SDK's own retries stay off, so the
// wait seen here is Envelope's withRetry reading the header from the SDK's RestError.

let h: Harness;
let counter = 0;

beforeAll(async () => {
  h = await startHarness({ retryAfterSeconds: 1 });
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  Object.assign(h.kv.faults, { throttleEvery: 0, failEvery: 0, dropEvery: 0, hang: false });
});

async function sealed(maxDelayMs: number) {
  const name = `retry-after-${++counter}`;
  await h.admin.createRsaKey(name);
  const provider = h.provider(`${h.kv.url}/keys/${name}`, {
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs, timeoutMs: 5_000 },
  });
  const envelope = new Envelope({ encrypt: provider, cache: false });
  const value = await envelope.encrypt("pii");
  h.kv.resetCalls();
  return { name, envelope, value };
}

describe("azure-kv honours Key Vault's Retry-After", () => {
  it("429 with Retry-After: 1, then 200: the retry waits the second the vault asked for, and succeeds", async () => {
    const { envelope, value, name } = await sealed(2_000);
    await h.admin.getKey(name); // authenticated request #1 passes …
    h.kv.faults.throttleEvery = 2; // … so the unwrap (#2) gets 429 Retry-After: 1, its retry (#3) 200
    const started = performance.now();
    expect((await envelope.decrypt(value)).toString()).toBe("pii");
    expect(performance.now() - started).toBeGreaterThanOrEqual(995);
    expect(h.kv.calls.unwrapKey).toBe(2);
  });

  it("Retry-After longer than maxDelayMs: ENVELOPE_KMS_THROTTLED at once, one request, saying how long the vault asked", async () => {
    const { envelope, value } = await sealed(500);
    h.kv.faults.throttleEvery = 1;
    const started = performance.now();
    const error = await envelope.decrypt(value).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(ProviderError.isInstance(error)).toBe(true);
    const e = error as ProviderError;
    expect(e.code).toBe("ENVELOPE_KMS_THROTTLED");
    expect(e.details).toMatchObject({ retryAfterMs: 1000, attempts: 1, operation: "unwrap" });
    expect(e.message).toContain("asked to wait 1 s (Retry-After)");
    expect(e.message).toContain("retry.maxDelayMs (500 ms)");
    expect(h.kv.calls.unwrapKey).toBe(1); // no early retries the vault would refuse again
    expect(performance.now() - started).toBeLessThan(900);
  });
});

describe("which header gives the wait (as the Azure SDK's throttling policy reads them)", () => {
  const target = {
    provider: "azure-kv",
    keyRef: "https://v.vault.azure.net/keys/k/1",
    operation: "unwrap",
  };
  const restError = (statusCode: number, headers: Record<string, string>) =>
    Object.assign(new Error("throttled"), {
      name: "RestError",
      statusCode,
      details: { error: { code: "Throttled", message: "Too many requests" } },
      response: { headers: { get: (name: string) => headers[name.toLowerCase()] } },
    });
  it.each([
    [429, { "retry-after-ms": "1500", "retry-after": "9" }, 1500],
    [429, { "x-ms-retry-after-ms": "250", "retry-after": "9" }, 250],
    [429, { "retry-after": "2" }, 2000],
    [503, { "retry-after": "3" }, 3000],
    [
      429,
      { "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT", date: "Wed, 21 Oct 2015 07:27:55 GMT" },
      5000,
    ],
    [429, { "retry-after-ms": "soon", "retry-after": "1" }, 1000],
    [429, { "retry-after": "-1" }, undefined],
    [429, {}, undefined],
    [400, { "retry-after": "2" }, undefined], // not a throttled / unavailable answer
  ] as const)("%i %j → retryAfterMs %s", async (status, headers, expected) => {
    const { classify } = await import("../src/errors.js");
    const e = classify(target)(restError(status, headers));
    expect(e.details.retryAfterMs).toBe(expected);
  });
});
