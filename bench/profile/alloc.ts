// Bytes allocated per operation: the V8 heap's growth between two points with no garbage
// collection in between (a pass that saw one is refused; the young generation is made
// large enough to hold a whole pass),
// plus the ArrayBuffer bytes (backing stores outside the heap). Allocation is what sets how
// often the scavenger stops the thread, and in a bulk read a stop of a few milliseconds
// delays every KMS answer due meanwhile. Machine-independent, unlike timings.
//   node --expose-gc --min-semi-space-size=256 --max-semi-space-size=256 --import tsx bench/profile/alloc.ts [ops]
// cold: distinct 64 B records under an in-memory provider (unwrap ~0), default cache.
// warm: one 64 B value read again. bulk: decryptMany of rows of 3 fields, one data key
// per row, per row (the zero-latency simulated KMS's own unwrap included).
import { randomBytes } from "node:crypto";
import { GCProfiler } from "node:v8";
import { Envelope } from "@envelope/core";
import { memoryProvider } from "../lib/memory-provider.js";
import { simulatedKms } from "../lib/sim-kms.js";

// The same as bench/lib/subjects.ts (not imported: it loads every provider package).
const CONTEXT = { table: "users", column: "email", id: "42" };
const OPS = Number(process.argv[2] ?? 2000);
// With "sites": where the bytes come from (V8's sampling heap profiler, collected objects
// included), by the innermost frame of the packages and what it called.
const SITES = process.argv[3] === "sites";
const PASSES = 5;

/** Median over passes of heap and ArrayBuffer bytes per op; none may see a GC. */
async function measure(name: string, pass: () => Promise<number>): Promise<void> {
  const heap: number[] = [];
  const buffers: number[] = [];
  await pass(); // warm-up: JIT, caches of the code paths
  if (SITES) await sampling.start();
  for (let p = 0; p < PASSES; p++) {
    globalThis.gc?.();
    const before = process.memoryUsage();
    const gcs = new GCProfiler();
    gcs.start();
    const ops = await pass();
    const after = process.memoryUsage();
    if (gcs.stop()?.statistics.length)
      throw new Error("a GC ran during the pass: raise the semi-space");
    heap.push((after.heapUsed - before.heapUsed) / ops);
    buffers.push((after.arrayBuffers - before.arrayBuffers) / ops);
  }
  const sites = SITES ? await sampling.stop() : [];
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  console.log(
    `${name.padEnd(36)} ${median(heap).toFixed(0).padStart(6)} B heap + ${median(buffers).toFixed(0).padStart(5)} B ArrayBuffers per op`,
  );
  for (const [site, share] of sites)
    console.log(`    ${(share * 100).toFixed(1).padStart(5)}%  ${site}`);
}

interface SampleNode {
  callFrame: { functionName: string; url: string };
  selfSize: number;
  children: SampleNode[];
}
const sampling = {
  session: undefined as import("node:inspector/promises").Session | undefined,
  async start() {
    const { Session } = await import("node:inspector/promises");
    this.session = new Session();
    this.session.connect();
    await this.session.post("HeapProfiler.startSampling", {
      samplingInterval: 512,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  },
  /** Top sites: "innermost package frame -> the frame that allocated", share of bytes. */
  async stop(): Promise<[string, number][]> {
    const { profile } = (await this.session!.post("HeapProfiler.stopSampling")) as {
      profile: { head: SampleNode };
    };
    this.session!.disconnect();
    const bytes = new Map<string, number>();
    let total = 0;
    const frame = (n: SampleNode) =>
      `${n.callFrame.functionName || "(anonymous)"} (${n.callFrame.url.split("/").slice(-2).join("/")})`;
    const walk = (n: SampleNode, own: string) => {
      const here = frame(n);
      const inner = n.callFrame.url.includes("/packages/") ? here : own;
      if (n.selfSize > 0) {
        total += n.selfSize;
        const site = inner === here ? here : `${inner} -> ${here}`;
        bytes.set(site, (bytes.get(site) ?? 0) + n.selfSize);
      }
      for (const c of n.children) walk(c, inner);
    };
    walk(profile.head, "(outside the packages)");
    return [...bytes]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 14)
      .map(([site, n]) => [site, n / total]);
  },
};

async function pool(count: number, concurrency: number, op: (i: number) => Promise<unknown>) {
  let next = 0;
  const lane = async () => {
    while (next < count) await op(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

const provider = memoryProvider();
const sealer = new Envelope({ encrypt: provider, cache: false });
const cold: Buffer[] = [];
for (let i = 0; i < OPS; i++)
  cold.push(await sealer.encrypt(randomBytes(64), { context: CONTEXT, output: "binary" }));
for (const concurrency of [1, 64]) {
  await measure(`cold decrypt, ${concurrency === 1 ? "sequential" : "64 in flight"}`, async () => {
    const envelope = new Envelope({ encrypt: provider });
    await pool(OPS, concurrency, (i) => envelope.decrypt(cold[i]!, { context: CONTEXT }));
    return OPS;
  });
}

const warmEnvelope = new Envelope({ encrypt: provider });
const warm = await warmEnvelope.encrypt(randomBytes(64), { context: CONTEXT, output: "binary" });
await measure("warm decrypt, sequential", async () => {
  for (let i = 0; i < OPS; i++) await warmEnvelope.decrypt(warm, { context: CONTEXT });
  return OPS;
});

const kms = simulatedKms({ latencyMs: 0 });
const rowSealer = new Envelope({ encrypt: kms.provider, cache: false });
const columns = ["email", "phone", "ssn"];
const rows = OPS / 2;
const items: { sealed: Buffer; context: Record<string, string> }[] = [];
for (let id = 0; id < rows; id++) {
  const materials = await rowSealer.generateDataKey();
  for (const column of columns) {
    const context = { table: "users", column, id: String(id) };
    const sealed = rowSealer.encryptWithDataKey(materials, randomBytes(16).toString("hex"), {
      context,
    });
    items.push({ sealed, context });
  }
  materials.dataKey.fill(0);
}
await measure("decryptMany, per row of 3 fields", async () => {
  const envelope = new Envelope({ encrypt: kms.provider });
  await envelope.decryptMany(items, { concurrency: 64 });
  return rows;
});
