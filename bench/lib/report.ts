import { cpus, totalmem } from "node:os";
import type { BreakdownResult } from "../cases/breakdown.js";
import { KMS_LATENCY_MS, type KmsResult, REPEATS, SEQUENTIAL_SAMPLE } from "../cases/kms.js";
import type { MemoryResult } from "../cases/memory.js";
import { fmt, type MicroResult, ROUNDS, SIZES, SLICE_MS, WARMUP_MS } from "../cases/micro.js";
import { type RewrapResult, ROTATE_CONCURRENCY } from "../cases/rewrap.js";
import type { TargetResult } from "./targets.js";

export interface BenchResults {
  meta: Record<string, string | number>;
  micro: MicroResult[];
  breakdown: BreakdownResult[];
  kms: KmsResult[];
  rewrap: RewrapResult[];
  memory: MemoryResult;
  targets: TargetResult[];
}

export function machine(): Record<string, string | number> {
  const cpu = cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    openssl: process.versions.openssl ?? "",
    cpu: `${cpu[0]?.model ?? "unknown"} × ${cpu.length}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    platform: `${process.platform} ${process.arch}`,
    mallocMmapThreshold: process.env.MALLOC_MMAP_THRESHOLD_ ?? "",
  };
}

const us = (n: number | undefined) => (n === undefined ? "—" : fmt(n));

/** The markdown report: meta, targets, then every table. */
export function toMarkdown(r: BenchResults): string {
  const lines: string[] = [];
  lines.push(`# Benchmark results`, "");
  lines.push(
    `${r.meta.date} · Node ${r.meta.node} · OpenSSL ${r.meta.openssl} · ${r.meta.cpu} · ${r.meta.memoryGiB} GiB · MALLOC_MMAP_THRESHOLD_=${r.meta.mallocMmapThreshold} · total ${r.meta.totalSeconds} s`,
    "",
  );
  lines.push("## Targets (issue 5)", "", "| target | this run | met |", "| --- | --- | --- |");
  for (const t of r.targets)
    lines.push(`| ${t.target} | ${t.figure} | ${t.met ? "✅ met" : "❌ not met"} |`);
  lines.push("");
  for (const [size] of SIZES) {
    lines.push(`## ${size} values`, "");
    lines.push(
      "| subject | encrypt ops/s | p50 µs | p99 µs | decrypt ops/s | p50 µs | p99 µs |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    const subjects = [...new Set(r.micro.filter((m) => m.size === size).map((m) => m.subject))];
    for (const subject of subjects) {
      const e = r.micro.find((m) => m.size === size && m.subject === subject && m.op === "encrypt");
      const d = r.micro.find((m) => m.size === size && m.subject === subject && m.op === "decrypt");
      const cells = (m: MicroResult | undefined) =>
        m
          ? [
              `${fmt(m.opsPerSec)}${size === "1 MiB" ? ` (${fmt(m.mibPerSec)} MiB/s)` : ""}`,
              us(m.p50Us),
              us(m.p99Us),
            ]
          : ["—", "—", "—"];
      lines.push(`| ${subject} | ${[...cells(e), ...cells(d)].join(" | ")} |`);
    }
    lines.push("");
  }
  lines.push(
    `## Simulated KMS (${KMS_LATENCY_MS} ms per call, 64 B values)`,
    "",
    "| case | records (run) | rec/s | p50 µs | p99 µs | KMS calls | per 1,000 records | wall time for all |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const k of r.kms) {
    const projected = k.ran < k.records ? " (projected)" : "";
    lines.push(
      `| ${k.case} | ${k.records.toLocaleString("en-US")} (${k.ran.toLocaleString("en-US")}) | ${fmt(k.opsPerSec)} | ${us(k.p50Us)} | ${us(k.p99Us)} | ${k.kmsCalls.toLocaleString("en-US")} | ${k.kmsPer1000.toFixed(2)} | ${k.projectedSeconds.toFixed(2)} s${projected} |`,
    );
  }
  lines.push(
    "",
    "## Rewrap after a master-key rotation",
    "",
    "| case | records | IKs | KMS calls | wall time | note |",
    "| --- | ---: | ---: | ---: | ---: | --- |",
  );
  for (const w of r.rewrap) {
    lines.push(
      `| ${w.case} | ${w.records.toLocaleString("en-US")} | ${w.intermediateKeys ?? "—"} | ${w.kmsCalls.toLocaleString("en-US")} | ${w.seconds < 1 ? `${(w.seconds * 1000).toFixed(1)} ms` : `${w.seconds.toFixed(2)} s`}${w.measured ? "" : " (projected)"} | ${w.note} |`,
    );
  }
  const m = r.memory;
  lines.push(
    "",
    "## Memory",
    "",
    `${m.encrypts.toLocaleString("en-US")} hierarchical encrypts + ${m.decrypts.toLocaleString("en-US")} decrypts of distinct records (${m.operations.toLocaleString("en-US")} operations) in ${m.seconds.toFixed(1)} s; ${m.intermediateKeys} intermediate keys, ${m.kmsCalls} KMS calls.`,
    "",
    `Heap after full GC at 0%, 10%, …, 100%: ${m.heapMiB.map((h) => h.toFixed(1)).join(", ")} MiB. Growth from 10% to 100%: ${m.heapGrowthMiB.toFixed(2)} MiB. Unwrap cache at the end: ${m.unwrapCacheSize} entries (bounded at 1,000). Peak RSS of the whole run: ${m.peakRssMiB.toFixed(0)} MiB.`,
    "",
    "## Where a 64 B operation spends its time (each step timed alone)",
    "",
    "| step | µs/op |",
    "| --- | ---: |",
  );
  for (const b of r.breakdown) lines.push(`| ${b.step} | ${b.us.toFixed(2)} |`);
  lines.push(
    "",
    "## Method",
    "",
    `One process runs every case. Encrypt/decrypt cases of one size are measured interleaved: ${WARMUP_MS} ms warm-up each, then ${ROUNDS} rounds in which every case gets one ${SLICE_MS} ms slice (at least 2 ops); ops/s = the case's best slice (the machine is shared), p50/p99 over all its samples. Decrypt opens one sealed value repeatedly: cold for subjects without a cache, warm with one. Direct-mode sequential cases with the ${KMS_LATENCY_MS} ms KMS run ${SEQUENTIAL_SAMPLE} records and project the total; the warm-cache reference and the hierarchical KMS cases run ${REPEATS} interleaved rounds and keep each one's best. rotateMaster concurrency ${ROTATE_CONCURRENCY}.`,
    "",
  );
  return lines.join("\n");
}
