import { readdirSync, readFileSync } from "node:fs";
import { Envelope } from "@envelope/core";
import { metrics, trace } from "@opentelemetry/api";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";
import {
  ATTR,
  envelopeTelemetry,
  METRICS,
  SCOPE_NAME,
  SCOPE_VERSION,
  SPANS,
} from "../src/index.js";
import { aesProvider } from "./harness.js";

describe("defaults and docs", () => {
  it("uses the global meter and tracer providers when none are given", async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const spans = new InMemorySpanExporter();
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
    );
    try {
      const telemetry = envelopeTelemetry();
      const envelope = new Envelope(telemetry.instrument({ encrypt: aesProvider() }));
      await envelope.encrypt("x");
      await reader.forceFlush();
      const scope = exporter.getMetrics()[0]!.scopeMetrics[0]!;
      expect(scope.scope).toMatchObject({ name: SCOPE_NAME, version: SCOPE_VERSION });
      expect(scope.metrics.map((m) => m.descriptor.name)).toContain(METRICS.operations);
      expect(spans.getFinishedSpans().map((s) => s.name)).toEqual([SPANS.wrap]);
    } finally {
      metrics.disable();
      trace.disable();
    }
  });

  it("the README documents every metric, attribute and span, and the scope version is the package's", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const rows = readme.split("\n").filter((line) => line.startsWith("| `"));
    for (const name of [
      ...Object.values(METRICS),
      ...Object.values(ATTR),
      ...Object.values(SPANS),
    ]) {
      expect(
        rows.some((row) => row.includes(`\`${name}\``)),
        name,
      ).toBe(true);
    }
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    expect(SCOPE_VERSION).toBe(pkg.version);
  });

  it("core neither depends on nor imports @opentelemetry (it stays optional)", () => {
    const core = new URL("../../core/", import.meta.url);
    const pkg = readFileSync(new URL("package.json", core), "utf8");
    expect(pkg).not.toContain("@opentelemetry");
    const sources = readdirSync(new URL("src/", core), { recursive: true, encoding: "utf8" });
    const ts = sources.filter((f) => f.endsWith(".ts"));
    expect(ts.length).toBeGreaterThan(20);
    for (const file of ts) {
      expect(readFileSync(new URL(`src/${file}`, core), "utf8"), file).not.toContain(
        "@opentelemetry",
      );
    }
  });
});
