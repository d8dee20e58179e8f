// Issue 15, item 2: how far is a cold decrypt from the least it must do? Times, in one
// process and alternating rounds, Envelope.decrypt of distinct records (each under its own
// data key, default unwrap cache: every read misses) against a hand-flattened cold path
// doing only the steps a cold read cannot skip, with core's own building blocks: parse,
// context encoding and AAD, the unwrap-cache key, the provider's unwrap, storing the key
// in a zeroing LRU, the message-key derivation, the commitment check and AES-GCM. What
// Envelope costs above the flat path is its glue (promises, audit, single flight, entry
// selection, signature and purpose checks). Prints the best CPU µs per record of each,
// sequential and 64 in flight, the provider's own unwrap included in both.
//   node --expose-gc --import tsx bench/profile/cold-floor.ts [suite 1|3] [records] [rounds]
import { randomBytes } from "node:crypto";
import { Envelope } from "@envelope/core";
import { ContextMemo } from "../../packages/core/src/cache/context-memo.js";
import { SecretKeyCache } from "../../packages/core/src/cache/secret-key-cache.js";
import { bodyAad } from "../../packages/core/src/crypto/aad.js";
import { openBody } from "../../packages/core/src/crypto/aead.js";
import { commitmentMatches, deriveMessageKeys } from "../../packages/core/src/crypto/kdf.js";
import { snapshotContext } from "../../packages/core/src/format/context.js";
import { parse } from "../../packages/core/src/format/parse.js";
import { unwrapCacheKey } from "../../packages/core/src/keyring/cache-keys.js";
import { cpuUs, memoryProvider, pool } from "../cases/cold.js";
import { CONTEXT } from "../lib/subjects.js";

const suite = Number(process.argv[2] ?? 3) as 1 | 3;
const records = Number(process.argv[3] ?? 20_000);
const rounds = Number(process.argv[4] ?? 6);
const provider = memoryProvider();
const sealer = new Envelope({ encrypt: provider, cache: false, suite });
const sealed: Buffer[] = [];
for (let i = 0; i < records; i++)
  sealed.push(await sealer.encrypt(randomBytes(64), { context: CONTEXT, output: "binary" }));
const entries = sealed.map((value) => parse(value).entries[0]!);
const envelope = new Envelope({ encrypt: provider });
const memo = new ContextMemo();
const cache = new SecretKeyCache({ maxEntries: 1000, ttlMs: 300_000 });
const request = { context: CONTEXT };

async function flat(value: Buffer): Promise<Buffer> {
  const parts = parse(value);
  const aad = bodyAad(parts.flags, parts.messageId, memo.encode(snapshotContext(CONTEXT)), suite);
  const entry = parts.entries[0]!;
  const id = unwrapCacheKey(provider, entry, request);
  const dataKey = await provider.unwrap(entry, request);
  cache.set(id, dataKey, undefined);
  const keys = deriveMessageKeys(dataKey, parts.messageId, suite);
  dataKey.fill(0);
  if (!commitmentMatches(keys.commitment, parts.commitment)) throw new Error("commitment");
  const plaintext = openBody(keys.encryptionKey, parts.body, aad);
  keys.encryptionKey.fill(0);
  return plaintext;
}

const cases: [string, (i: number) => Promise<unknown>][] = [
  ["Envelope.decrypt", (i) => envelope.decrypt(sealed[i]!, { context: CONTEXT })],
  ["flat cold path", (i) => flat(sealed[i]!)],
  ["provider.unwrap alone", (i) => provider.unwrap(entries[i]!, request)],
];
const best = new Map<string, number>();
for (let r = 0; r < rounds; r++)
  for (const [name, op] of cases)
    for (const concurrency of [1, 64]) {
      globalThis.gc?.();
      const start = cpuUs();
      await pool(records, concurrency, op);
      const us = (cpuUs() - start) / records;
      const key = `${name}, ${concurrency === 1 ? "sequential" : "64 in flight"}`;
      best.set(key, Math.min(best.get(key) ?? Number.POSITIVE_INFINITY, us));
    }
console.log(
  `suite 0x0${suite}, ${records} distinct records, best of ${rounds} rounds, ${process.version}`,
);
for (const [key, us] of best) console.log(`${key.padEnd(40)} ${us.toFixed(1)} µs CPU/record`);
