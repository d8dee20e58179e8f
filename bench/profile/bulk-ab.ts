// The bulk case (1,000 rows of 3 fields read from PostgreSQL, decryptMany, 64 in flight,
// 10 ms KMS) with the core built before a change and the current build, alternating, in
// one process. Reports per build: best rate over the bound, and load-independent figures:
// the mean number of unwraps out while any is out (slot use), the slot time left idle
// per KMS call between the first call and the last return, and the mean time from a call's
// start to its timer callback (10 ms asked: what more it took is the thread's lateness).
// Last, the same calls without Envelope (64 loops of the simulated KMS's unwrap), for the
// mean call time the timers give alone.
//   node --expose-gc --import tsx bench/profile/bulk-ab.ts <path/to/old/dist/index.js> [rounds]
import { randomBytes } from "node:crypto";
import * as current from "@envelope/core";
import pg from "pg";
import { simulatedKms } from "../lib/sim-kms.js";

const old = (await import(process.argv[2]!)) as typeof current;
const rounds = Number(process.argv[3] ?? 5);
const ROWS = 1_000;
const CONCURRENCY = 64;
const BOUND = (CONCURRENCY * 1000) / 10;
const fast = simulatedKms({ latencyMs: 0 });
const calls: { start: number; end: number }[] = [];
const traced: current.KeyProvider = {
  ...fast.provider,
  async unwrap(entry, request) {
    const call = { start: performance.now(), end: 0 };
    calls.push(call);
    await new Promise((resolve) => setTimeout(resolve, 10));
    call.end = performance.now();
    return fast.provider.unwrap(entry, request);
  },
};
const client = new pg.Client({
  connectionString: process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test",
});
await client.connect();
const table = `bulk_ab_${process.pid}`;
const columns = ["email", "phone", "ssn"] as const;
const context = (id: number, column: string) => ({ table, column, id: String(id) });
type Row = { id: number; email: Buffer; phone: Buffer; ssn: Buffer };
try {
  await client.query(
    `CREATE TABLE ${table} (id int PRIMARY KEY, email bytea, phone bytea, ssn bytea)`,
  );
  const sealer = new current.Envelope({ encrypt: fast.provider, cache: false });
  for (let id = 0; id < ROWS; id++) {
    const m = await sealer.generateDataKey();
    const values = columns.map((c) =>
      sealer.encryptWithDataKey(m, randomBytes(16).toString("hex"), { context: context(id, c) }),
    );
    m.dataKey.fill(0);
    await client.query(`INSERT INTO ${table} VALUES ($1, $2, $3, $4)`, [id, ...values]);
  }
  const stats: Record<
    string,
    { rates: number[]; use: number[]; idle: number[]; cpu: number[]; call: number[] }
  > = {};
  for (let r = 0; r < rounds; r++) {
    for (const [name, lib] of Object.entries({ before: old, after: current })) {
      calls.length = 0;
      const envelope = new lib.Envelope({ encrypt: traced });
      const cpu0 = process.cpuUsage();
      const started = performance.now();
      const { rows } = await client.query<Row>(`SELECT * FROM ${table} ORDER BY id`);
      const items = rows.flatMap((row) =>
        columns.map((c) => ({ sealed: row[c], context: context(row.id, c) })),
      );
      const opened = await envelope.decryptMany(items, { concurrency: CONCURRENCY });
      const ms = performance.now() - started;
      const cpu = process.cpuUsage(cpu0);
      if (!opened.every((o) => o.ok) || calls.length !== ROWS) throw new Error("bulk-ab: bad run");
      const first = Math.min(...calls.map((c) => c.start));
      const last = Math.max(...calls.map((c) => c.end));
      const out = calls.reduce((sum, c) => sum + (c.end - c.start), 0);
      stats[name] ??= { rates: [], use: [], idle: [], cpu: [], call: [] };
      const s = stats[name]!;
      s.rates.push(ROWS / (ms / 1000));
      s.use.push(out / (last - first));
      s.idle.push(((last - first) * CONCURRENCY - out) / ROWS);
      s.cpu.push((cpu.user + cpu.system) / ROWS);
      s.call.push(out / calls.length);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const { rows } = await client.query<Row>(`SELECT * FROM ${table} ORDER BY id`);
  const entries = rows.map((row) => current.decodeEnvelope(row.email).entries[0]!);
  const alone: number[] = [];
  for (let r = 0; r < rounds; r++) {
    calls.length = 0;
    let next = 0;
    const loop = async () => {
      while (next < ROWS) {
        const i = next++;
        (await traced.unwrap(entries[i]!, { context: context(i, "email") })).fill(0);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, loop));
    alone.push(calls.reduce((sum, c) => sum + (c.end - c.start), 0) / calls.length);
  }
  for (const [name, s] of Object.entries(stats)) {
    console.log(
      `${name}: best ${Math.max(...s.rates).toFixed(0)} rows/s = ${(Math.max(...s.rates) / BOUND).toFixed(3)} of ${BOUND}, median ${(median(s.rates) / BOUND).toFixed(3)}; unwraps out (median) ${median(s.use).toFixed(1)} of ${CONCURRENCY}; idle slot time per call ${median(s.idle).toFixed(2)} ms; mean call ${median(s.call).toFixed(2)} ms; CPU ${median(s.cpu).toFixed(0)} µs/row`,
    );
  }
  console.log(`the simulated KMS alone: mean call ${median(alone).toFixed(2)} ms`);
} finally {
  await client.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
  await client.end();
}
