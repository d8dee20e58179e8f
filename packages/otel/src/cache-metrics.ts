import type { Envelope } from "@envelope/core";
import type { Attributes, BatchObservableCallback, Meter, Observable } from "@opentelemetry/api";
import { METRICS } from "./names.js";

type Stats = ReturnType<Envelope["cacheStats"]>;

// Each cumulative counter of `cacheStats()` and the instrument that reports it.
const COUNTERS: readonly [keyof Stats, string, string, string][] = [
  [
    "hits",
    METRICS.cacheHits,
    "Data-key lookups served by the unwrap cache (no KMS call).",
    "{hit}",
  ],
  ["misses", METRICS.cacheMisses, "Unwrap-cache misses that started a KMS unwrap.", "{miss}"],
  [
    "evictions",
    METRICS.cacheEvictions,
    "Data keys dropped from the unwrap cache for size or age (each one zeroed).",
    "{eviction}",
  ],
  [
    "inflightJoins",
    METRICS.cacheInflightJoins,
    "Unwrap-cache misses that joined an unwrap already in flight instead of calling the KMS.",
    "{join}",
  ],
  [
    "dataKeysReused",
    METRICS.dataKeyReuses,
    "Encrypts that reused a recent data key (opt-in data-key reuse) instead of a new one.",
    "{encrypt}",
  ],
];

/**
 * Reports `envelope.cacheStats()` through observable instruments, read once per collection
 * (nothing is counted on the hot path). Returns a function that stops the reporting.
 */
export function observeCache(meter: Meter, envelope: Envelope, attributes: Attributes): () => void {
  const counters = COUNTERS.map(
    ([field, name, description, unit]) =>
      [field, meter.createObservableCounter(name, { description, unit })] as const,
  );
  const size = meter.createObservableUpDownCounter(METRICS.cacheSize, {
    description: "Data keys held in the unwrap cache now.",
    unit: "{key}",
  });
  const callback: BatchObservableCallback = (result) => {
    const stats = envelope.cacheStats();
    for (const [field, instrument] of counters)
      result.observe(instrument, stats[field], attributes);
    result.observe(size, stats.size, attributes);
  };
  const observables: Observable[] = [...counters.map(([, instrument]) => instrument), size];
  meter.addBatchObservableCallback(callback, observables);
  return () => meter.removeBatchObservableCallback(callback, observables);
}
