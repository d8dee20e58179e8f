import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { decodeEnvelope, Envelope, encodeContext, localAesProvider } from "@envelope/core";
import { hierarchicalProvider, memoryKeyStore } from "@envelope/hierarchical";
import { MICRO, timeSequential } from "../lib/measure.js";
import { CONTEXT } from "../lib/subjects.js";
import { COLD_CPU_TARGET_US, runCold } from "./cold.js";

export interface BreakdownResult {
  step: string;
  us: number;
}

const KW_IV = Buffer.from("A6A6A6A6A6A6A6A6", "hex");

/**
 * The steps of a 64 B encrypt / decrypt, each timed alone, to show where the time over
 * the AES-GCM floor goes (evidence for changes in core).
 */
export async function runBreakdown(log: (line: string) => void): Promise<BreakdownResult[]> {
  const key = randomBytes(32);
  const messageId = randomBytes(32);
  const info = Buffer.from("envelope:v1:suite1:key+commitment");
  const envelope = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) });
  const sealed = await envelope.encrypt(randomBytes(64), { context: CONTEXT, output: "binary" });
  const parts = decodeEnvelope(sealed);
  const wrapped = Buffer.from(parts.entries[0]!.wrapped);
  const kw = (() => {
    const c = createCipheriv("id-aes256-wrap", key, KW_IV);
    return Buffer.concat([c.update(randomBytes(32)), c.final()]);
  })();
  const nonce = Buffer.alloc(12);
  const body = (() => {
    const c = createCipheriv("aes-256-gcm", key, nonce);
    const ct = Buffer.concat([c.update(randomBytes(64)), c.final()]);
    return { ct, tag: c.getAuthTag() };
  })();
  const big = randomBytes(2 ** 20);
  // Hierarchical: 20,000 distinct records, cycled, so core's 1,000-entry unwrap cache always misses.
  const hier = hierarchicalProvider({
    master: localAesProvider({ keys: randomBytes(32) }),
    store: memoryKeyStore(),
  });
  const hierOn = new Envelope({ encrypt: hier });
  const hierOff = new Envelope({ encrypt: hier, cache: false });
  const distinct: Buffer[] = [];
  for (let i = 0; i < 20_000; i++)
    distinct.push(await hierOn.encrypt(randomBytes(64), { context: CONTEXT, output: "binary" }));
  const entries = distinct.map((d) => decodeEnvelope(d).entries[0]!);
  const value = randomBytes(64);
  let n = 0;
  const cycle = () => n++ % distinct.length;
  const steps: [string, () => unknown][] = [
    [
      "hierarchical provider.generateDataKey alone (pooled seed + HMAC)",
      () => hier.generateDataKey!({ context: CONTEXT }),
    ],
    [
      "hierarchical provider.unwrap alone (HMAC derive from the cached IK)",
      () => hier.unwrap(entries[cycle()]!, { context: CONTEXT }),
    ],
    ["Envelope.encrypt, hierarchical, 64 B", () => hierOn.encrypt(value, { context: CONTEXT })],
    [
      "Envelope.decrypt, hierarchical, distinct records, core unwrap cache on",
      () => hierOn.decrypt(distinct[cycle()]!, { context: CONTEXT }),
    ],
    [
      "Envelope.decrypt, hierarchical, distinct records, core unwrap cache off",
      () => hierOff.decrypt(distinct[cycle()]!, { context: CONTEXT }),
    ],
    [
      "hkdfSync SHA-256, 64 bytes out (per-message key + commitment)",
      () => hkdfSync("sha256", key, messageId, info, 64),
    ],
    ["decodeEnvelope (64 B value)", () => decodeEnvelope(sealed)],
    ["encodeContext (3 pairs)", () => encodeContext(CONTEXT)],
    [
      "unwrap-cache key string (base64 of wrapped key + join)",
      () => `local-aes\u0000ref\u0000${wrapped.toString("base64")}\u0000`,
    ],
    [
      "AES-GCM decrypt 64 B incl. createDecipheriv (the floor's work)",
      () => {
        const d = createDecipheriv("aes-256-gcm", key, nonce);
        d.setAuthTag(body.tag);
        d.update(body.ct);
        return d.final();
      },
    ],
    [
      "AES-KW unwrap of a 32-byte key (local-aes / hierarchical)",
      () => {
        const d = createDecipheriv("id-aes256-wrap", key, KW_IV);
        return Buffer.concat([d.update(kw), d.final()]);
      },
    ],
    ["randomBytes(32)", () => randomBytes(32)],
    ["Buffer.concat copy of 1 MiB", () => Buffer.concat([big])],
    [
      "Envelope.decrypt warm cache, 64 B (all of the above that apply)",
      () => envelope.decrypt(sealed, { context: CONTEXT }),
    ],
  ];
  const results: BreakdownResult[] = [];
  for (const [step, fn] of steps) {
    const t = await timeSequential(fn, { ...MICRO, measureMs: 150 });
    const us = 1e6 / t.opsPerSec;
    results.push({ step, us });
    log(`  ${us.toFixed(2).padStart(8)} µs  ${step}`);
  }
  // Issue 15, item 2: CPU per record of a decrypt whose data key is not cached, besides
  // the unwrap (an in-memory provider whose own unwrap CPU is measured and subtracted).
  for (const cold of await runCold(() => {}, 10_000)) {
    const step = `cold CPU per record (µs), ${cold.case}, besides the unwrap (${cold.providerUs.toFixed(2)} µs), mean of ${cold.records.toLocaleString("en-US")} reads (rounds of 10,000: best ${cold.bestUs.toFixed(1)}, median ${cold.medianUs.toFixed(1)}): target ≤ ${COLD_CPU_TARGET_US}`;
    results.push({ step, us: cold.cpuUs });
    log(`  ${cold.cpuUs.toFixed(2).padStart(8)} µs  ${step}`);
  }
  return results;
}
