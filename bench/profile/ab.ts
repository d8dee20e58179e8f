// A/B of cold-decrypt CPU in one process: the core built before a change (a copy of its
// dist/ given as argv[2]) against the current build, in alternating rounds, so both see
// the same machine load. Prints the best (lowest) CPU µs per record of each.
//   node --expose-gc --import tsx bench/profile/ab.ts <path/to/old/dist/index.js> [records] [rounds] [cold|warm|hier]
import { randomBytes } from "node:crypto";
import * as current from "@envelope/core";
import { cpuUs as cpu, memoryProvider, pool } from "../cases/cold.js";
import { CONTEXT } from "../lib/subjects.js";

const old = (await import(process.argv[2]!)) as typeof current;
const records = Number(process.argv[3] ?? 5000);
const rounds = Number(process.argv[4] ?? 7);
const mode = process.argv[5] ?? "cold";

const provider = memoryProvider();
const sealer = new current.Envelope({ encrypt: provider, cache: false });
const sealed: Buffer[] = [];
for (let i = 0; i < records; i++)
  sealed.push(await sealer.encrypt(randomBytes(64), { context: CONTEXT }));
const aes = current.localAesProvider({ keys: randomBytes(32) });
const one = await new current.Envelope({ encrypt: aes }).encrypt(randomBytes(64), {
  context: CONTEXT,
});
// hier: distinct hierarchical (suite 0x03) records in sequence, the IK cached after the first.
const { hierarchicalProvider, memoryKeyStore } = await import("@envelope/hierarchical");
const hier = hierarchicalProvider({ master: aes, store: memoryKeyStore(), suite: 3 });
const hierSealed: Buffer[] = [];
if (mode === "hier") {
  const hierSealer = new current.Envelope({ encrypt: hier, cache: false });
  for (let i = 0; i < records; i++)
    hierSealed.push(
      await hierSealer.encrypt(randomBytes(64), { context: CONTEXT, output: "binary" }),
    );
}
const subjects = { before: old, after: current };
const best: Record<string, number> = { before: Infinity, after: Infinity };
for (let r = 0; r < rounds; r++) {
  for (const [name, lib] of Object.entries(subjects)) {
    const op =
      mode === "hier"
        ? (
            (e) => (i: number) =>
              e.decrypt(hierSealed[i]!, { context: CONTEXT })
          )(new lib.Envelope({ encrypt: hier }))
        : mode === "warm"
          ? (
              (e) => () =>
                e.decrypt(one, { context: CONTEXT })
            )(new lib.Envelope({ encrypt: aes }))
          : (
              (e) => (i: number) =>
                e.decrypt(sealed[i]!, { context: CONTEXT })
            )(new lib.Envelope({ encrypt: provider }));
    const inFlight = mode === "hier" ? 1 : 64;
    await pool(records, inFlight, op); // warm-up: JIT, and the cache holds the last 1,000
    globalThis.gc?.();
    const start = cpu();
    await pool(records, inFlight, op);
    best[name] = Math.min(best[name]!, (cpu() - start) / records);
  }
}
console.log(
  `${mode}: before ${best.before!.toFixed(2)} µs CPU/record, after ${best.after!.toFixed(2)} (${(best.after! / best.before!).toFixed(2)}×)`,
);
