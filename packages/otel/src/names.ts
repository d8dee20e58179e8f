/**
 * Metric and attribute names: one place, so the README table, dashboards and tests agree.
 * Durations are in seconds, as the OpenTelemetry semantic conventions ask.
 */

/** Instrumentation scope of every meter and tracer this package creates. */
export const SCOPE_NAME = "@envelope/otel";
export const SCOPE_VERSION = "0.1.0";

/** Attribute keys. Values are ids, key references, codes and booleans: never data. */
export const ATTR = {
  operation: "envelope.operation",
  provider: "envelope.provider",
  keyRef: "envelope.key_ref",
  outcome: "envelope.outcome",
  errorType: "error.type",
  cacheHit: "envelope.cache_hit",
  dataKeyReused: "envelope.data_key_reused",
  kmsOperation: "envelope.kms.operation",
  sourceKeyRef: "envelope.source_key_ref",
  client: "envelope.client",
} as const;

/** Metric names, as exported. */
export const METRICS = {
  operations: "envelope.operations",
  operationDuration: "envelope.operation.duration",
  kmsCalls: "envelope.kms.calls",
  kmsErrors: "envelope.kms.errors",
  kmsDuration: "envelope.kms.duration",
  cacheHits: "envelope.cache.hits",
  cacheMisses: "envelope.cache.misses",
  cacheEvictions: "envelope.cache.evictions",
  cacheInflightJoins: "envelope.cache.inflight_joins",
  cacheSize: "envelope.cache.size",
  dataKeyReuses: "envelope.data_key.reuses",
} as const;

/** Span names, one per KMS call kind. */
export const SPANS = {
  wrap: "envelope.kms.wrap",
  unwrap: "envelope.kms.unwrap",
  generate_data_key: "envelope.kms.generate_data_key",
  rewrap: "envelope.kms.rewrap",
} as const;

export type KmsOperation = keyof typeof SPANS;

/**
 * Latency buckets in seconds, from a warm decrypt (a few µs) to a slow KMS call (seconds).
 * The SDK's default buckets are made for milliseconds and would put every call in one.
 */
export const DURATION_BUCKETS_S = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
  0.25, 0.5, 1, 2.5, 5, 10,
];
