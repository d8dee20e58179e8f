/**
 * Review (wip6-ops): every row of the metrics table in packages/otel/README.md ("##
 * Metrics"), read literally, against what the real OpenTelemetry SDK exports (in-memory
 * exporters): name, instrument, unit, attribute keys and the footnotes. Then canaries
 * through check(), decryptMany / encryptMany and hostile values, and an attacker who
 * plants key references.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  Envelope,
  type KeyProvider,
  type KeyRequest,
  localAesProvider,
  ProviderError,
  toText,
  type WrappedKey,
} from "@envelope/core";
import { InstrumentType } from "@opentelemetry/sdk-metrics";
import { describe, expect, it } from "vitest";
import { otelHarness } from "./harness.js";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");

/** The rows of the table under "## Metrics": metric, instrument, unit, attributes. */
function documentedMetrics() {
  const section = README.split("## Metrics")[1]!.split("\n## ")[0]!;
  return section
    .split("\n")
    .filter((l) => l.startsWith("| `envelope."))
    .map((l) => {
      const cells = l.split("|").map((c) => c.trim());
      return {
        name: cells[1]!.replaceAll("`", ""),
        instrument: cells[2]!,
        unit: cells[3]!.replaceAll("`", ""),
        attributes: cells[4]!,
      };
    });
}

/** Short names in the table → exported attribute keys (the "## Attributes" table). */
const ATTRIBUTE_KEYS: Record<string, string> = {
  operation: "envelope.operation",
  provider: "envelope.provider",
  key_ref: "envelope.key_ref",
  outcome: "envelope.outcome",
  "error.type": "error.type",
  cache_hit: "envelope.cache_hit",
  data_key_reused: "envelope.data_key_reused",
  "kms.operation": "envelope.kms.operation",
  client: "envelope.client",
};

const INSTRUMENTS: Record<string, InstrumentType> = {
  Counter: InstrumentType.COUNTER,
  Histogram: InstrumentType.HISTOGRAM,
  ObservableCounter: InstrumentType.OBSERVABLE_COUNTER,
  ObservableUpDownCounter: InstrumentType.OBSERVABLE_UP_DOWN_COUNTER,
};

/**
 * The instrument kind behind an exported metric. The SDK exports its InstrumentDescriptor
 * (with `type`) as the descriptor; the public type shows only the MetricDescriptor part.
 */
const instrumentOf = (descriptor: object) => (descriptor as { type?: InstrumentType }).type;

