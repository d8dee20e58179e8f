/**
 * Review (wip6-ops): `envelope.check()` as README.md ("Readiness check"), the core README
 * and the CLI README document it: wraps a random canary with each key (GenerateDataKey
 * where encrypt uses it), unwraps it, zeroes it; nothing cached, no application data; the
 * KMS sees `{"envelope:check": "readiness"}`; per key ok / degraded / failed.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  Envelope,
  type KeyProvider,
  localAesProvider,
  ProviderError,
  READINESS_CONTEXT,
  type WrappedKey,
} from "../src/index.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** local-aes with hooks, recording the contexts and buffers every call saw and returned. */
function spied(
  options: {
    generate?: boolean;
    wrapDelayMs?: number;
    unwrapDelayMs?: number;
    unwrapError?: () => Error;
  } = {},
) {
  const aes = localAesProvider({ keys: randomBytes(32) });
  const seen = {
    contexts: [] as [string, unknown][],
    generated: [] as Buffer[],
    unwrapped: [] as Buffer[],
    wrapArgs: [] as Uint8Array[],
  };
  const provider: KeyProvider = {
    id: aes.id,
    keyRef: aes.keyRef,
    handles: (e) => aes.handles(e),
    async wrap(key, request) {
      seen.contexts.push(["wrap", request.context]);
      seen.wrapArgs.push(key);
      if (options.wrapDelayMs) await sleep(options.wrapDelayMs);
      return aes.wrap(key, request);
    },
    async unwrap(entry, request) {
      seen.contexts.push(["unwrap", request.context]);
      if (options.unwrapDelayMs) await sleep(options.unwrapDelayMs);
      if (options.unwrapError) throw options.unwrapError();
      const key = Buffer.from(await aes.unwrap(entry, request));
      seen.unwrapped.push(key);
      return key;
    },
  };
  if (options.generate) {
    provider.generateDataKey = async (request) => {
      seen.contexts.push(["generateDataKey", request.context]);
      if (options.wrapDelayMs) await sleep(options.wrapDelayMs);
      const dataKey = randomBytes(32);
      seen.generated.push(dataKey);
      return { dataKey, entry: await aes.wrap(dataKey, request) };
    };
  }
  return { provider, seen };
}

const zero = (b: Uint8Array) => b.every((x) => x === 0);

