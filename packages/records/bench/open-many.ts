/**
 * Issue 15, item 3 for records: 1,000 rows read from PostgreSQL through the pg helper with
 * a simulated KMS that takes 10 ms per call, opened by a loop of `await cipher.open(row)`
 * and by `openMany` (through `encryptedPg(...).findMany`, SELECT included) at 64 in flight.
 * The bound is concurrency / KMS latency: 64 / 10 ms = 6,400 rows/s.
 *
 *   node --import tsx packages/records/bench/open-many.ts [rows=1000] [concurrency=64] [loopRows=rows] [repeats=3]
 *
 * Each measurement starts from a cold unwrap cache (a fresh Envelope): one KMS call per row.
 * A last case opens the same rows with a KMS that answers at once: the CPU ceiling of the
 * machine at that moment, which no 10 ms-KMS read can beat.
 * Rows have three encrypted fields under one data key, like a users table. Not a test:
 * figures depend on the machine and its load; it prints a table and one JSON line.
 */
import { randomBytes } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { Envelope } from "@envelope/core";
import pg from "pg";
import { simulatedKms } from "../../../bench/lib/sim-kms.js";
import { createRecordCipher, encryptedPg, type RecordCipher } from "../src/index.js";

const ROWS = Number(process.argv[2] ?? 1_000);
const CONCURRENCY = Number(process.argv[3] ?? 64);
const LOOP_ROWS = Number(process.argv[4] ?? ROWS);
const REPEATS = Number(process.argv[5] ?? 3);
const KMS_LATENCY_MS = 10;
const PG_URL = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const TABLE = `bench_open_many_${process.pid}_${randomBytes(3).toString("hex")}`;
const BOUND = (CONCURRENCY * 1000) / KMS_LATENCY_MS; // rows/s

const schema = { table: TABLE, encrypted: ["email", "phone", "ssn"] } as const;
const kms = simulatedKms({ latencyMs: KMS_LATENCY_MS });
const fast = simulatedKms({ latencyMs: 0, key: kms.key }); // seeding does not wait

interface Measure {
  case: string;
  rows: number;
  ms: number;
  rowsPerSec: number;
  kmsCalls: number;
  ofBound: number;
  /** CPU time (user + system) of this process per row: less sensitive to the machine's load. */
  cpuUsPerRow: number;
}

/** A cipher on a fresh Envelope: an empty unwrap cache, as in a process that just started. */
const coldCipher = () =>
  createRecordCipher(new Envelope({ encrypt: kms.provider }), schema, {
    concurrency: CONCURRENCY,
  });

async function measure(name: string, run: () => Promise<number>): Promise<Measure> {
  const calls = kms.counter.calls;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const rows = await run();
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const rowsPerSec = (rows / ms) * 1000;
  return {
    case: name,
    rows,
    ms,
    rowsPerSec,
    kmsCalls: kms.counter.calls - calls,
    ofBound: rowsPerSec / BOUND,
    cpuUsPerRow: (used.user + used.system) / rows,
  };
}

async function seed(db: pg.Client): Promise<void> {
  await db.query(
    `CREATE TABLE ${TABLE} (id int PRIMARY KEY, email text, phone text, ssn text, name text)`,
  );
  const sealer = createRecordCipher(new Envelope({ encrypt: fast.provider }), schema);
  for (let start = 0; start < ROWS; start += 200) {
    const batch: unknown[][] = [];
    for (let id = start; id < Math.min(start + 200, ROWS); id++) {
      const r = await sealer.seal({
        id,
        email: `user${id}@example.com`,
        phone: `+1 555 ${String(id).padStart(4, "0")}`,
        ssn: `${100 + (id % 800)}-55-${String(id % 10_000).padStart(4, "0")}`,
        name: `User ${id}`,
      });
      batch.push([r.id, r.email, r.phone, r.ssn, r.name]);
    }
    const values = batch.map(
      (_, i) => `($${i * 5 + 1}, $${i * 5 + 2}, $${i * 5 + 3}, $${i * 5 + 4}, $${i * 5 + 5})`,
    );
    await db.query(`INSERT INTO ${TABLE} VALUES ${values.join(", ")}`, batch.flat());
  }
}

function checkOpened(rows: readonly Record<string, unknown>[]): void {
  for (const r of rows) {
    if (r.email !== `user${r.id}@example.com`) throw new Error(`bench: row ${r.id} opened wrong`);
  }
}

const median = (xs: Measure[]) =>
  [...xs].sort((a, b) => a.rowsPerSec - b.rowsPerSec)[xs.length >> 1]!;

