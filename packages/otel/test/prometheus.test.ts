import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Envelope } from "@envelope/core";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { describe, expect, it } from "vitest";
import { envelopeTelemetry } from "../src/index.js";
import { aesProvider, failingProvider } from "./harness.js";

const README = new URL("../README.md", import.meta.url);

/** The YAML block under the README's Prometheus heading: the rules operators copy. */
function documentedRules(): string {
  const text = readFileSync(README, "utf8");
  const section = text.split("\n## Watching it in Prometheus")[1]?.split("\n## ")[0];
  const block = section?.match(/```yaml\n([\s\S]*?)```/)?.[1];
  if (!block) throw new Error("README: no yaml block under 'Watching it in Prometheus'");
  return block;
}

/** Sample lines of a real scrape: metric name and label pairs. */
function parseScrape(text: string): { name: string; labels: Map<string, string> }[] {
  return text
    .split("\n")
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => {
      const name = line.match(/^[a-zA-Z_:][a-zA-Z0-9_:]*/)![0];
      const labels = new Map(
        [...line.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [
          m[1]!,
          m[2]!,
        ]),
      );
      return { name, labels };
    });
}

async function scrape(exporter: PrometheusExporter): Promise<string> {
  const server = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  try {
    const { port } = server.address() as AddressInfo;
    return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } finally {
    server.close();
  }
}

describe("the README's Prometheus rules, against a real scrape", () => {
  it("name only series and labels that @opentelemetry/exporter-prometheus exposes", async () => {
    const exporter = new PrometheusExporter({ preventServerStart: true });
    const telemetry = envelopeTelemetry({
      meterProvider: new MeterProvider({ readers: [exporter] }),
    });
    const oldKey = aesProvider();
    const written = await new Envelope({ encrypt: oldKey }).encrypt("old", { context: { t: "u" } });
    const envelope = new Envelope(
      telemetry.instrument({ encrypt: aesProvider(), decrypt: [oldKey] }),
    );
    telemetry.observe(envelope, { client: "api" });
    const sealed = await envelope.encrypt("x", { context: { t: "u" } });
    await envelope.decrypt(sealed, { context: { t: "u" } }); // miss
    await envelope.decrypt(sealed, { context: { t: "u" } }); // hit
    await envelope.decrypt(written, { context: { t: "u" } }); // read through the old key
    await expect(envelope.decrypt(sealed, { context: { t: "v" } })).rejects.toThrow();
    const failing = new Envelope(telemetry.instrument({ encrypt: failingProvider() }));
    await expect(failing.encrypt("x")).rejects.toThrow();

    const samples = parseScrape(await scrape(exporter));
    const rules = documentedRules();
    const selectors = [...rules.matchAll(/\b(envelope_[a-z_]+)(?:\{([^}]*)\})?\[/g)];
    expect(selectors.length).toBeGreaterThan(5);
    for (const [, name, matchers = ""] of selectors) {
      const wanted = [...matchers.matchAll(/([a-z_]+)\s*=\s*"([^"]*)"/g)].map((m) => [
        m[1]!,
        m[2]!,
      ]);
      const found = samples.some(
        (s) => s.name === name && wanted.every(([label, value]) => s.labels.get(label!) === value),
      );
      expect(found, `${name}{${matchers}} matches no scraped sample`).toBe(true);
    }
    // Each rule's `by (…)` labels must be on the series that rule reads.
    for (const expr of rules.split(/\bexpr:/).slice(1)) {
      const names = new Set([...expr.matchAll(/\b(envelope_[a-z_]+)(?=\{|\[)/g)].map((m) => m[1]));
      for (const [, list] of expr.matchAll(/\bby \(([^)]*)\)/g)) {
        for (const label of list!.split(",").map((l) => l.trim())) {
          expect(
            samples.some((s) => names.has(s.name) && s.labels.has(label)),
            `label ${label} is on no scraped sample of ${[...names].join(", ")}`,
          ).toBe(true);
        }
      }
    }
    // The rotation rule's claim: a read through the old key is counted under its reference.
    expect(
      samples.some(
        (s) =>
          s.name === "envelope_operations_total" &&
          s.labels.get("envelope_operation") === "decrypt" &&
          s.labels.get("envelope_key_ref") === oldKey.keyRef,
      ),
    ).toBe(true);
  });
});
