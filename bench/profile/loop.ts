// A loop to profile: node --import tsx bench/profile/loop.ts warm|cold [seconds] [out.cpuprofile]
// The profiler (node:inspector) starts after the setup, so the profile holds the loop only.
// warm: one 64 B local-aes value decrypted again and again (default unwrap cache).
// cold / cold3: 20,000 distinct records under an in-memory provider, 64 in flight, written
// in suite 0x01 / 0x03.
// hier / hier-nocache: 20,000 distinct hierarchical records in sequence, core cache on / off.
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { dirname } from "node:path";
import { Envelope, localAesProvider } from "@envelope/core";
import { memoryProvider } from "../cases/cold.js";
import { CONTEXT } from "../lib/subjects.js";

const mode = process.argv[2] ?? "warm";
const seconds = Number(process.argv[3] ?? 5);
const outFile = process.argv[4] ?? `bench/profile/out/${mode}.cpuprofile`;
const session = new Session();
session.connect();
let end = 0;
let ops = 0;
let cpu0 = 0;
async function begin() {
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
  end = performance.now() + seconds * 1000;
  const u = process.cpuUsage();
  cpu0 = u.user + u.system;
}
if (mode === "hier" || mode === "hier-nocache") {
  // Hierarchical (suite 0x03), distinct records in sequence, IK cached after the first read.
  const { hierarchicalProvider, memoryKeyStore } = await import("@envelope/hierarchical");
  const master = localAesProvider({ keys: randomBytes(32) });
  const provider = hierarchicalProvider({ master, store: memoryKeyStore(), suite: 3 });
  const sealer = new Envelope({ encrypt: provider, cache: false });
  const sealed: Buffer[] = [];
  for (let i = 0; i < 20_000; i++)
    sealed.push(await sealer.encrypt(randomBytes(64), { context: CONTEXT, output: "binary" }));
  const envelope = new Envelope({
    encrypt: provider,
    ...(mode === "hier-nocache" ? { cache: false as const } : {}),
  });
  for (const s of sealed) await envelope.decrypt(s, { context: CONTEXT });
  await begin();
  while (performance.now() < end) {
    for (const s of sealed) await envelope.decrypt(s, { context: CONTEXT });
    ops += sealed.length;
  }
} else if (mode === "warm") {
  const envelope = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) });
  const sealed = await envelope.encrypt(randomBytes(64), { context: CONTEXT });
  for (let i = 0; i < 20_000; i++) await envelope.decrypt(sealed, { context: CONTEXT });
  await begin();
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) await envelope.decrypt(sealed, { context: CONTEXT });
    ops += 1000;
  }
} else {
  const provider = memoryProvider();
  const suite = mode === "cold3" ? 3 : 1;
  const sealer = new Envelope({ encrypt: provider, cache: false, suite });
  const sealed: Buffer[] = [];
  for (let i = 0; i < 20_000; i++)
    sealed.push(await sealer.encrypt(randomBytes(64), { context: CONTEXT }));
  const envelope = new Envelope({ encrypt: provider });
  for (const s of sealed) await envelope.decrypt(s, { context: CONTEXT });
  await begin();
  while (performance.now() < end) {
    let next = 0;
    const worker = async () => {
      while (next < sealed.length) await envelope.decrypt(sealed[next++]!, { context: CONTEXT });
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    ops += sealed.length;
  }
}
const u = process.cpuUsage();
const { profile } = await session.post("Profiler.stop");
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, JSON.stringify(profile));
console.log(
  `${mode}: ${ops} ops, ${((u.user + u.system - cpu0) / ops).toFixed(2)} µs CPU/op (profiler on)`,
);
