// Issue 15, item 2: how much does the CPU a record costs move direct mode's rate at 64 in
// flight through the simulated 10 ms KMS? Alternating rounds in one process: cold
// Envelope.decrypt of 10,000 distinct records, and the simulated KMS's unwrap of the same
// entries followed by a busy loop of 0, 5, 10, 15 or 20 µs (a stand-in for the CPU a
// record costs after its KMS answer); and the first two again with the event loop kept
// awake (keepLoopAwake: the KMS's timers fire when due). Prints the best, median and worst
// round of each, as a share of 64 / 10 ms, and the median CPU per op of all threads (GC
// included; in the awake rows, the spinning loop too).
//   node --import tsx bench/profile/direct-sensitivity.ts [rounds, default 7]
import { decodeEnvelope, Envelope } from "@envelope/core";
import { keepLoopAwake, timeBatch } from "../lib/measure.js";
import { simulatedKms } from "../lib/sim-kms.js";
import { CONTEXT } from "../lib/subjects.js";

const zero = simulatedKms({ latencyMs: 0 });
const kms = simulatedKms({ latencyMs: 10, key: zero.key });
const sealer = new Envelope({ encrypt: zero.provider, cache: false });
const values: Buffer[] = [];
for (let i = 0; i < 10_000; i++)
  values.push(await sealer.encrypt(Buffer.alloc(64, 1), { context: CONTEXT, output: "binary" }));
const entries = values.map((v) => decodeEnvelope(v).entries[0]!);
const request = { context: CONTEXT };
/** Keeps the thread busy for `us` µs. */
const busy = (us: number) => {
  const end = performance.now() + us / 1000;
  while (performance.now() < end);
};
/** A case's name, and a maker of its op (a new client per round: a cold cache). */
type Case = [string, () => (i: number) => Promise<unknown>];
const rounds = new Map<string, number[]>();
const cpuUs = new Map<string, number[]>(); // CPU per op, all threads
/** Cold decrypts through a new client (an empty unwrap cache). */
const decrypts = () => {
  const env = new Envelope({ encrypt: kms.provider });
  return (i: number) => env.decrypt(values[i]!, { context: CONTEXT });
};
const cases: Case[] = [
  ["Envelope.decrypt", decrypts],
  ["Envelope.decrypt, awake", decrypts],
  ["KMS alone, awake", () => (i) => kms.provider.unwrap(entries[i]!, request)],
  ...[0, 5, 10, 15, 20].map(
    (x) =>
      [
        `KMS alone + ${x} µs busy`,
        () => async (i: number) => {
          await kms.provider.unwrap(entries[i]!, request);
          busy(x);
        },
      ] as Case,
  ),
];
for (let r = 0; r < Number(process.argv[2] ?? 7); r++)
  for (const [name, make] of cases) {
    const cpu0 = process.cpuUsage();
    const stop = name.endsWith(", awake") ? keepLoopAwake() : () => {};
    const t = await timeBatch(10_000, 64, make()).finally(stop);
    const cpu = process.cpuUsage(cpu0);
    rounds.set(name, [...(rounds.get(name) ?? []), t.opsPerSec / 6400]);
    cpuUs.set(name, [...(cpuUs.get(name) ?? []), (cpu.user + cpu.system) / 10_000]);
  }
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
for (const [k, v] of rounds) {
  const s = [...v].sort((a, b) => a - b);
  console.log(
    `${k.padEnd(26)} best ${(s.at(-1)! * 100).toFixed(1)}%  median ${(s[s.length >> 1]! * 100).toFixed(1)}%  worst ${(s[0]! * 100).toFixed(1)}%  CPU ${median(cpuUs.get(k)!).toFixed(1)} µs/op`,
  );
}
