import { randomBytes } from "node:crypto";
import {
  Envelope,
  type KeyProvider,
  type KeyRequest,
  localAesProvider,
  ProviderError,
  type WrappedKey,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { findCanaries } from "../../../test/support/secret-surfaces.js";
import { ATTR } from "../src/index.js";
import { otelHarness } from "./harness.js";

const TOKEN = "CANARY-TOKEN-5d0e9b";
const PLAINTEXT = "CANARY-PLAINTEXT-7f3a11";
const CONTEXT_VALUE = "CANARY-CTXVALUE-91b2c4";
const CONTEXT_KEY = "canary_ctxkey_4c1d08";

/** Every binary secret as the text forms an exporter could carry it in. */
function forms(bytes: Uint8Array): string[] {
  const b = Buffer.from(bytes);
  return [b.toString("hex"), b.toString("base64"), b.toString("base64url"), b.toString("latin1")];
}

/**
 * A KMS-like provider (GenerateDataKey, native rewrap) over local-aes that remembers every
 * data key, wrapped key and context value it sees, so the test can look for each of them.
 */
function spyingProvider(masterKeys: Buffer[]) {
  const inner = localAesProvider({ keys: masterKeys });
  const secrets: string[] = masterKeys.flatMap(forms);
  const seen = (request: KeyRequest) => {
    for (const [k, v] of Object.entries(request.context)) secrets.push(k, String(v));
  };
  const saw = (entry: WrappedKey) => secrets.push(...forms(entry.wrapped));
  const provider: KeyProvider = {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    async wrap(dataKey, request) {
      seen(request);
      secrets.push(...forms(dataKey));
      const entry = await inner.wrap(dataKey, request);
      saw(entry);
      return entry;
    },
    async unwrap(entry, request) {
      seen(request);
      const dataKey = await inner.unwrap(entry, request);
      secrets.push(...forms(dataKey)); // copied now: core zeroes the buffer after use
      return dataKey;
    },
    async generateDataKey(request) {
      const dataKey = randomBytes(32);
      return { dataKey, entry: await this.wrap(dataKey, request) };
    },
    async rewrap(entry, request) {
      const dataKey = await this.unwrap(entry, request);
      try {
        return await this.wrap(dataKey, request);
      } finally {
        dataKey.fill(0);
      }
    },
  };
  return { provider, secrets };
}

/** A KMS whose errors quote a session token, in the message and in a vendor-like cause. */
function leakyFailingProvider(keyRef: string, typed: boolean): KeyProvider {
  const vendor = Object.assign(new Error(`AccessDenied for token ${TOKEN}`), {
    $response: { headers: { authorization: `Bearer ${TOKEN}` } },
  });
  const error = typed
    ? new ProviderError("ENVELOPE_KMS_ACCESS_DENIED", `denied (session ${TOKEN})`, {
        cause: vendor,
      })
    : vendor;
  return {
    id: "local-aes",
    keyRef,
    handles: () => true,
    wrap: async () => {
      throw error;
    },
    unwrap: async () => {
      throw error;
    },
  };
}

describe("no key material, plaintext, context or token reaches telemetry", () => {
  it("across every metric (names, descriptions, labels) and span (attributes, events, status)", async () => {
    const otel = otelHarness();
    const [oldMaster, newMaster] = [randomBytes(32), randomBytes(32)];
    const before = spyingProvider([oldMaster]);
    const after = spyingProvider([newMaster, oldMaster]);
    const context = { [CONTEXT_KEY]: CONTEXT_VALUE, table: "users" };
    const writer = new Envelope(
      otel.telemetry.instrument({
        encrypt: before.provider,
        storeContext: true,
        dataKeyReuse: { maxMessages: 2 },
      }),
    );
    otel.telemetry.observe(writer, { client: "writer" });
    const sealedText = await writer.encrypt(PLAINTEXT, { context, output: "text" });
    const sealedBin = await writer.encrypt(`${PLAINTEXT}-2`, { context }); // reused data key
    const materials = await writer.generateDataKey({ context });
    const viaKey = writer.encryptWithDataKey(materials, `${PLAINTEXT}-3`, { context });
    materials.dataKey.fill(0);
    writer.clearCaches();
    expect(await writer.decrypt(sealedText, { context, as: "text" })).toBe(PLAINTEXT);
    await writer.decrypt(sealedBin); // stored context
    await writer.decryptMany([
      { sealed: viaKey, context },
      { sealed: sealedText, context },
    ]);
    await expect(
      writer.decrypt(sealedBin, { context: { [CONTEXT_KEY]: `${CONTEXT_VALUE}-other` } }),
    ).rejects.toThrow();

    const reader = new Envelope(
      otel.telemetry.instrument({
        encrypt: after.provider,
        decrypt: [leakyFailingProvider("denied-typed", true)],
        cache: false,
      }),
    );
    otel.telemetry.observe(reader, { client: "reader" });
    const rewrapped = await reader.rewrap(sealedText, { context }); // native
    await reader.decrypt(rewrapped, { context });
    await reader.check();
    for (const typed of [true, false]) {
      const broken = new Envelope(
        otel.telemetry.instrument({ encrypt: leakyFailingProvider(`denied-${typed}`, typed) }),
      );
      await expect(broken.encrypt(PLAINTEXT, { context })).rejects.toThrow();
      await expect(broken.decrypt(sealedText, { context })).rejects.toThrow();
    }

    const canaries = [
      TOKEN,
      PLAINTEXT,
      CONTEXT_VALUE,
      CONTEXT_KEY,
      sealedText,
      sealedText.slice(4, 40), // any part of a sealed value
      ...forms(sealedBin).map((f) => f.slice(0, 40)),
      ...[...before.secrets, ...after.secrets].filter((s) => s.length >= 16),
    ];
    expect(before.secrets.length).toBeGreaterThan(20); // data keys were seen and listed
    const spans = otel.spans();
    const metrics = await otel.resourceMetrics();
    expect(spans.length).toBeGreaterThanOrEqual(8);

    const leaks = [
      ...spans.flatMap((span) => findCanaries(span, canaries).map((l) => `${span.name}: ${l}`)),
      ...metrics.flatMap((m) => findCanaries(m, canaries).map((l) => `metrics: ${l}`)),
    ];
    expect(leaks).toEqual([]);

    // The scan did read attributes and labels: the ids and codes that belong there are found.
    const spanText = spans.map((s) => JSON.stringify(s.attributes)).join();
    expect(spanText).toContain(before.provider.keyRef);
    expect(spanText).toContain("ENVELOPE_KMS_ACCESS_DENIED");
    const metricText = JSON.stringify(metrics.map((m) => m.scopeMetrics));
    expect(metricText).toContain(after.provider.keyRef);
    expect(metricText).toContain(ATTR.cacheHit);
  });

  it("the scan finds a canary an attribute does carry (the check can fail)", async () => {
    const otel = otelHarness();
    otel.tracerProvider
      .getTracer("app")
      .startSpan("leaky", { attributes: { "app.note": `user wrote ${PLAINTEXT}` } })
      .end();
    const [span] = otel.spans();
    expect(findCanaries(span, [PLAINTEXT]).length).toBeGreaterThan(0);
    otel.meterProvider.getMeter("app").createCounter("app.leaks").add(1, { note: CONTEXT_VALUE });
    const metrics = await otel.resourceMetrics();
    expect(metrics.flatMap((m) => findCanaries(m, [CONTEXT_VALUE])).length).toBeGreaterThan(0);
  });
});
