import type { Counter, Histogram, Meter } from "@opentelemetry/api";
import { DURATION_BUCKETS_S, METRICS } from "./names.js";

/** The synchronous instruments, created once per telemetry object. */
export interface Instruments {
  readonly operations: Counter;
  readonly operationDuration: Histogram;
  readonly kmsCalls: Counter;
  readonly kmsErrors: Counter;
  readonly kmsDuration: Histogram;
}

export function createInstruments(meter: Meter): Instruments {
  const duration = (name: string, description: string) =>
    meter.createHistogram(name, {
      description,
      unit: "s",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    });
  return {
    operations: meter.createCounter(METRICS.operations, {
      description: "Envelope operations (encrypt, decrypt, rewrap, wrap, unwrap), by outcome.",
      unit: "{operation}",
    }),
    operationDuration: duration(
      METRICS.operationDuration,
      "Duration of Envelope operations, as measured by the client's audit events.",
    ),
    kmsCalls: meter.createCounter(METRICS.kmsCalls, {
      description: "Calls to a key provider (KMS): wrap, unwrap, generate_data_key, rewrap.",
      unit: "{call}",
    }),
    kmsErrors: meter.createCounter(METRICS.kmsErrors, {
      description: "Failed key provider (KMS) calls, by error code.",
      unit: "{error}",
    }),
    kmsDuration: duration(METRICS.kmsDuration, "Duration of key provider (KMS) calls."),
  };
}