function allowedKeys(row: { attributes: string }, rows: { name: string; attributes: string }[]) {
  let text = row.attributes;
  const as = /^as `([^`]+)`/.exec(text);
  if (as) text = rows.find((r) => r.name === as[1])!.attributes;
  return text
    .replace(/[¹²³⁴]/g, "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const key = ATTRIBUTE_KEYS[s];
      if (!key) throw new Error(`README attribute "${s}" has no row in the Attributes table`);
      return key;
    });
}

/** A KMS-like provider over local-aes with GenerateDataKey; its unwrap may be made to fail. */
function kmsLike(masterKey = randomBytes(32)) {
  const inner = localAesProvider({ keys: masterKey });
  const state = { failUnwrap: false };
  const provider: KeyProvider = {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    wrap: (k, r) => inner.wrap(k, r),
    async unwrap(entry, request) {
      if (state.failUnwrap) throw new ProviderError("ENVELOPE_KMS_THROTTLED", "throttled");
      return inner.unwrap(entry, request);
    },
    async generateDataKey(request: KeyRequest) {
      const dataKey = randomBytes(32);
      return { dataKey, entry: await inner.wrap(dataKey, request) };
    },
  };
  return { provider, state, masterKey };
}

describe("review: the README metrics table, row by row, against the exported metrics", () => {
  it("every documented metric is exported with its instrument, unit and only its attributes", async () => {
    const otel = otelHarness();
    const kms = kmsLike();
    const envelope = new Envelope(
      otel.telemetry.instrument({ encrypt: kms.provider, dataKeyReuse: { maxAgeMs: 60_000 } }),
    );
    otel.telemetry.observe(envelope, { client: "review" });
    const context = { table: "t", id: "1" };
    const sealed = await envelope.encrypt("hello", { context });
    await envelope.encrypt("again", { context }); // reused data key
    const cold = new Envelope(otel.telemetry.instrument({ encrypt: kms.provider }));
    await cold.decrypt(sealed, { context }); // miss
    await cold.decrypt(sealed, { context }); // hit
    await cold.decrypt(sealed, { context: { table: "t", id: "2" } }).catch(() => {}); // failure
    await cold.decrypt(randomBytes(80)).catch(() => {}); // provider none
    kms.state.failUnwrap = true;
    await new Envelope(otel.telemetry.instrument({ encrypt: kms.provider }))
      .decrypt(sealed, { context })
      .catch(() => {}); // KMS error
    kms.state.failUnwrap = false;

    const rows = documentedMetrics();
    expect(rows.map((r) => r.name)).toHaveLength(11);
    const exported = new Map<
      string,
      { type: InstrumentType | undefined; unit: string; points: unknown[] }
    >();
    for (const rm of await otel.resourceMetrics())
      for (const sm of rm.scopeMetrics) {
        expect(sm.scope.name).toBe("@envelope/otel");
        for (const m of sm.metrics)
          exported.set(m.descriptor.name, {
            type: instrumentOf(m.descriptor),
            unit: m.descriptor.unit,
            points: m.dataPoints,
          });
      }
    for (const row of rows) {
      const metric = exported.get(row.name);
      expect(metric, row.name).toBeDefined();
      expect(metric!.type, row.name).toBe(INSTRUMENTS[row.instrument]);
      expect(metric!.unit, row.name).toBe(row.unit);
      const allowed = new Set(allowedKeys(row, rows));
      expect(metric!.points.length, row.name).toBeGreaterThan(0);
      for (const p of metric!.points as { attributes: Record<string, unknown> }[]) {
        for (const key of Object.keys(p.attributes)) {
          expect(allowed.has(key), `${row.name}: ${key}`).toBe(true);
        }
        const a = p.attributes;
        // ¹ error.type only when outcome is failure.
        if (allowed.has("envelope.outcome")) {
          expect("error.type" in a, `${row.name} ${JSON.stringify(a)}`).toBe(
            a["envelope.outcome"] === "failure" || row.name === "envelope.kms.errors",
          );
        }
        // ² decrypt only, ³ encrypt only.
        expect("envelope.cache_hit" in a).toBe(a["envelope.operation"] === "decrypt");
        expect("envelope.data_key_reused" in a).toBe(a["envelope.operation"] === "encrypt");
        // ⁴ client only when observe was given one.
        if (allowed.has("envelope.client")) expect(a["envelope.client"]).toBe("review");
      }
    }
    // Nothing exported that the table does not list.
    expect([...exported.keys()].sort()).toEqual(rows.map((r) => r.name).sort());
  });

  it("durations in seconds with buckets from 10 µs to 10 s", async () => {
    const otel = otelHarness();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: kmsLike().provider }));
    await envelope.decrypt(await envelope.encrypt("x"));
    for (const rm of await otel.resourceMetrics())
      for (const sm of rm.scopeMetrics)
        for (const m of sm.metrics) {
          if (instrumentOf(m.descriptor) !== InstrumentType.HISTOGRAM) continue;
          expect(m.descriptor.unit).toBe("s");
          for (const p of m.dataPoints as {
            value: { buckets: { boundaries: number[] }; sum: number };
          }[]) {
            expect(p.value.buckets.boundaries[0]).toBe(0.00001);
            expect(p.value.buckets.boundaries.at(-1)).toBe(10);
            expect(p.value.sum).toBeLessThan(5); // seconds, not ms
          }
        }
  });

  it("the provider is `none` and key_ref `none` for a decrypt that failed before a provider was chosen", async () => {
    const otel = otelHarness();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: kmsLike().provider }));
    await envelope.decrypt(randomBytes(100)).catch(() => {});
    const points = await otel.points("envelope.operations");
    expect(points).toHaveLength(1);
    expect(points[0]!.attributes).toMatchObject({
      "envelope.operation": "decrypt",
      "envelope.provider": "none",
      "envelope.key_ref": "none",
      "envelope.outcome": "failure",
    });
    expect(String(points[0]!.attributes["error.type"])).toMatch(/^ENVELOPE_[A-Z_]+$/);
  });

  it("check(): counted in envelope.kms.calls (readiness included), not in envelope.operations", async () => {
    const otel = otelHarness();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: kmsLike().provider }));
    const report = await envelope.check();
    expect(report.ok).toBe(true);
    expect(
      await otel.value("envelope.kms.calls", { "envelope.kms.operation": "generate_data_key" }),
    ).toBe(1);
    expect(await otel.value("envelope.kms.calls", { "envelope.kms.operation": "unwrap" })).toBe(1);
    expect(await otel.value("envelope.operations")).toBe(0);
  });

  it("GenerateDataKey is `wrap` in envelope.operations and `generate_data_key` in envelope.kms.calls", async () => {
    const otel = otelHarness();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: kmsLike().provider }));
    await envelope.encrypt("x");
    expect(await otel.value("envelope.operations", { "envelope.operation": "wrap" })).toBe(1);
    expect(
      await otel.value("envelope.kms.calls", { "envelope.kms.operation": "generate_data_key" }),
    ).toBe(1);
    expect(await otel.value("envelope.kms.calls", { "envelope.kms.operation": "wrap" })).toBe(0);
    expect(otel.spans().map((s) => s.name)).toEqual(["envelope.kms.generate_data_key"]);
  });
});

/** A provider that claims every entry of its id, whatever the key reference (like a KMS
 * with discovery), and fails to unwrap the ones it did not write. */
function discoveryProvider() {
  const inner = localAesProvider({ keys: randomBytes(32) });
  const provider: KeyProvider = {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => e.providerId === inner.id,
    wrap: (k, r) => inner.wrap(k, r),
    async unwrap(entry: WrappedKey, request) {
      if (entry.keyRef !== inner.keyRef)
        throw new ProviderError("ENVELOPE_KEY_NOT_FOUND", `no key ${entry.keyRef}`);
      return inner.unwrap(entry, request);
    },
  };
  return provider;
}

/** A stored value whose only entry names `keyRef` (written by whoever can write rows). */
function planted(keyRef: string): string {
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const id = Buffer.from("local-aes");
  const ref = Buffer.from(keyRef);
  const wrapped = randomBytes(40);
  return toText(
    Buffer.concat([
      Buffer.from([1, 1, 0]),
      randomBytes(32),
      randomBytes(32),
      Buffer.from([1, id.length]),
      id,
      u16(ref.length),
      ref,
      u16(wrapped.length),
      wrapped,
      Buffer.from([0, 0, 0, 0]),
      randomBytes(16),
    ]),
  );
}

describe("review: an attacker who writes key references into stored values", () => {
  it("label cardinality stays bounded by maxKeyRefs; span key refs are escaped and capped", async () => {
    const otel = otelHarness({ maxKeyRefs: 10 });
    const provider = discoveryProvider();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: provider }));
    const values = Array.from({ length: 50 }, (_, i) => ({
      sealed: planted(`attacker-${i}-${"\u0007\n".repeat(i % 2)}${"x".repeat(i === 3 ? 5000 : 1)}`),
    }));
    const results = await envelope.decryptMany(values);
    expect(results.every((r) => !r.ok)).toBe(true);
    const labels = new Set<string>();
    for (const p of await otel.points())
      if (p.attributes["envelope.key_ref"] !== undefined)
        labels.add(String(p.attributes["envelope.key_ref"]));
    expect(labels.size).toBeLessThanOrEqual(10 + 2); // + `_other` + `none`
    for (const s of otel.spans()) {
      const ref = String(s.attributes["envelope.key_ref"]);
      expect(ref.length).toBeLessThanOrEqual(300);
      expect([...ref].some((c) => c.charCodeAt(0) < 0x20)).toBe(false);
    }
  });

  // Was FINDING (low; fixed: labels.ts keeps configured keys apart). Doc: packages/otel/README.md `maxKeyRefs`: "most distinct key
  // references used as metric labels; later ones are labelled `_other`. Key references are
  // read from stored values, so whoever can write to the database could otherwise create
  // time series at will". The first `maxKeyRefs` references seen win, and the configured
  // keys are not reserved: after a restart, an attacker's planted values read first (a
  // list page) take every slot, and the service's own encrypt key is then reported as
  // `_other` on every metric, so per-key dashboards and alerts go blind.
  it("the configured key keeps its own label after an attacker fills maxKeyRefs", async () => {
    const otel = otelHarness({ maxKeyRefs: 10 });
    const provider = discoveryProvider();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: provider }));
    await envelope.decryptMany(
      Array.from({ length: 20 }, (_, i) => ({ sealed: planted(`attacker-${i}`) })),
    );
    await envelope.encrypt("x");
    expect(
      await otel.value("envelope.operations", {
        "envelope.operation": "encrypt",
        "envelope.key_ref": provider.keyRef,
      }),
    ).toBe(1);
  });
});

describe("review: canaries through check(), bulk calls and hostile values", () => {
  it("no plaintext, context key or value, key material, wrapped key or message in any metric or span", async () => {
    const otel = otelHarness();
    const kms = kmsLike();
    const PLAINTEXT = "CANARY-PT-93e1";
    const CTX_KEY = "canary_ck_51aa";
    const CTX_VALUE = "CANARY-CV-0c7d";
    const context = { [CTX_KEY]: CTX_VALUE };
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: kms.provider }));
    otel.telemetry.observe(envelope);
    await envelope.check();
    const sealed = await envelope.encryptMany(
      Array.from({ length: 5 }, () => ({ plaintext: PLAINTEXT, context })),
      { output: "text" },
    );
    const texts = sealed.map((s) => (s.ok ? s.value : ""));
    const cold = new Envelope(otel.telemetry.instrument({ encrypt: kms.provider }));
    await cold.decryptMany([
      ...texts.map((s) => ({ sealed: s, context })),
      { sealed: texts[0]!, context: { [CTX_KEY]: `${CTX_VALUE}-wrong` } },
      { sealed: `${texts[1]!.slice(0, 30)}`, context },
      { sealed: planted(`ref-${CTX_VALUE}`), context },
    ]);
    const secrets = [
      PLAINTEXT,
      CTX_KEY,
      CTX_VALUE,
      kms.masterKey.toString("hex"),
      kms.masterKey.toString("base64"),
      ...texts.map((t) => t.slice(4, 40)),
    ];
    const dump = JSON.stringify({
      metrics: await otel.resourceMetrics(),
      spans: otel.spans().map((s) => ({
        name: s.name,
        attributes: s.attributes,
        status: s.status,
        events: s.events,
      })),
    });
    for (const secret of secrets) expect(dump, secret).not.toContain(secret);
  });
});
