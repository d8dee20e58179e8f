import { randomBytes } from "node:crypto";
import { Envelope } from "@envelope/core";
import { hierarchicalProvider, memoryKeyStore } from "@envelope/hierarchical";
import { heapAfterGcMiB, peakRssMiB } from "../lib/measure.js";
import { simulatedKms } from "../lib/sim-kms.js";
import { CONTEXT } from "../lib/subjects.js";
import { KMS_LATENCY_MS } from "./kms.js";

export const MEMORY_RECORDS = 1_000_000;
export const ROTATE_USES = 100_000;

export interface MemoryResult {
  operations: number;
  encrypts: number;
  decrypts: number;
  seconds: number;
  /** Heap after a full GC at each 10% checkpoint, MiB. */
  heapMiB: number[];
  heapGrowthMiB: number;
  peakRssMiB: number;
  unwrapCacheSize: number;
  intermediateKeys: number;
  kmsCalls: number;
}

/**
 * 1,000,000 hierarchical encrypts (64 B, 10 ms KMS master, a new intermediate key every
 * 100,000) plus a decrypt of every 10th record just sealed (100,000 distinct data keys
 * through core's bounded unwrap cache). Only 1 in 10,000 records is kept (for the
 * rotation check); the heap is measured after a full GC at every 10%.
 */
export async function runMemory(log: (line: string) => void) {
  const counter = { calls: 0 };
  const master = simulatedKms({ latencyMs: KMS_LATENCY_MS, counter });
  const store = memoryKeyStore();
  const envelope = new Envelope({
    encrypt: hierarchicalProvider({
      master: master.provider,
      store,
      rotateAfter: { uses: ROTATE_USES },
    }),
  });
  const plaintext = randomBytes(64);
  const samples: Buffer[] = [];
  const heap: number[] = [heapAfterGcMiB()];
  let decrypts = 0;
  const started = performance.now();
  for (let i = 1; i <= MEMORY_RECORDS; i++) {
    const sealed = await envelope.encrypt(plaintext, { context: CONTEXT, output: "binary" });
    if (i % 10 === 0) {
      await envelope.decrypt(sealed, { context: CONTEXT });
      decrypts++;
    }
    if (i % 10_000 === 0) samples.push(sealed);
    if (i % (MEMORY_RECORDS / 10) === 0) {
      heap.push(heapAfterGcMiB());
      log(
        `  ${i.toLocaleString("en-US").padStart(9)} encrypts: heap ${heap.at(-1)!.toFixed(1)} MiB`,
      );
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const result: MemoryResult = {
    operations: MEMORY_RECORDS + decrypts,
    encrypts: MEMORY_RECORDS,
    decrypts,
    seconds,
    heapMiB: heap,
    // Growth from the first checkpoint (after warm-up: JIT, first intermediate key) to the last.
    heapGrowthMiB: heap.at(-1)! - heap[1]!,
    peakRssMiB: peakRssMiB(),
    unwrapCacheSize: envelope.cacheStats().size,
    intermediateKeys: (await store.list()).length,
    kmsCalls: counter.calls,
  };
  return { result, big: { store, master, samples, plaintext, records: MEMORY_RECORDS } };
}
