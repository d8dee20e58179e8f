import { randomBytes } from "node:crypto";
import { Envelope } from "@envelope/core";
import { memoryProvider } from "../lib/memory-provider.js";
import { CONTEXT } from "../lib/subjects.js";

/** Issue 15, item 2: CPU of a cold decrypt (data key not cached) besides the unwrap itself. */
export { memoryProvider };

export const COLD_CPU_TARGET_US = 15;

export interface ColdResult {
  case: string;
  /** CPU µs per record, the provider's own unwrap CPU subtracted: the mean of every timed read. */
  cpuUs: number;
  /** The best and the median round (decrypt minus unwrap of the same round). */
  bestUs: number;
  medianUs: number;
  /** CPU µs per record of the provider's unwrap alone, measured in the same rounds. */
  providerUs: number;
  /** Timed reads. */
  records: number;
  concurrency: number;
}

/** CPU time of this process (all threads), µs. */
export function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Runs `op(0 … n-1)` with `concurrency` in flight. */
export async function pool(n: number, concurrency: number, op: (i: number) => Promise<unknown>) {
  let next = 0;
  const worker = async () => {
    while (next < n) await op(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const mean = (xs: number[]) => xs.reduce((sum, x) => sum + x, 0) / xs.length;

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

/** Decrypts per configuration that are timed, in rounds of one pass over the records. */
const TIMED = 200_000;

/** CPU per op of one pass over all records (no forced GC: see runCold). */
async function cpuOfPass(
  n: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  const start = cpuUs();
  await pool(n, concurrency, op);
  return (cpuUs() - start) / n;
}

/**
 * CPU per record of a decrypt whose data key is not cached, in a steady state: `records`
 * distinct 64 B records, each under its own data key, read again and again through the
 * default unwrap cache (1,000 entries, so every read misses), sequentially and 64 at a time,
 * TIMED decrypts each. One full GC and one untimed pass before the timing, then no forced GC:
 * a forced full GC deoptimizes code that V8 then recompiles over the next few thousand
 * decrypts, and a pass that starts on a fresh heap never pays for the old-generation garbage
 * that the cache's churn leaves (a mark-compact every ~100,000 records), which a server
 * does. The figure is the mean over all timed decrypts (their scavenges, mark-compacts and
 * background GC and compiler threads included: process.cpuUsage counts every thread) minus
 * the mean of the provider's unwrap alone over the same entries, timed in the same rounds.
 * The best and median rounds are reported beside it.
 */
export async function runCold(
  log: (line: string) => void,
  records = 20_000,
): Promise<ColdResult[]> {
  const results: ColdResult[] = [];
  // Suite 0x01 (the default: HKDF-SHA256) and 0x03 (a writer with `suite: 3`).
  for (const suite of [1, 3] as const) {
    const provider = memoryProvider();
    const sealer = new Envelope({ encrypt: provider, cache: false, suite });
    const sealed: Buffer[] = [];
    const plaintext = randomBytes(64);
    for (let i = 0; i < records; i++) {
      sealed.push(await sealer.encrypt(plaintext, { context: CONTEXT, output: "binary" }));
    }
    const entries = sealed.map((_, i) => {
      const wrapped = Buffer.alloc(4);
      wrapped.writeUInt32BE(i);
      return { providerId: "memory", keyRef: "m1", wrapped };
    });
    const request = { context: CONTEXT };
    const unwrap = (i: number) => provider.unwrap(entries[i]!, request);
    const runs = [1, 64].map((concurrency) => {
      const envelope = new Envelope({ encrypt: provider });
      const decrypt = (i: number) => envelope.decrypt(sealed[i]!, { context: CONTEXT });
      return { concurrency, envelope, decrypt, totals: [] as number[], unwraps: [] as number[] };
    });
    globalThis.gc?.(); // the earlier cases' garbage, once
    for (const run of runs) await cpuOfPass(records, run.concurrency, run.decrypt); // warm-up (JIT)
    const rounds = Math.ceil(TIMED / records);
    for (let round = 0; round < rounds; round++) {
      for (const run of runs) {
        run.unwraps.push(await cpuOfPass(records, run.concurrency, unwrap));
        const misses = run.envelope.cacheStats().misses;
        run.totals.push(await cpuOfPass(records, run.concurrency, run.decrypt));
        if (run.envelope.cacheStats().misses - misses !== records)
          throw new Error("cold case: a timed read hit the unwrap cache");
      }
    }
    for (const { concurrency, totals, unwraps } of runs) {
      const inFlight = concurrency === 1 ? "sequential" : `${concurrency} in flight`;
      const providerUs = mean(unwraps);
      // Per-round differences: decrypt and unwrap of a round ran side by side.
      const perRound = totals.map((t, i) => t - unwraps[i]!);
      const result: ColdResult = {
        case: `cold decrypt, 64 B, suite 0x0${suite}, ${inFlight}`,
        cpuUs: mean(totals) - providerUs,
        bestUs: Math.min(...perRound),
        medianUs: median(perRound),
        providerUs,
        records: rounds * records,
        concurrency,
      };
      results.push(result);
      log(
        `  ${result.case.padEnd(46)} ${result.cpuUs.toFixed(1).padStart(6)} µs CPU/record besides the unwrap (${providerUs.toFixed(2)} µs), mean of ${result.records.toLocaleString("en-US")} (rounds: best ${result.bestUs.toFixed(1)}, median ${result.medianUs.toFixed(1)}), target ≤ ${COLD_CPU_TARGET_US}`,
      );
    }
  }
  return results;
}
