// CPU cost of telemetry on the hottest path, a warm 64 B decrypt: no hook, a no-op audit
// hook, @envelope/otel with the metrics SDK, and @envelope/otel with the API alone (no SDK
// registered). CPU time per op (process.cpuUsage), rounds interleaved; min and median of 15.
// Run after `pnpm build`: node packages/otel/scripts/overhead.mjs
import { randomBytes } from "node:crypto";
import { Envelope, localAesProvider } from "@envelope/core";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { envelopeTelemetry } from "../dist/index.js";

const ROUNDS = 15;
const PER_ROUND = 20_000;
const provider = localAesProvider({ keys: randomBytes(32) });
const reader = new PeriodicExportingMetricReader({
  exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
  exportIntervalMillis: 3_600_000,
});
const withSdk = envelopeTelemetry({
  meterProvider: new MeterProvider({ readers: [reader] }),
  tracerProvider: new BasicTracerProvider(),
});
const subjects = {
  "no hook": new Envelope({ encrypt: provider }),
  "no-op onAudit": new Envelope({ encrypt: provider, onAudit: () => {} }),
  "otel + metrics SDK": new Envelope(withSdk.instrument({ encrypt: provider })),
  "otel, API only": new Envelope(envelopeTelemetry().instrument({ encrypt: provider })),
};
const context = { table: "users", column: "email", id: "42" };
const sealed = new Map();
for (const [name, envelope] of Object.entries(subjects)) {
  sealed.set(name, await envelope.encrypt(randomBytes(64), { context }));
  for (let i = 0; i < PER_ROUND; i++) await envelope.decrypt(sealed.get(name), { context });
}
const results = new Map(Object.keys(subjects).map((name) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, envelope] of Object.entries(subjects)) {
    const value = sealed.get(name);
    const start = process.cpuUsage();
    for (let i = 0; i < PER_ROUND; i++) await envelope.decrypt(value, { context });
    const used = process.cpuUsage(start);
    results.get(name).push((used.user + used.system) / PER_ROUND);
  }
}
for (const [name, values] of results) {
  values.sort((a, b) => a - b);
  const median = values[Math.floor(values.length / 2)];
  process.stdout.write(
    `${name.padEnd(20)} µs CPU/op  min ${values[0].toFixed(2)}  median ${median.toFixed(2)}\n`,
  );
}