async function main(): Promise<void> {
  const db = new pg.Client({ connectionString: PG_URL });
  try {
    await db.connect();
  } catch {
    process.stderr.write(`No PostgreSQL at ${PG_URL}: set BENCH_PG_URL.\n`);
    process.exit(2);
  }
  try {
    await seed(db);
    const results: Measure[] = [];

    // Baseline: the loop an application writes without a bulk API, one 10 ms call per row.
    results.push(
      await measure(`loop of await open, ${LOOP_ROWS} rows (SELECT included)`, async () => {
        const cipher = coldCipher();
        const { rows } = await db.query(`SELECT * FROM ${TABLE} ORDER BY id LIMIT ${LOOP_ROWS}`);
        const opened: Record<string, unknown>[] = [];
        for (const row of rows) opened.push(await cipher.open(row));
        checkOpened(opened);
        return opened.length;
      }),
    );

    const helper: Measure[] = [];
    const bare: Measure[] = [];
    const core: Measure[] = [];
    const ceiling: Measure[] = [];
    for (let i = 0; i < REPEATS; i++) {
      helper.push(
        await measure(`encryptedPg.findMany → openMany (SELECT included)`, async () => {
          const opened = await encryptedPg(db, coldCipher()).findMany(TABLE, { orderBy: "id" });
          checkOpened(opened);
          return opened.length;
        }),
      );
      const { rows } = await db.query(`SELECT * FROM ${TABLE} ORDER BY id`);
      const cipher: RecordCipher = coldCipher();
      bare.push(
        await measure(`cipher.openMany alone (rows already read)`, async () => {
          const opened = await cipher.openMany(rows);
          if (!opened.every((r) => r.ok)) throw new Error("bench: a row failed to open");
          checkOpened(opened.map((r) => (r.ok ? r.value : {})));
          return opened.length;
        }),
      );
      // Reference: core's decryptMany over the same values (no id, context or type-tag work).
      const items = rows.flatMap((r) =>
        schema.encrypted.map((column) => ({
          sealed: r[column] as string,
          context: { table: TABLE, column, id: String(r.id) },
        })),
      );
      const envelope = new Envelope({ encrypt: kms.provider });
      core.push(
        await measure(`reference: envelope.decryptMany of the same values`, async () => {
          const opened = await envelope.decryptMany(items, { concurrency: CONCURRENCY });
          if (!opened.every((r) => r.ok)) throw new Error("bench: a value failed to open");
          return rows.length;
        }),
      );
      // The CPU ceiling of this machine right now: the same openMany with a KMS that
      // answers at once. No read over a 10 ms KMS can beat it, whatever the concurrency.
      const instant = createRecordCipher(new Envelope({ encrypt: fast.provider }), schema, {
        concurrency: CONCURRENCY,
      });
      ceiling.push(
        await measure(`ceiling: cipher.openMany with a 0 ms KMS (CPU only)`, async () => {
          const opened = await instant.openMany(rows);
          if (!opened.every((r) => r.ok)) throw new Error("bench: a row failed to open");
          return opened.length;
        }),
      );
    }
    results.push(median(helper), median(bare), median(core), median(ceiling));
    report(results, { helper, bare, core, ceiling });
  } finally {
    await db.query(`DROP TABLE IF EXISTS ${TABLE}`).catch(() => {});
    await db.end();
  }
}

function report(results: Measure[], runs: Record<string, Measure[]>): void {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const loop = results[0]!;
  const [load1] = loadavg();
  out(
    `\n${ROWS} rows × 3 encrypted fields, simulated KMS ${KMS_LATENCY_MS} ms/call, ${CONCURRENCY} in flight: bound ${BOUND.toLocaleString("en-US")} rows/s. Median of ${REPEATS} runs; ${cpus().length} cores, load average ${load1!.toFixed(1)}.`,
  );
  out(
    `${"case".padEnd(52)} ${"rows/s".padStart(7)} ${"ms".padStart(6)} ${"KMS".padStart(5)} ${"of bound".padStart(8)} ${"× loop".padStart(6)} ${"CPU µs/row".padStart(10)}`,
  );
  for (const r of results) {
    out(
      `${r.case.padEnd(52)} ${Math.round(r.rowsPerSec).toLocaleString("en-US").padStart(7)} ${r.ms.toFixed(0).padStart(6)} ${String(r.kmsCalls).padStart(5)} ${r.ofBound.toFixed(3).padStart(8)} ${(r.rowsPerSec / loop.rowsPerSec).toFixed(1).padStart(6)} ${r.cpuUsPerRow.toFixed(0).padStart(10)}`,
    );
  }
  const each = (xs: Measure[]) => xs.map((r) => r.ofBound.toFixed(3)).join(" ");
  out(
    `of bound, every run: findMany ${each(runs.helper!)} | openMany ${each(runs.bare!)} | decryptMany ${each(runs.core!)} | 0 ms KMS ${each(runs.ceiling!)}`,
  );
  const ceiling = results[4]!.rowsPerSec;
  out(
    `With a 10 ms KMS, findMany reaches ${((results[1]!.rowsPerSec / ceiling) * 100).toFixed(0)}% and openMany ${((results[2]!.rowsPerSec / ceiling) * 100).toFixed(0)}% of what this machine's CPU allows now (${Math.round(ceiling).toLocaleString("en-US")} rows/s with a 0 ms KMS); the bound needs ${Math.round(BOUND).toLocaleString("en-US")}.`,
  );
  out(
    JSON.stringify({
      rows: ROWS,
      concurrency: CONCURRENCY,
      kmsLatencyMs: KMS_LATENCY_MS,
      bound: BOUND,
      load1,
      results,
      runs,
    }),
  );
}

await main();
