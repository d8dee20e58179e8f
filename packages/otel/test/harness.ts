import { randomBytes } from "node:crypto";
import { type KeyProvider, localAesProvider, ProviderError } from "@envelope/core";
import type { Attributes } from "@opentelemetry/api";
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { envelopeTelemetry, type TelemetryOptions } from "../src/index.js";

/** One exported data point, flattened: the metric it belongs to and its value. */
export interface Point {
  name: string;
  unit: string;
  description: string;
  attributes: Attributes;
  /** Sum or gauge value; for a histogram, its count. */
  value: number;
  /** Histograms only: the sum of the recorded values. */
  sum?: number;
}

/**
 * The real OpenTelemetry SDK with its in-memory exporters: metrics read by a periodic
 * reader (flushed on demand, cumulative), spans exported as each one ends.
 */
export function otelHarness(
  options: Omit<TelemetryOptions, "meterProvider" | "tracerProvider"> = {},
) {
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 3_600_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(spanExporter)],
  });
  const telemetry = envelopeTelemetry({ ...options, meterProvider, tracerProvider });

  /** Every metric as exported now (cumulative since start). */
  async function resourceMetrics(): Promise<ResourceMetrics[]> {
    metricExporter.reset();
    await reader.forceFlush();
    return metricExporter.getMetrics();
  }

  async function points(name?: string): Promise<Point[]> {
    const out: Point[] = [];
    for (const rm of await resourceMetrics()) {
      for (const scope of rm.scopeMetrics) {
        for (const metric of scope.metrics) {
          if (name !== undefined && metric.descriptor.name !== name) continue;
          for (const p of metric.dataPoints as DataPoint<number | Histogram>[]) {
            const v = p.value;
            out.push({
              name: metric.descriptor.name,
              unit: metric.descriptor.unit,
              description: metric.descriptor.description,
              attributes: p.attributes,
              value: typeof v === "number" ? v : v.count,
              ...(typeof v === "number" ? {} : { sum: v.sum ?? 0 }),
            });
          }
        }
      }
    }
    return out;
  }

  /** The value of the one point of `name` whose attributes include `match` (0 if none). */
  async function value(name: string, match: Attributes = {}): Promise<number> {
    const found = (await points(name)).filter((p) =>
      Object.entries(match).every(([k, v]) => p.attributes[k] === v),
    );
    return found.reduce((total, p) => total + p.value, 0);
  }

  const spans = (): ReadableSpan[] => spanExporter.getFinishedSpans();

  return { telemetry, meterProvider, tracerProvider, resourceMetrics, points, value, spans };
}

/** A local-aes provider with a fresh random key. */
export function aesProvider(): KeyProvider {
  return localAesProvider({ keys: randomBytes(32) });
}

/** A provider whose every call fails, with a typed error or an untyped one. */
export function failingProvider(error: unknown = throttled()): KeyProvider {
  const inner = aesProvider();
  return {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    wrap: async () => {
      throw error;
    },
    unwrap: async () => {
      throw error;
    },
  };
}

export function throttled(): ProviderError {
  return new ProviderError("ENVELOPE_KMS_THROTTLED", "local-aes: throttled, retry later.");
}
