// The direct-mode 10 ms KMS case (decrypt 10,000 distinct records, 64 in flight) with the
// core built before a change and the current build, alternating, in one process.
//   node --expose-gc --import tsx bench/profile/kms-ab.ts <path/to/old/dist/index.js> [rounds]
import { randomBytes } from "node:crypto";
import * as current from "@envelope/core";
import { simulatedKms } from "../lib/sim-kms.js";
import { CONTEXT } from "../lib/subjects.js";

const old = (await import(process.argv[2]!)) as typeof current;
const rounds = Number(process.argv[3] ?? 3);
const kms = simulatedKms({ latencyMs: 10 });
const fast = simulatedKms({ latencyMs: 0, key: kms.key });
const sealer = new current.Envelope({ encrypt: fast.provider, cache: false });
const sealed: Buffer[] = [];
for (let i = 0; i < 10_000; i++)
  sealed.push(await sealer.encrypt(randomBytes(64), { context: CONTEXT }));
const best: Record<string, number> = { before: 0, after: 0 };
for (let r = 0; r < rounds; r++) {
  for (const [name, lib] of Object.entries({ before: old, after: current })) {
    const envelope = new lib.Envelope({ encrypt: kms.provider });
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < sealed.length) await envelope.decrypt(sealed[next++]!, { context: CONTEXT });
      }),
    );
    const rate = sealed.length / ((performance.now() - start) / 1000);
    best[name] = Math.max(best[name]!, rate);
  }
}
const bound = 64 / 0.01;
console.log(
  `direct 64 in flight: before ${best.before!.toFixed(0)}/s (${(best.before! / bound).toFixed(3)} of 6,400), after ${best.after!.toFixed(0)}/s (${(best.after! / bound).toFixed(3)})`,
);
