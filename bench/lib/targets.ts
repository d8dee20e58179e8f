import type { BreakdownResult } from "../cases/breakdown.js";
import { COLD_CPU_TARGET_US } from "../cases/cold.js";
import { AWAKE, KMS_ALONE_CASE, type KmsResult } from "../cases/kms.js";
import type { MemoryResult } from "../cases/memory.js";
import type { MicroResult } from "../cases/micro.js";
import type { RewrapResult } from "../cases/rewrap.js";

export interface TargetResult {
  target: string;
  figure: string;
  met: boolean;
}

const KMS_MS = 10;
const x = (n: number) => `${n >= 10 ? n.toFixed(0) : n.toFixed(2)}×`;
// One decimal, rounded down: every percentage target is a floor ("≥ 95%"), so a figure that
// missed it must not print as the target itself (0.947 printed "95%" beside NOT MET).
const pct = (n: number) => `${(Math.floor(n * 1000) / 10).toFixed(1)}%`;

/** Evaluates every target of issue 5 from this run's measurements. */
export function evaluateTargets(
  micro: MicroResult[],
  kms: KmsResult[],
  rewrap: RewrapResult[],
  memory: MemoryResult,
  breakdown: readonly BreakdownResult[] = [],
): TargetResult[] {
  const get = (subject: string, size: string, op: "encrypt" | "decrypt"): number => {
    const r = micro.find((m) => m.subject === subject && m.size === size && m.op === op);
    if (!r) throw new Error(`missing result: ${subject} ${size} ${op}`);
    return r.opsPerSec;
  };
  const floor = "floor node:crypto AES-256-GCM";
  const out: TargetResult[] = [];

  // 1. Warm-cache decrypt vs the floor.
  {
    const ratio =
      get(floor, "64 B", "decrypt") / get("envelope local-aes warm cache", "64 B", "decrypt");
    out.push({
      target: "Warm-cache decrypt, 64 B: ≤ 3× the floor's time per op",
      figure: `${x(ratio)} the floor's time`,
      met: ratio <= 3,
    });
    // Throughput decides; the median ratio is shown too: at 1 MiB the mean is dominated by
    // GC pauses of 1 MiB buffers while the median shows the per-operation work.
    const p50 = (subject: string, op: "encrypt" | "decrypt") =>
      micro.find((m) => m.subject === subject && m.size === "1 MiB" && m.op === op)!.p50Us!;
    const dec =
      get("envelope local-aes warm cache", "1 MiB", "decrypt") / get(floor, "1 MiB", "decrypt");
    const decP50 = p50(floor, "decrypt") / p50("envelope local-aes warm cache", "decrypt");
    out.push({
      target: "Warm-cache decrypt, 1 MiB: ≥ 85% of the floor's throughput",
      figure: `${pct(dec)} (median op: ${pct(decP50)})`,
      met: dec >= 0.85,
    });
    const enc =
      get("envelope local-aes data-key reuse", "1 MiB", "encrypt") / get(floor, "1 MiB", "encrypt");
    const encP50 = p50(floor, "encrypt") / p50("envelope local-aes data-key reuse", "encrypt");
    out.push({
      target: "Warm (data-key reuse) encrypt, 1 MiB: ≥ 85% of the floor's throughput",
      figure: `${pct(enc)} (median op: ${pct(encP50)})`,
      met: enc >= 0.85,
    });
  }
  // 2. local-aes vs ESDK raw AES (its committing non-signing suite is its fastest, so the strict bar).
  for (const size of ["64 B", "1 KiB"]) {
    for (const op of ["encrypt", "decrypt"] as const) {
      const ours = get("envelope local-aes", size, op);
      const fast = ours / get("esdk raw-aes committing", size, op);
      const dflt = ours / get("esdk raw-aes default", size, op);
      out.push({
        target: `local-aes vs ESDK raw AES, ${size} ${op}: ≥ 10×`,
        figure: `${x(fast)} (committing suite), ${x(dflt)} (default suite)`,
        met: fast >= 10 && dflt >= 10,
      });
    }
  }
  // 3. local-rsa vs ESDK raw RSA.
  for (const size of ["64 B", "1 KiB"]) {
    const enc =
      get("envelope local-rsa", size, "encrypt") / get("esdk raw-rsa committing", size, "encrypt");
    const encD =
      get("envelope local-rsa", size, "encrypt") / get("esdk raw-rsa default", size, "encrypt");
    out.push({
      target: `local-rsa vs ESDK raw RSA, ${size} encrypt: ≥ 5×`,
      figure: `${x(enc)} (committing), ${x(encD)} (default)`,
      met: enc >= 5 && encD >= 5,
    });
    const cold =
      get("floor RSA-OAEP-3072 (one key op)", "64 B", "decrypt") /
      get("envelope local-rsa", size, "decrypt");
    out.push({
      target: `local-rsa cold decrypt, ${size}: within 10% of one RSA-OAEP-3072 private-key op`,
      figure: `${cold.toFixed(3)}× the bare op's time`,
      met: cold <= 1.1,
    });
    const warm =
      get("envelope local-rsa warm cache", size, "decrypt") /
      get("esdk raw-rsa committing caching CMM", size, "decrypt");
    const warmD =
      get("envelope local-rsa warm cache", size, "decrypt") /
      get("esdk raw-rsa default caching CMM", size, "decrypt");
    out.push({
      target: `local-rsa warm-cache decrypt vs ESDK caching CMM, ${size}: ≥ 30×`,
      figure: `${x(warm)} (committing), ${x(warmD)} (default)`,
      met: warm >= 30 && warmD >= 30,
    });
  }
  // 4. vs the ESDK default suite, every 64 B / 1 KiB case not bound by an RSA private-key op.
  {
    const pairs: [string, string, "encrypt" | "decrypt"][] = [
      ["envelope local-aes", "esdk raw-aes default", "encrypt"],
      ["envelope local-aes", "esdk raw-aes default", "decrypt"],
      ["envelope local-aes warm cache", "esdk raw-aes default caching CMM", "decrypt"],
      ["envelope local-aes data-key reuse", "esdk raw-aes default caching CMM", "encrypt"],
      ["envelope hierarchical", "esdk raw-aes default", "encrypt"],
      ["envelope hierarchical", "esdk raw-aes default", "decrypt"],
      ["envelope local-rsa", "esdk raw-rsa default", "encrypt"],
      ["envelope local-rsa warm cache", "esdk raw-rsa default caching CMM", "decrypt"],
      ["envelope local-rsa data-key reuse", "esdk raw-rsa default caching CMM", "encrypt"],
    ];
    for (const size of ["64 B", "1 KiB"]) {
      const ratios = pairs.map(([a, b, op]) => ({
        label: `${a} ${op}`,
        r: get(a, size, op) / get(b, size, op),
      }));
      const worst = ratios.reduce((m, r) => (r.r < m.r ? r : m));
      out.push({
        target: `vs ESDK default suite, every ${size} case not bound by an RSA private-key op: ≥ 50×`,
        figure: `lowest ${x(worst.r)} (${worst.label}); ${ratios.filter((r) => r.r >= 50).length}/${ratios.length} cases ≥ 50×`,
        met: worst.r >= 50,
      });
    }
  }
  // The simulated KMS alone, plain and with the loop kept awake, same run: the references
  // direct mode (5) and the bulk read (issue 15, item 3) are shown beside, to tell how much
  // of a gap is the KMS's timers and not Envelope.
  const alone = kms.find((r) => r.case === KMS_ALONE_CASE);
  const aloneAwake = kms.find((r) => r.case === `${KMS_ALONE_CASE}${AWAKE}`);
  // 5. 10 ms KMS.
  {
    const k = (name: string) => {
      const r = kms.find((m) => m.case === name);
      if (!r) throw new Error(`missing KMS result: ${name}`);
      return r;
    };
    const warm = k("warm-cache decrypt (reference rate)").opsPerSec;
    for (const name of [
      "hierarchical: encrypt 100,000, sequential",
      "hierarchical: decrypt 10,000 distinct, sequential",
      "hierarchical: decrypt 10,000 distinct, 64 concurrent",
    ]) {
      const r = k(name);
      out.push({
        target: `10 ms KMS, ${name}: ≥ half the warm-cache rate, KMS calls per intermediate key`,
        figure: `${pct(r.opsPerSec / warm)} of ${Math.round(warm).toLocaleString("en-US")}/s; ${r.kmsCalls} KMS calls for ${r.ran.toLocaleString("en-US")} records`,
        met: r.opsPerSec >= warm / 2 && r.kmsCalls <= Math.ceil(r.ran / 100_000) + 1,
      });
    }
    const direct = k("direct: decrypt 10,000 distinct, 64 concurrent");
    const direct3 = k("direct: decrypt 10,000 distinct, 64 concurrent, suite 0x03");
    const bound = (64 / 10) * 1000;
    const rate = (r: KmsResult) =>
      `${Math.round(r.opsPerSec).toLocaleString("en-US")}/s = ${pct(r.opsPerSec / bound)}`;
    const ofAlone = (r: KmsResult) =>
      alone ? `, ${pct(r.opsPerSec / alone.opsPerSec)} of the KMS alone` : "";
    const aloneNote = alone
      ? ` (the simulated KMS alone, no Envelope: ${rate(alone)}; judged on 64 / 10 ms)`
      : "";
    out.push({
      target: "10 ms KMS, direct mode, 64 concurrent decrypts: ≥ 90% of 64 / 10 ms (6,400/s)",
      figure: `${rate(direct)}${ofAlone(direct)}${aloneNote}`,
      met: direct.opsPerSec >= 0.9 * bound,
    });
    // Issue 15, item 2: hold ≥ 0.95 of the bound at 64 in flight. Judged on the plain run;
    // the awake run (the KMS's timers on time) is shown beside it as evidence of where the
    // rest of the bound goes.
    const directAwake = kms.find((r) => r.case === `${direct.case}${AWAKE}`);
    const awakeNote =
      directAwake && aloneAwake
        ? `; with the event loop kept awake, so that the simulated KMS's timers fire when due: suite 0x01 ${rate(directAwake)}, the KMS alone ${rate(aloneAwake)}`
        : "";
    out.push({
      target: "10 ms KMS, direct mode, 64 concurrent decrypts: ≥ 95% of 64 / 10 ms (issue 15)",
      figure: `suite 0x01 ${rate(direct)}${ofAlone(direct)}; suite 0x03 ${rate(direct3)}${ofAlone(direct3)}${aloneNote}${awakeNote}`,
      met: direct.opsPerSec >= 0.95 * bound,
    });
  }
  // Issue 15, item 2: CPU per cold record besides the unwrap (breakdown's cold rows).
  {
    const cold = breakdown.filter((b) => b.step.startsWith("cold CPU per record"));
    const worst = (suite: string) =>
      Math.max(...cold.filter((b) => b.step.includes(suite)).map((b) => b.us));
    if (cold.length > 0) {
      for (const [suite, note] of [
        ["suite 0x01", "the default"],
        ["suite 0x03", "opt-in writer setting suite: 3"],
      ] as const) {
        const us = worst(suite);
        out.push({
          target: `Cold decrypt (data key not cached), ${suite} (${note}): ≤ ${COLD_CPU_TARGET_US} µs CPU per record besides the unwrap`,
          figure: `${us.toFixed(1)} µs (the worse of sequential and 64 in flight; the mean of 200,000 reads each, in a steady state)`,
          met: us <= COLD_CPU_TARGET_US,
        });
      }
    }
  }
  // Issue 15, item 3: bulk decrypt of rows read from PostgreSQL (skipped without a database).
  {
    const bulk = kms.find(
      (m) =>
        m.case.startsWith("bulk: decryptMany") &&
        !m.case.includes("0x03") &&
        !m.case.endsWith(AWAKE),
    );
    const bulk3 = kms.find(
      (m) => m.case.startsWith("bulk: decryptMany") && m.case.includes("0x03"),
    );
    const loop = kms.find((m) => m.case.startsWith("bulk: loop"));
    if (bulk && loop) {
      const bound = (bulk.concurrency / KMS_MS) * 1000;
      const endToEnd = (m: KmsResult) =>
        `${Math.round(m.endToEndPerSec ?? 0).toLocaleString("en-US")} rows/s = ${pct((m.endToEndPerSec ?? 0) / bound)}`;
      // One unwrap per row, so the simulated KMS alone (same run) caps rows/s as it caps records/s.
      const ofAlone = alone
        ? `; the simulated KMS alone: ${Math.round(alone.opsPerSec).toLocaleString("en-US")} unwraps/s (${pct(alone.opsPerSec / bound)}), decryptMany ${pct(bulk.opsPerSec / alone.opsPerSec)} of it`
        : "";
      // Judged on the plain run; the awake one (the KMS's timers on time) shown beside it.
      const bulkAwake = kms.find((m) => m.case === `${bulk.case}${AWAKE}`);
      const awakeNote = bulkAwake
        ? `; with the event loop kept awake, so that the simulated KMS's timers fire when due: ${Math.round(bulkAwake.opsPerSec).toLocaleString("en-US")} rows/s = ${pct(bulkAwake.opsPerSec / bound)}${aloneAwake ? `, the KMS alone ${pct(aloneAwake.opsPerSec / bound)}` : ""}`
        : "";
      out.push({
        target: `Bulk decrypt, rows from PostgreSQL, 10 ms KMS: ≥ 90% of ${bulk.concurrency} / 10 ms (${bound.toLocaleString("en-US")} rows/s)`,
        figure: `${Math.round(bulk.opsPerSec).toLocaleString("en-US")} rows/s = ${pct(bulk.opsPerSec / bound)}${bulk3 ? ` (suite 0x03 values: ${Math.round(bulk3.opsPerSec).toLocaleString("en-US")} rows/s = ${pct(bulk3.opsPerSec / bound)})` : ""} (loop of await decrypt: ${Math.round(loop.opsPerSec)} rows/s); ${bulk.kmsPer1000.toFixed(0)} KMS calls per 1,000 rows; both timed from the SELECT's rows in hand to the last value opened, best of 3 rounds; from sending the SELECT (the query first, no KMS call out): ${endToEnd(bulk)}${bulk3 ? `, suite 0x03 ${endToEnd(bulk3)}` : ""}${ofAlone}${awakeNote}`,
        met: bulk.opsPerSec >= 0.9 * bound,
      });
    }
  }
  // 6. Master-key rotation, hierarchical.
  {
    const rot = rewrap.filter((r) => r.mode === "hierarchical");
    const [small, large] = [rot[0]!, rot[1]!];
    const ratio = large.seconds / small.seconds;
    out.push({
      target: "Master rotation, hierarchical: 10,000 vs 1,000,000 records within 2× wall time",
      figure: `${(small.seconds * 1000).toFixed(1)} ms (${small.intermediateKeys} IK) vs ${(large.seconds * 1000).toFixed(1)} ms (${large.intermediateKeys} IKs): ${ratio.toFixed(2)}×`,
      met: ratio <= 2 && ratio >= 0.5,
    });
  }
  // 7. Memory.
  out.push({
    target: "Memory: caches bounded, heap flat after 1,000,000 operations",
    figure: `heap ${memory.heapMiB[1]!.toFixed(1)} → ${memory.heapMiB.at(-1)!.toFixed(1)} MiB after ${memory.operations.toLocaleString("en-US")} ops (growth ${memory.heapGrowthMiB.toFixed(2)} MiB); unwrap cache ${memory.unwrapCacheSize} entries`,
    met: memory.heapGrowthMiB < 2,
  });
  return out;
}
