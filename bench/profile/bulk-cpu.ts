// CPU per row of decryptMany against plain decrypt loops over the same values, in one
// process (no database, an in-memory simulated KMS of zero latency, so only CPU counts):
//   node --import tsx bench/profile/bulk-cpu.ts [many|loop|pool] [rounds] [suite] [warm]
// 1,000 rows of 3 fields, one data key per row, a new client (cold unwrap cache) per round;
// with "warm", one client for every round (the same list page read again: keys cached).
// "loop" is one `await decrypt` after another; "pool" is 64 such loops taking values from
// one queue, results kept as decryptMany keeps them. Prints the mean CPU µs per row over
// the rounds after the first 5 (GC included), the best and the median round. Run each mode
// in a process of its own: the heap one mode leaves behind changes the next one's GC.
import { randomBytes } from "node:crypto";
import { Envelope } from "@envelope/core";
import { simulatedKms } from "../lib/sim-kms.js";

const mode = process.argv[2] ?? "many";
const rounds = Number(process.argv[3] ?? 40);
const suite = Number(process.argv[4] ?? 1) as 1 | 3;
const warm = process.argv[5] === "warm";
const ROWS = 1_000;
const WARM_UP = 5;
const kms = simulatedKms({ latencyMs: 0 });
const columns = ["email", "phone", "ssn"] as const;
const context = (id: number, column: string) => ({ table: "users", column, id: String(id) });
const sealer = new Envelope({ encrypt: kms.provider, cache: false, suite });
const items: { sealed: Buffer; context: Record<string, string> }[] = [];
for (let id = 0; id < ROWS; id++) {
  const materials = await sealer.generateDataKey();
  for (const column of columns) {
    const value = randomBytes(16).toString("hex");
    const sealed = sealer.encryptWithDataKey(materials, value, { context: context(id, column) });
    items.push({ sealed, context: context(id, column) });
  }
  materials.dataKey.fill(0);
}

async function run(envelope: Envelope): Promise<unknown[]> {
  if (mode === "many") return envelope.decryptMany(items, { concurrency: 64 });
  const results = new Array<unknown>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      const { sealed, context } = items[i]!;
      results[i] = { ok: true, value: await envelope.decrypt(sealed, { context }) };
    }
  };
  if (mode === "loop") await lane();
  else if (mode === "pool") await Promise.all(Array.from({ length: 64 }, lane));
  else throw new Error(`unknown mode ${mode}: many, loop or pool`);
  return results;
}

const perRow: number[] = [];
const shared = new Envelope({ encrypt: kms.provider });
for (let round = 0; round < rounds; round++) {
  const envelope = warm ? shared : new Envelope({ encrypt: kms.provider });
  const before = process.cpuUsage();
  const results = await run(envelope);
  const used = process.cpuUsage(before);
  if (results.length !== items.length) throw new Error("bulk-cpu: results missing");
  perRow.push((used.user + used.system) / ROWS);
}
const counted = perRow.slice(WARM_UP);
const sorted = [...counted].sort((a, b) => a - b);
const mean = counted.reduce((sum, x) => sum + x, 0) / counted.length;
console.log(
  `${mode}, suite ${suite}${warm ? ", warm" : ""}: CPU per row of 3 fields, mean ${mean.toFixed(1)} µs, best ${sorted[0]!.toFixed(1)}, median ${sorted[sorted.length >> 1]!.toFixed(1)} (${counted.length} rounds)`,
);
