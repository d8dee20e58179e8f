/** Timing helpers. Every case runs in this one process, one after another. */

export interface Timing {
  /** Operations measured. */
  ops: number;
  /** Wall time of the measured loop, ms. */
  ms: number;
  opsPerSec: number;
  /** Per-operation latency percentiles, µs (per-op samples, sequential runs only). */
  p50Us: number | undefined;
  p99Us: number | undefined;
}

export interface Budget {
  /** Warm-up time, ms (JIT, caches, allocator). */
  warmupMs: number;
  /** Measuring time, ms: the loop stops at whichever of time or maxOps comes first. */
  measureMs: number;
  /** At least this many measured ops, even past measureMs (slow cases). */
  minOps: number;
  maxOps: number;
}

export const MICRO: Budget = { warmupMs: 100, measureMs: 500, minOps: 15, maxOps: 400_000 };

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summarize(samples: Float64Array, ops: number, ms: number): Timing {
  const sorted = samples.subarray(0, ops).sort();
  return {
    ops,
    ms,
    opsPerSec: (ops / ms) * 1000,
    p50Us: percentile(sorted, 50) * 1000,
    p99Us: percentile(sorted, 99) * 1000,
  };
}

/**
 * Runs `op` (sync or async) back to back and samples each operation's latency. The
 * measuring time is split into `ROUNDS` rounds; ops/s is the best round's rate, because on
 * a shared machine the slower rounds measure the neighbours, not the code. Percentiles
 * use every sample of every round.
 */
export async function timeSequential(op: () => unknown, budget: Budget = MICRO): Promise<Timing> {
  const warmEnd = performance.now() + budget.warmupMs;
  while (performance.now() < warmEnd) await op();
  const samples = new Float64Array(budget.maxOps * ROUNDS);
  let ops = 0;
  let best = 0;
  let totalMs = 0;
  for (let round = 0; round < ROUNDS; round++) {
    globalThis.gc?.();
    const start = performance.now();
    const end = start + budget.measureMs / ROUNDS;
    const first = ops;
    let now = start;
    while (
      ops - first < budget.maxOps &&
      (now < end || ops - first < Math.ceil(budget.minOps / ROUNDS))
    ) {
      const t0 = now;
      const r = op();
      if (r instanceof Promise) await r;
      now = performance.now();
      samples[ops++] = now - t0;
    }
    totalMs += now - start;
    best = Math.max(best, ((ops - first) / (now - start)) * 1000);
  }
  return { ...summarize(samples, ops, totalMs), opsPerSec: best };
}

const ROUNDS = 5;

/**
 * Keeps the event loop from sleeping until the returned stop is called: a chain of
 * setImmediate callbacks gives libuv's poll a zero timeout, so timers fire when due. A
 * sleeping loop wakes for its next timer by a whole-millisecond poll timeout and a
 * simulated KMS's `setTimeout(10)` answers late; a KMS reached over a socket wakes the
 * loop the moment its answer arrives.
 */
export function keepLoopAwake(): () => void {
  let awake = true;
  const spin = () => {
    if (awake) setImmediate(spin);
  };
  setImmediate(spin);
  return () => {
    awake = false;
  };
}

/** Runs `count` distinct operations, `concurrency` at a time; latency per operation. */
export async function timeBatch(
  count: number,
  concurrency: number,
  op: (index: number) => Promise<unknown>,
): Promise<Timing> {
  const samples = new Float64Array(count);
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const t0 = performance.now();
      await op(i);
      samples[i] = performance.now() - t0;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const ms = performance.now() - start;
  return summarize(samples, count, ms);
}

/** Peak resident set size of this process so far, MiB. */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Heap in use after a full collection, MiB. */
export function heapAfterGcMiB(): number {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** One case measured in interleaved slices (see `timeInterleaved`). */
export interface SliceCase {
  op: () => unknown;
  /** At least this many ops per slice, even past the slice time (slow cases). */
  minOpsPerSlice: number;
}

/**
 * Measures many cases round-robin: every round gives each case one short slice, so a
 * burst of load from a neighbour hits one slice of a few cases instead of a whole case,
 * and cases that are compared with each other are measured at nearly the same moments.
 * ops/s = the case's best slice; p50/p99 over all its samples.
 */
export async function timeInterleaved(
  cases: SliceCase[],
  options: { rounds: number; sliceMs: number; warmupMs: number },
  onRound?: (round: number) => void,
): Promise<Timing[]> {
  for (const c of cases) {
    const end = performance.now() + options.warmupMs;
    while (performance.now() < end) await c.op();
  }
  const samples: number[][] = cases.map(() => []);
  const best = cases.map(() => 0);
  const total = cases.map(() => 0);
  for (let round = 0; round < options.rounds; round++) {
    // Each round starts one case later: the slice right after the full GC below runs while
    // V8 recompiles the code that GC deoptimized, and no case should always be that slice.
    for (let k = 0; k < cases.length; k++) {
      const i = (k + round) % cases.length;
      const c = cases[i]!;
      const start = performance.now();
      const end = start + options.sliceMs;
      let now = start;
      let ops = 0;
      while (now < end || ops < c.minOpsPerSlice) {
        const t0 = now;
        const r = c.op();
        if (r instanceof Promise) await r;
        now = performance.now();
        samples[i]!.push(now - t0);
        ops++;
      }
      total[i]! += now - start;
      best[i] = Math.max(best[i]!, (ops / (now - start)) * 1000);
    }
    globalThis.gc?.();
    onRound?.(round);
  }
  return cases.map((_, i) => {
    const all = Float64Array.from(samples[i]!);
    return { ...summarize(all, all.length, total[i]!), opsPerSec: best[i]! };
  });
}
