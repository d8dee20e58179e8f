// decryptMany work for instruction counts under callgrind (independent of the machine's
// load), with a given build of core:
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --import tsx \
//     bench/profile/count-bulk.ts <path/to/core/dist/index.js> 1000 [many|pool] [warm]
// and again with 4000: (Ir(4000) - Ir(1000)) / 3000 = instructions per row of 3 fields.
// Rows of 3 values under one data key each, an in-memory provider (unwrap ~0), a fresh
// client (cold cache) per batch of 1,000 rows, 64 in flight; one batch first as JIT warm-up.
// "warm": one client for every batch, so from the second on each data key is cached (the
// same list page read again).
// "pool" is the reference: 64 loops of `await decrypt` taking values from one queue, with
// the results kept as decryptMany keeps them.
import { randomBytes } from "node:crypto";
import * as current from "@envelope/core";
import { memoryProvider } from "../lib/memory-provider.js";

const core = (await import(process.argv[2]!)) as typeof current;
const rows = Number(process.argv[3] ?? 1000);
const provider = memoryProvider();
const sealer = new current.Envelope({ encrypt: provider, cache: false });
const items: { sealed: Buffer; context: Record<string, string> }[] = [];
for (let id = 0; id < 1000; id++) {
  const materials = await sealer.generateDataKey();
  for (const column of ["email", "phone", "ssn"]) {
    const context = { table: "users", column, id: String(id) };
    const sealed = sealer.encryptWithDataKey(materials, randomBytes(16).toString("hex"), {
      context,
    });
    items.push({ sealed, context });
  }
}
const pool = process.argv[4] === "pool";
const warm = process.argv[5] === "warm";
const shared = new core.Envelope({ encrypt: provider });
for (let done = -1000; done < rows; done += 1000) {
  const envelope = warm ? shared : new core.Envelope({ encrypt: provider });
  const results = pool
    ? await decryptPool(envelope)
    : await envelope.decryptMany(items, { concurrency: 64 });
  if (!results.every((r) => r.ok)) throw new Error("count-bulk: a value failed");
}

async function decryptPool(envelope: current.Envelope) {
  const results = new Array<{ ok: boolean; value: Buffer }>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      const { sealed, context } = items[i]!;
      results[i] = { ok: true, value: await envelope.decrypt(sealed, { context }) };
    }
  };
  await Promise.all(Array.from({ length: 64 }, lane));
  return results;
}
