// How long decryptMany takes to send its first KMS call, core before a change vs current,
// alternating in one process: 1,000 rows of 3 values, 64 in flight, 10 ms KMS.
//   node --import tsx bench/profile/bulk-first-call.ts <old/dist/index.js> <new/dist/index.js> [rounds]
import { randomBytes } from "node:crypto";
import { Envelope, type KeyProvider } from "@envelope/core";
import { simulatedKms } from "../lib/sim-kms.js";

const libs = {
  before: (await import(process.argv[2]!)) as { Envelope: typeof Envelope },
  after: (await import(process.argv[3]!)) as { Envelope: typeof Envelope },
};
const rounds = Number(process.argv[4] ?? 12);
const fast = simulatedKms({ latencyMs: 0 });
const slow = simulatedKms({ latencyMs: 10, key: fast.key });
let firstCall = 0;
const provider: KeyProvider = {
  ...slow.provider,
  unwrap(entry, request) {
    firstCall ||= performance.now();
    return slow.provider.unwrap(entry, request);
  },
};
const sealer = new Envelope({ encrypt: fast.provider, cache: false });
const items: { sealed: Buffer; context: Record<string, string> }[] = [];
for (let id = 0; id < 1000; id++) {
  const materials = await sealer.generateDataKey();
  for (const column of ["email", "phone", "ssn"]) {
    const context = { column, id: String(id) };
    const sealed = sealer.encryptWithDataKey(materials, randomBytes(16).toString("hex"), {
      context,
    });
    items.push({ sealed, context });
  }
}
const waits: Record<string, number[]> = { before: [], after: [] };
for (let r = 0; r < rounds; r++) {
  for (const [name, lib] of Object.entries(libs)) {
    firstCall = 0;
    const started = performance.now();
    await new lib.Envelope({ encrypt: provider }).decryptMany(items, { concurrency: 64 });
    waits[name]!.push(firstCall - started);
  }
}
for (const [name, w] of Object.entries(waits)) {
  const median = [...w].sort((a, b) => a - b)[w.length >> 1]!;
  console.log(`${name}: first KMS call after ${median.toFixed(2)} ms (median of ${rounds})`);
}
