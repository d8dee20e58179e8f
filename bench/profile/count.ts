// Work for instruction counts under callgrind, which do not depend on the machine's load:
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --import tsx bench/profile/count.ts cold 3000
// and again with 6000: (Ir(6000) - Ir(3000)) / 3000 = instructions per record.
// cold: 3,000 distinct records under an in-memory provider (unwrap ~0), default cache
// (1,000 entries, so every read misses), 64 in flight. unwrap: the provider's unwraps alone.
// warm: one 64 B local-aes value read again.
// hier / hier-nocache: hierarchical (suite 0x03) distinct records, in sequence, with core's
// unwrap cache on (default) / off.
import { randomBytes } from "node:crypto";
import { Envelope, localAesProvider } from "@envelope/core";
import { memoryProvider } from "../lib/memory-provider.js";

// The same as bench/lib/subjects.ts (not imported: it loads every provider package).
const CONTEXT = { table: "users", column: "email", id: "42" };

const mode = process.argv[2] ?? "cold";
const n = Number(process.argv[3] ?? 3000);
const RECORDS = 3000;

async function pool(count: number, op: (i: number) => Promise<unknown>) {
  let next = 0;
  const worker = async () => {
    while (next < count) await op(next++ % RECORDS);
  };
  await Promise.all(Array.from({ length: 64 }, worker));
}

if (mode === "hier" || mode === "hier-nocache") {
  // Hierarchical (suite 0x03), distinct records read in sequence: the IK is cached after
  // the first read; every record is new to core (the bench's "decrypt 10,000 distinct").
  const { hierarchicalProvider, memoryKeyStore } = await import("@envelope/hierarchical");
  const master = localAesProvider({ keys: randomBytes(32) });
  const provider = hierarchicalProvider({ master, store: memoryKeyStore(), suite: 3 });
  const sealer = new Envelope({ encrypt: provider, cache: false });
  // Always 12,000 sealed (so the sealing cancels out of the difference), 3,000 + n read.
  const total = 3000 + n;
  if (total > 12_000) throw new Error("hier modes: n ≤ 9000");
  const sealed: Buffer[] = [];
  for (let i = 0; i < 12_000; i++)
    sealed.push(await sealer.encrypt(randomBytes(64), { context: CONTEXT, output: "binary" }));
  const envelope = new Envelope({
    encrypt: provider,
    ...(mode === "hier-nocache" ? { cache: false as const } : {}),
  });
  for (let i = 0; i < total; i++) await envelope.decrypt(sealed[i]!, { context: CONTEXT });
} else if (mode === "warm") {
  const envelope = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) });
  const sealed = await envelope.encrypt(randomBytes(64), { context: CONTEXT });
  for (let i = 0; i < 3000 + n; i++) await envelope.decrypt(sealed, { context: CONTEXT });
} else {
  const provider = memoryProvider();
  const sealer = new Envelope({ encrypt: provider, cache: false });
  const sealed: Buffer[] = [];
  for (let i = 0; i < RECORDS; i++)
    sealed.push(await sealer.encrypt(randomBytes(64), { context: CONTEXT }));
  const envelope = new Envelope({ encrypt: provider });
  const entries = sealed.map((s) => envelope.inspect(s));
  void entries;
  const request = { context: CONTEXT };
  const wrapped = sealed.map((_, i) => {
    const w = Buffer.alloc(4);
    w.writeUInt32BE(i);
    return { providerId: "memory", keyRef: "m1", wrapped: w };
  });
  const op =
    mode === "unwrap"
      ? (i: number) => provider.unwrap(wrapped[i]!, request)
      : (i: number) => envelope.decrypt(sealed[i]!, { context: CONTEXT });
  await pool(RECORDS, op); // JIT warm-up, fills the cache
  await pool(n, op);
}
