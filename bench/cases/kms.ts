import { randomBytes } from "node:crypto";
import { Envelope } from "@envelope/core";
import { hierarchicalProvider, memoryKeyStore } from "@envelope/hierarchical";
import { type Timing, timeBatch } from "../lib/measure.js";
import { simulatedKms } from "../lib/sim-kms.js";
import { CONTEXT } from "../lib/subjects.js";

export const KMS_LATENCY_MS = 10;
/** Sequential direct-mode runs pay 10 ms per record: a sample stands in for the whole set. */
export const SEQUENTIAL_SAMPLE = 150;

export interface KmsResult extends Timing {
  case: string;
  mode: "direct" | "hierarchical" | "reference";
  /** Records the case stands for, and how many were actually run. */
  records: number;
  ran: number;
  concurrency: number;
  kmsCalls: number;
  kmsPer1000: number;
  /** Wall time for all `records` at the measured rate (equals `ms` when ran = records). */
  projectedSeconds: number;
  note?: string;
}

const SIZE = 64;

/**
 * The 10 ms KMS cases. Records are sealed beforehand under the same key through a
 * zero-latency twin of the simulated KMS, so decrypt cases measure decrypt only.
 */
export async function runKms(log: (line: string) => void): Promise<KmsResult[]> {
  const results: KmsResult[] = [];
  const counter = { calls: 0 };
  const kms = simulatedKms({ latencyMs: KMS_LATENCY_MS, counter });
  const fast = simulatedKms({ latencyMs: 0, key: kms.key });
  const plaintext = randomBytes(SIZE);
  const add = (r: Omit<KmsResult, "kmsPer1000" | "projectedSeconds">) => {
    const result: KmsResult = {
      ...r,
      kmsPer1000: (r.kmsCalls / r.ran) * 1000,
      projectedSeconds: r.records / r.opsPerSec,
    };
    results.push(result);
    log(
      `  ${r.case.padEnd(58)} ${Math.round(r.opsPerSec).toLocaleString("en-US").padStart(9)} rec/s  p50 ${r.p50Us!.toFixed(0)} µs  p99 ${r.p99Us!.toFixed(0)} µs  KMS/1000: ${result.kmsPer1000.toFixed(2)}`,
    );
  };
  const counted = async (fn: () => Promise<Timing>) => {
    const before = counter.calls;
    const timing = await fn();
    return { timing, calls: counter.calls - before };
  };

  // Direct-mode records: one distinct data key each.
  const sealer = new Envelope({ encrypt: fast.provider, cache: false });
  const direct: Buffer[] = [];
  for (let i = 0; i < 10_000; i++)
    direct.push(await sealer.encrypt(plaintext, { context: CONTEXT, output: "binary" }));

  // Reference: the warm-cache rate (one record, its data key cached) over the same KMS,
  // measured like the hierarchical cases: one sequential batch of 10,000, total time.
  {
    const envelope = new Envelope({ encrypt: kms.provider });
    await envelope.decrypt(direct[0]!, { context: CONTEXT });
    const { timing, calls } = await counted(() =>
      timeBatch(10_000, 1, () => envelope.decrypt(direct[0]!, { context: CONTEXT })),
    );
    add({
      case: "warm-cache decrypt (reference rate)",
      mode: "reference",
      records: 10_000,
      ran: 10_000,
      concurrency: 1,
      kmsCalls: calls,
      ...timing,
    });
  }
  {
    const envelope = new Envelope({ encrypt: kms.provider });
    const { timing, calls } = await counted(() =>
      timeBatch(SEQUENTIAL_SAMPLE, 1, (i) => envelope.decrypt(direct[i]!, { context: CONTEXT })),
    );
    add({
      case: "direct: decrypt 10,000 distinct, sequential",
      mode: "direct",
      records: 10_000,
      ran: SEQUENTIAL_SAMPLE,
      concurrency: 1,
      kmsCalls: calls,
      ...timing,
      note: `${SEQUENTIAL_SAMPLE} of 10,000 run (each pays one 10 ms KMS call); total projected`,
    });
  }
  {
    const envelope = new Envelope({ encrypt: kms.provider });
    const { timing, calls } = await counted(() =>
      timeBatch(10_000, 64, (i) => envelope.decrypt(direct[i]!, { context: CONTEXT })),
    );
    add({
      case: "direct: decrypt 10,000 distinct, 64 concurrent",
      mode: "direct",
      records: 10_000,
      ran: 10_000,
      concurrency: 64,
      kmsCalls: calls,
      ...timing,
    });
  }

  // Hierarchical: encrypt 100,000 (these also feed the decrypt cases).
  const store = memoryKeyStore();
  const hierarchical: Buffer[] = [];
  {
    const envelope = new Envelope({
      encrypt: hierarchicalProvider({ master: kms.provider, store }),
    });
    const { timing, calls } = await counted(() =>
      timeBatch(100_000, 1, async (i) => {
        const sealed = await envelope.encrypt(plaintext, { context: CONTEXT, output: "binary" });
        if (i < 10_000) hierarchical.push(sealed);
      }),
    );
    add({
      case: "hierarchical: encrypt 100,000, sequential",
      mode: "hierarchical",
      records: 100_000,
      ran: 100_000,
      concurrency: 1,
      kmsCalls: calls,
      ...timing,
    });
  }
  for (const concurrency of [1, 64]) {
    // A new provider = a new process: its intermediate-key cache starts cold.
    const envelope = new Envelope({
      encrypt: hierarchicalProvider({ master: kms.provider, store }),
    });
    const { timing, calls } = await counted(() =>
      timeBatch(10_000, concurrency, (i) =>
        envelope.decrypt(hierarchical[i]!, { context: CONTEXT }),
      ),
    );
    add({
      case: `hierarchical: decrypt 10,000 distinct, ${concurrency === 1 ? "sequential" : "64 concurrent"}`,
      mode: "hierarchical",
      records: 10_000,
      ran: 10_000,
      concurrency,
      kmsCalls: calls,
      ...timing,
    });
  }

  {
    // The same with core's unwrap cache off: the IK cache alone, no per-record LRU insert.
    const envelope = new Envelope({
      encrypt: hierarchicalProvider({ master: kms.provider, store }),
      cache: false,
    });
    const { timing, calls } = await counted(() =>
      timeBatch(10_000, 1, (i) => envelope.decrypt(hierarchical[i]!, { context: CONTEXT })),
    );
    add({
      case: "hierarchical, core unwrap cache off: decrypt 10,000 distinct, sequential",
      mode: "hierarchical",
      records: 10_000,
      ran: 10_000,
      concurrency: 1,
      kmsCalls: calls,
      ...timing,
    });
  }

  // Direct-mode encrypt: one KMS call per record unless data keys are reused.
  {
    const envelope = new Envelope({ encrypt: kms.provider });
    const { timing, calls } = await counted(() =>
      timeBatch(SEQUENTIAL_SAMPLE, 1, () => envelope.encrypt(plaintext, { context: CONTEXT })),
    );
    add({
      case: "direct: encrypt 100,000, sequential",
      mode: "direct",
      records: 100_000,
      ran: SEQUENTIAL_SAMPLE,
      concurrency: 1,
      kmsCalls: calls,
      ...timing,
      note: `${SEQUENTIAL_SAMPLE} of 100,000 run; total projected`,
    });
  }
  {
    const envelope = new Envelope({ encrypt: kms.provider });
    const { timing, calls } = await counted(() =>
      timeBatch(10_000, 64, () => envelope.encrypt(plaintext, { context: CONTEXT })),
    );
    add({
      case: "direct: encrypt 100,000, 64 concurrent",
      mode: "direct",
      records: 100_000,
      ran: 10_000,
      concurrency: 64,
      kmsCalls: calls,
      ...timing,
      note: "10,000 of 100,000 run; total projected",
    });
  }
  {
    const envelope = new Envelope({ encrypt: kms.provider, dataKeyReuse: { maxMessages: 1000 } });
    const { timing, calls } = await counted(() =>
      timeBatch(100_000, 1, () => envelope.encrypt(plaintext, { context: CONTEXT })),
    );
    add({
      case: "direct + data-key reuse (1,000/key): encrypt 100,000, sequential",
      mode: "direct",
      records: 100_000,
      ran: 100_000,
      concurrency: 1,
      kmsCalls: calls,
      ...timing,
    });
  }
  return results;
}
