import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { Envelope, type KeyProvider, localAesProvider } from "@envelope/core";
import { hierarchicalProvider, memoryKeyStore } from "@envelope/hierarchical";
import { context as otelContext, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { afterEach, describe, expect, it } from "vitest";
import { ATTR, METRICS, SPANS } from "../src/index.js";
import { aesProvider, failingProvider, otelHarness } from "./harness.js";

const context = { table: "users", column: "email", id: "42" };

/** local-aes with GenerateDataKey and a native rewrap, like a KMS that has both. */
function kmsLike(keys: Buffer[]): KeyProvider {
  const inner = localAesProvider({ keys });
  return {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    wrap: (k, r) => inner.wrap(k, r),
    unwrap: (e, r) => inner.unwrap(e, r),
    async generateDataKey(request) {
      const dataKey = randomBytes(32);
      return { dataKey, entry: await inner.wrap(dataKey, request) };
    },
    async rewrap(entry, request) {
      const key = await inner.unwrap(entry, request);
      try {
        return await inner.wrap(key, request);
      } finally {
        key.fill(0);
      }
    },
  };
}

describe("KMS spans", () => {
  afterEach(() => otelContext.disable());

  it("wraps generateDataKey, unwrap and native rewrap in CLIENT spans with ids only", async () => {
    const otel = otelHarness();
    const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
    const before = new Envelope(otel.telemetry.instrument({ encrypt: kmsLike([oldKey]) }));
    const sealed = await before.encrypt("x", { context });
    const next = kmsLike([newKey, oldKey]);
    const after = new Envelope(otel.telemetry.instrument({ encrypt: next, cache: false }));
    await after.rewrap(sealed, { context });

    const spans = otel.spans();
    expect(spans.map((s) => s.name)).toEqual([
      SPANS.generate_data_key, // encrypt
      SPANS.rewrap, // native rewrap inside the "KMS"
      SPANS.unwrap, // core checks the new entry against the key commitment
    ]);
    const oldRef = localAesProvider({ keys: oldKey }).keyRef;
    for (const span of spans) {
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
      expect(span.attributes[ATTR.provider]).toBe("local-aes");
    }
    expect(spans[0]!.attributes).toEqual({
      [ATTR.provider]: "local-aes",
      [ATTR.keyRef]: oldRef,
      [ATTR.kmsOperation]: "generate_data_key",
    });
    expect(spans[1]!.attributes).toEqual({
      [ATTR.provider]: "local-aes",
      [ATTR.keyRef]: next.keyRef,
      [ATTR.kmsOperation]: "rewrap",
      [ATTR.sourceKeyRef]: oldRef,
    });
    expect(spans[2]!.attributes[ATTR.keyRef]).toBe(next.keyRef);
    expect(await otel.value(METRICS.kmsCalls, { [ATTR.kmsOperation]: "generate_data_key" })).toBe(
      1,
    );
  });

  it("marks a failed call as an error with its code, and records no exception event", async () => {
    const otel = otelHarness();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: failingProvider() }));
    await expect(envelope.encrypt("x", { context })).rejects.toThrow();
    const [span] = otel.spans();
    expect(span!.name).toBe(SPANS.wrap);
    expect(span!.status).toEqual({ code: SpanStatusCode.ERROR, message: "ENVELOPE_KMS_THROTTLED" });
    expect(span!.attributes[ATTR.errorType]).toBe("ENVELOPE_KMS_THROTTLED");
    expect(span!.events).toEqual([]);
  });

  it("nests KMS spans under the caller's active span", async () => {
    otelContext.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    const otel = otelHarness();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: aesProvider() }));
    const tracer = otel.tracerProvider.getTracer("app");
    await tracer.startActiveSpan("POST /users", async (request) => {
      await envelope.encrypt("x", { context });
      request.end();
    });
    const [kms, parent] = otel.spans();
    expect(parent!.name).toBe("POST /users");
    expect(kms!.spanContext().traceId).toBe(parent!.spanContext().traceId);
    expect(kms!.parentSpanContext?.spanId).toBe(parent!.spanContext().spanId);
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});

