import { randomBytes } from "node:crypto";
import { decodeEnvelope, Envelope, localAesProvider } from "@envelope/core";
import { hierarchicalProvider, memoryKeyStore } from "@envelope/hierarchical";
import { deriveMessageKeys } from "../packages/core/src/crypto/kdf.ts";
import { derive } from "../packages/hierarchical/src/data-key.ts";

const CONTEXT = { table: "users", column: "email", id: "42" };
const master = localAesProvider({ keys: randomBytes(32) });
const store = memoryKeyStore();
const hp = hierarchicalProvider({ master, store, suite: 3 });
const env = new Envelope({ encrypt: hp });
const pt = randomBytes(64);
const recs: Buffer[] = [];
for (let i = 0; i < 10000; i++)
  recs.push(await env.encrypt(pt, { context: CONTEXT, output: "binary" }));
const parts = recs.map((r) => decodeEnvelope(r));
const direct = new Envelope({ encrypt: master });
const one = await direct.encrypt(pt, { context: CONTEXT, output: "binary" });
const ik = randomBytes(32),
  dek = randomBytes(32);
const best: Record<string, number> = {};
const time = async (name: string, f: (i: number) => unknown) => {
  const t = performance.now();
  for (let i = 0; i < 10000; i++) await f(i);
  best[name] = Math.min(best[name] ?? Infinity, (performance.now() - t) / 10);
};
const timeSync = (name: string, f: (i: number) => unknown) => {
  const t = performance.now();
  for (let i = 0; i < 10000; i++) f(i);
  best[name] = Math.min(best[name] ?? Infinity, (performance.now() - t) / 10);
};
for (let r = 0; r < 8; r++) {
  await time("warm decrypt", () => direct.decrypt(one, { context: CONTEXT }));
  await time("distinct decrypt suite 3", (i) => env.decrypt(recs[i]!, { context: CONTEXT }));
  await time("provider.unwrap (await)", (i) =>
    hp.unwrap(parts[i]!.entries[0]!, { context: CONTEXT }),
  );
  timeSync("derive (hash x2)", (i) => derive(ik, parts[i]!.entries[0]!.wrapped));
  timeSync("deriveMessageKeys suite 3", (i) => deriveMessageKeys(dek, parts[i]!.messageId, 3));
  timeSync("deriveMessageKeys suite 1", (i) => deriveMessageKeys(dek, parts[i]!.messageId, 1));
  timeSync("decodeEnvelope", (i) => decodeEnvelope(recs[i]!));
}
for (const [k, v] of Object.entries(best)) console.log(k.padEnd(28), v.toFixed(2), "µs");
