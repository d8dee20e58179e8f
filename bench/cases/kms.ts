import { randomBytes } from "node:crypto";
import { decodeEnvelope, Envelope } from "@envelope/core";
import { hierarchicalProvider, memoryKeyStore } from "@envelope/hierarchical";
import { keepLoopAwake, type Timing, timeBatch } from "../lib/measure.js";
import { simulatedKms } from "../lib/sim-kms.js";
import { CONTEXT } from "../lib/subjects.js";

export const KMS_LATENCY_MS = 10;
/** Rounds of the reference and hierarchical cases (best round kept). */
export const REPEATS = 3;
/** Sequential direct-mode runs pay 10 ms per record: a sample stands in for the whole set. */
export const SEQUENTIAL_SAMPLE = 150;
/** The reference case: the simulated KMS's own unwraps at 64 in flight. */
export const KMS_ALONE_CASE = "simulated KMS alone: 10,000 unwraps, 64 concurrent";
/** Appended to a case's name when it ran with the event loop kept awake (keepLoopAwake). */
export const AWAKE = ", event loop kept awake";

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
  /** Bulk cases: rows/s over the whole span, the SELECT included (`opsPerSec` starts after it). */
  endToEndPerSec?: number;
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

  // Direct-mode records: one distinct data key each, written in suite 0x01 (the default)
  // and in suite 0x03 (a writer with `suite: 3`: less CPU per uncached record).
  const sealDirect = async (suite: 1 | 3) => {
    const sealer = new Envelope({ encrypt: fast.provider, cache: false, suite });
    const out: Buffer[] = [];
    for (let i = 0; i < 10_000; i++)
      out.push(await sealer.encrypt(plaintext, { context: CONTEXT, output: "binary" }));
    return out;
  };
  const direct = await sealDirect(1);
  const direct3 = await sealDirect(3);

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
  // 64 in flight: REPEATS interleaved rounds per suite, each a new client (cold cache);
  // the best round is kept, as for the reference below. Interleaved with them: the
  // simulated KMS alone (its unwrap of the same entries, 64 in flight, no Envelope), the
  // rate its timer (whole milliseconds: a 10 ms call takes 10–11 ms) and key unwrap allow.
  {
    // Suite 0x01 and the KMS alone run a second time with the event loop kept awake: the
    // KMS's timers then fire when due, which takes the simulation's own lateness out.
    const best = new Map<
      string,
      { suite: 1 | 3 | "kms"; awake: string; timing: Timing; calls: number }
    >();
    const entries = direct.map((v) => decodeEnvelope(v).entries[0]!);
    const request = { context: CONTEXT };
    for (let round = 0; round < REPEATS; round++) {
      for (const [suite, values, awake] of [
        [1, direct, ""],
        [3, direct3, ""],
        ["kms", direct, ""],
        [1, direct, AWAKE],
        ["kms", direct, AWAKE],
      ] as const) {
        const envelope = new Envelope({ encrypt: kms.provider });
        const open =
          suite === "kms"
            ? (i: number) => kms.provider.unwrap(entries[i]!, request)
            : (i: number) => envelope.decrypt(values[i]!, { context: CONTEXT });
        const stop = awake ? keepLoopAwake() : () => {};
        const run = await counted(() => timeBatch(10_000, 64, open)).finally(stop);
        const key = `${suite}${awake}`;
        const kept = best.get(key);
        if (!kept || run.timing.opsPerSec > kept.timing.opsPerSec)
          best.set(key, { suite, awake, ...run });
      }
    }
    for (const { suite, awake, timing, calls } of best.values()) {
      if (suite === "kms") {
        add({
          case: `${KMS_ALONE_CASE}${awake}`,
          mode: "reference",
          records: 10_000,
          ran: 10_000,
          concurrency: 64,
          kmsCalls: calls,
          ...timing,
          note: `the simulated KMS's unwrap of the same entries, no Envelope: the ceiling its timer allows${awake ? " when the loop never sleeps" : ""}; best of ${REPEATS} rounds interleaved with the decrypts`,
        });
        continue;
      }
      add({
        case: `direct: decrypt 10,000 distinct, 64 concurrent${suite === 3 ? ", suite 0x03" : ""}${awake}`,
        mode: "direct",
        records: 10_000,
        ran: 10_000,
        concurrency: 64,
        kmsCalls: calls,
        ...timing,
        note: `best of ${REPEATS} interleaved rounds`,
      });
    }
  }

  // The reference (warm-cache rate) and the hierarchical cases it is compared with run in
  // REPEATS interleaved rounds; each keeps its fastest round, so a burst of load from a
  // neighbour cannot decide a comparison on its own. Every round uses new providers (a new
  // process: cold intermediate-key cache) over one store.
  const store = memoryKeyStore();
  const hierarchical: Buffer[] = [];
  {
    const warm = new Envelope({ encrypt: kms.provider });
    await warm.decrypt(direct[0]!, { context: CONTEXT });
    // Suite 0x03 (one SHA-512 per message, FORMAT.md §15), as a deployment whose readers
    // all know it would configure; the suite 0x01 case below is the before/after reference.
    const fresh = (cache?: false, suite: 1 | 3 = 3) =>
      new Envelope({
        encrypt: hierarchicalProvider({ master: kms.provider, store, suite }),
        ...(cache === false ? { cache } : {}),
      });
    const suite1: Buffer[] = [];
    const sealer1 = fresh(undefined, 1);
    for (let i = 0; i < 10_000; i++)
      suite1.push(await sealer1.encrypt(plaintext, { context: CONTEXT, output: "binary" }));
    const cases: {
      case: string;
      mode: KmsResult["mode"];
      records: number;
      concurrency: number;
      run: () => Promise<Timing>;
    }[] = [
      {
        case: "warm-cache decrypt (reference rate)",
        mode: "reference",
        records: 10_000,
        concurrency: 1,
        run: () => timeBatch(10_000, 1, () => warm.decrypt(direct[0]!, { context: CONTEXT })),
      },
      {
        case: "hierarchical: encrypt 100,000, sequential",
        mode: "hierarchical",
        records: 100_000,
        concurrency: 1,
        run: () => {
          const envelope = fresh();
          const keep = hierarchical.length === 0;
          return timeBatch(100_000, 1, async (i) => {
            const sealed = await envelope.encrypt(plaintext, {
              context: CONTEXT,
              output: "binary",
            });
            if (keep && i < 10_000) hierarchical.push(sealed);
          });
        },
      },
      ...[1, 64].map((concurrency) => ({
        case: `hierarchical: decrypt 10,000 distinct, ${concurrency === 1 ? "sequential" : "64 concurrent"}`,
        mode: "hierarchical" as const,
        records: 10_000,
        concurrency,
        run: () => {
          const envelope = fresh();
          return timeBatch(10_000, concurrency, (i) =>
            envelope.decrypt(hierarchical[i]!, { context: CONTEXT }),
          );
        },
      })),
      {
        case: "hierarchical, suite 0x01 values: decrypt 10,000 distinct, sequential",
        mode: "hierarchical",
        records: 10_000,
        concurrency: 1,
        run: () => {
          const envelope = fresh(undefined, 1);
          return timeBatch(10_000, 1, (i) => envelope.decrypt(suite1[i]!, { context: CONTEXT }));
        },
      },
      {
        // Core's unwrap cache off: the IK cache alone, no per-record LRU insert.
        case: "hierarchical, core unwrap cache off: decrypt 10,000 distinct, sequential",
        mode: "hierarchical",
        records: 10_000,
        concurrency: 1,
        run: () => {
          const envelope = fresh(false);
          return timeBatch(10_000, 1, (i) =>
            envelope.decrypt(hierarchical[i]!, { context: CONTEXT }),
          );
        },
      },
    ];
    const best: ({ timing: Timing; calls: number } | undefined)[] = cases.map(() => undefined);
    for (let round = 0; round < REPEATS; round++) {
      for (const [i, c] of cases.entries()) {
        const outcome = await counted(c.run);
        if (!best[i] || outcome.timing.opsPerSec > best[i]!.timing.opsPerSec) best[i] = outcome;
      }
    }
    cases.forEach((c, i) => {
      const { timing, calls } = best[i]!;
      add({
        case: c.case,
        mode: c.mode,
        records: c.records,
        ran: c.records,
        concurrency: c.concurrency,
        kmsCalls: calls,
        ...timing,
      });
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