describe("review: envelope.check() as documented", () => {
  it("GenerateDataKey for an encrypt key; every call under the readiness context; all copies zeroed", async () => {
    const { provider, seen } = spied({ generate: true });
    const report = await new Envelope({ encrypt: provider }).check({ timeoutMs: 3000 });
    expect(report).toMatchObject({ ok: true, providers: [{ role: "encrypt", status: "ok" }] });
    expect(seen.contexts).toEqual([
      ["generateDataKey", READINESS_CONTEXT],
      ["unwrap", READINESS_CONTEXT],
    ]);
    expect(READINESS_CONTEXT).toEqual({ "envelope:check": "readiness" });
    expect(seen.generated.every(zero)).toBe(true);
    expect(seen.unwrapped.every(zero)).toBe(true);
  });

  it("a decrypt-only key is checked with wrap (no GenerateDataKey) and its canary zeroed", async () => {
    const enc = spied({ generate: true });
    const dec = spied({ generate: true });
    const report = await new Envelope({ encrypt: enc.provider, decrypt: [dec.provider] }).check();
    expect(report.providers.map((p) => [p.role, p.status])).toEqual([
      ["encrypt", "ok"],
      ["decrypt", "ok"],
    ]);
    expect(dec.seen.contexts.map((c) => c[0])).toEqual(["wrap", "unwrap"]);
    expect(dec.seen.wrapArgs.every(zero)).toBe(true);
    expect(dec.seen.unwrapped.every(zero)).toBe(true);
  });

  it("a key listed under both encrypt and decrypt is checked once, as encrypt", async () => {
    const { provider, seen } = spied();
    const report = await new Envelope({ encrypt: provider, decrypt: [provider] }).check();
    expect(report.providers).toHaveLength(1);
    expect(report.providers[0]!.role).toBe("encrypt");
    expect(seen.contexts).toHaveLength(2);
  });

  it("caches nothing: the unwrap cache is empty after check()", async () => {
    const { provider } = spied();
    const envelope = new Envelope({ encrypt: provider });
    await envelope.check();
    expect(envelope.cacheStats()).toMatchObject({ size: 0, hits: 0, misses: 0 });
  });

  it("a provider that returns a short data key from GenerateDataKey fails with a stable code", async () => {
    const { provider } = spied();
    provider.generateDataKey = async () => ({
      dataKey: randomBytes(16),
      entry: { providerId: provider.id, keyRef: provider.keyRef, wrapped: randomBytes(40) },
    });
    const report = await new Envelope({ encrypt: provider }).check();
    expect(report.ok).toBe(false);
    expect(report.providers[0]!.error?.code).toBe("ENVELOPE_PROVIDER_CONTRACT");
  });

  it("timeoutMs is per step: a check returns within 2 × timeoutMs (+ slack) when every KMS hangs", async () => {
    const hang = (): KeyProvider => {
      const { provider } = spied();
      return {
        ...provider,
        wrap: () => new Promise<WrappedKey>(() => {}),
        unwrap: () => new Promise<Uint8Array>(() => {}),
      };
    };
    const envelope = new Envelope({ encrypt: hang(), decrypt: [hang(), hang()] });
    const started = Date.now();
    const report = await envelope.check({ timeoutMs: 200 });
    // The bound is per step (2 × 200 ms); the rest is room for a loaded machine.
    expect(Date.now() - started).toBeLessThan(2 * 200 + 1600);
    expect(report.ok).toBe(false);
    expect(report.providers.map((p) => p.error?.code)).toEqual([
      "ENVELOPE_KMS_TIMEOUT",
      "ENVELOPE_KMS_TIMEOUT",
      "ENVELOPE_KMS_TIMEOUT",
    ]);
  });

  // Was FINDING (low; fixed: readiness.ts zeroes a late unwrap). Doc: README.md "…and unwraps it again, then zeroes it"; CLI README "the
  // canary is zeroed". readiness.ts zeroes a canary that a slow KMS returns from wrap after
  // the timeout, but a data key that unwrap returns after the timeout is never zeroed:
  // the late result of `provider.unwrap` is dropped as is.
  it("a canary unwrapped after the timeout is zeroed when it arrives", async () => {
    const { provider, seen } = spied({ unwrapDelayMs: 150 });
    const report = await new Envelope({ encrypt: provider }).check({ timeoutMs: 50 });
    expect(report.providers[0]!.error).toMatchObject({
      code: "ENVELOPE_KMS_TIMEOUT",
      step: "unwrap",
    });
    await sleep(250);
    expect(seen.unwrapped).toHaveLength(1);
    expect(zero(seen.unwrapped[0]!)).toBe(true);
  });

  it("a canary wrapped after the timeout (GenerateDataKey) is zeroed when it arrives", async () => {
    const { provider, seen } = spied({ generate: true, wrapDelayMs: 150 });
    const report = await new Envelope({ encrypt: provider }).check({ timeoutMs: 50 });
    expect(report.providers[0]!.error).toMatchObject({
      code: "ENVELOPE_KMS_TIMEOUT",
      step: "wrap",
    });
    await sleep(250);
    expect(seen.generated).toHaveLength(1);
    expect(zero(seen.generated[0]!)).toBe(true);
  });

  // Was FINDING (fixed: check() calls #checkOpen()). Doc: packages/core/README.md `envelope.close()`: "later calls fail with
  // `ENVELOPE_CLOSED`" (also docs/ERRORS.md ENVELOPE_CLOSED: "a call on an Envelope after
  // close()"). `check()` does not call #checkOpen(): a closed client still reports
  // `ok: true`, so a health endpoint wired to check() says ready while every encrypt and
  // decrypt fails with ENVELOPE_CLOSED (e.g. during a graceful shutdown).
  it("check() after close() fails with ENVELOPE_CLOSED (or at least is not ok)", async () => {
    const { provider } = spied();
    const envelope = new Envelope({ encrypt: provider });
    await envelope.close();
    await expect(envelope.encrypt("x")).rejects.toMatchObject({ code: "ENVELOPE_CLOSED" });
    const outcome = await envelope.check().then(
      (report) => (report.ok ? "ok" : "not ok"),
      (error: { code?: string }) => error.code,
    );
    expect(outcome).not.toBe("ok");
  });

  it("an error message from the provider is passed as is; an untyped one is hidden", async () => {
    const typed = spied({
      unwrapError: () => new ProviderError("ENVELOPE_KMS_ACCESS_DENIED", "denied by policy"),
    });
    const untyped = spied({ unwrapError: () => new Error("token=SECRET-CANARY-42") });
    const report = await new Envelope({
      encrypt: typed.provider,
      decrypt: [untyped.provider],
    }).check();
    expect(report.providers[0]!.error).toMatchObject({
      code: "ENVELOPE_KMS_ACCESS_DENIED",
      step: "unwrap",
    });
    expect(report.providers[1]!).toMatchObject({
      status: "failed",
      error: { code: "ENVELOPE_KMS_ERROR", step: "unwrap" },
    });
    expect(JSON.stringify(report)).not.toContain("SECRET-CANARY-42");
  });
});