describe("instrumented providers", () => {
  it("keep the provider's shape: optional methods absent stay absent, keyRef is read through", async () => {
    const otel = otelHarness();
    let version = 1;
    const inner = aesProvider();
    const rotating: KeyProvider = {
      id: inner.id,
      get keyRef() {
        return `${inner.keyRef}-v${version}`;
      },
      handles: (e) => inner.handles(e),
      wrap: (k, r) => inner.wrap(k, r),
      unwrap: (e, r) => inner.unwrap(e, r),
      refresh: async () => {
        version++;
      },
      kmsContextKey: (c) => String(c.table),
    };
    const wrapped = otel.telemetry.instrumentProvider(rotating);
    expect(wrapped.generateDataKey).toBeUndefined();
    expect(wrapped.rewrap).toBeUndefined();
    expect("skipUnwrapCache" in wrapped).toBe(false);
    expect(wrapped.kmsContextKey?.({ table: "users" })).toBe("users");
    expect(wrapped.keyRef).toBe(`${inner.keyRef}-v1`);
    await wrapped.refresh?.();
    expect(wrapped.keyRef).toBe(`${inner.keyRef}-v2`);
    const kms = kmsLike([randomBytes(32)]);
    const full = otel.telemetry.instrumentProvider(kms);
    expect(typeof full.generateDataKey).toBe("function");
    expect(typeof full.rewrap).toBe("function");
  });

  it("are made once per provider (core compares providers by identity) and never twice", async () => {
    const otel = otelHarness();
    const provider = aesProvider();
    const once = otel.telemetry.instrumentProvider(provider);
    expect(otel.telemetry.instrumentProvider(provider)).toBe(once);
    expect(otel.telemetry.instrumentProvider(once)).toBe(once);
    const envelope = new Envelope(
      otel.telemetry.instrument({ encrypt: provider, decrypt: [provider] }),
    );
    const report = await envelope.check();
    expect(report.providers.map((p) => p.role)).toEqual(["encrypt"]);
    // The readiness probe's calls are KMS calls too.
    expect(otel.spans().map((s) => s.name)).toEqual([SPANS.wrap, SPANS.unwrap]);
  });

  it("print as ids only", () => {
    const otel = otelHarness();
    const provider = aesProvider();
    const wrapped = otel.telemetry.instrumentProvider(provider);
    expect(JSON.parse(JSON.stringify(wrapped))).toEqual({
      instrumented: true,
      provider: "local-aes",
      keyRef: provider.keyRef,
    });
    expect(inspect(wrapped)).toContain(provider.keyRef);
  });

  it("leave hierarchical mode's local unwraps alone and trace its master's KMS calls", async () => {
    const otel = otelHarness();
    const provider = hierarchicalProvider({
      master: otel.telemetry.instrumentProvider(aesProvider()),
      store: memoryKeyStore(),
    });
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: provider }));
    const sealed = await Promise.all(
      [1, 2, 3, 4].map((i) => envelope.encrypt(`v${i}`, { context })),
    );
    for (const value of sealed) await envelope.decrypt(value, { context });
    // One intermediate key: one master wrap, however many records.
    expect(otel.spans().map((s) => s.name)).toEqual([SPANS.wrap]);
    expect(
      await otel.value(METRICS.operations, {
        [ATTR.operation]: "decrypt",
        [ATTR.provider]: "hierarchical",
      }),
    ).toBe(4);
  });

  it("pass a hand-instrumented hierarchical provider's local unwrap on, untraced", async () => {
    const otel = otelHarness();
    const provider = hierarchicalProvider({ master: aesProvider(), store: memoryKeyStore() });
    let local = 0;
    const unwrapNow = provider.unwrapNow!.bind(provider);
    provider.unwrapNow = (entry, request) => {
      local++;
      return unwrapNow(entry, request);
    };
    const wrapped = otel.telemetry.instrumentProvider(provider);
    const envelope = new Envelope({ encrypt: wrapped });
    const sealed = await Promise.all([1, 2, 3].map((i) => envelope.encrypt(`v${i}`, { context })));
    const spansBefore = otel.spans().length;
    for (const value of sealed) await envelope.decrypt(value, { context });
    expect(local).toBe(3);
    // Served by the local derivation: no unwrap span, no KMS call counted.
    expect(otel.spans().length).toBe(spansBefore);
  });
});
