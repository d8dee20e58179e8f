/**
 * Measures rewrap throughput on 100,000 rows in the local PostgreSQL:
 *   node --import tsx packages/batch-rewrap/bench/rewrap-100k.ts [local-rsa|sim-kms|sim-kms-native] [concurrency] [rows] [workers] [verifyBody]
 * local-rsa: 3072-bit keys (unwrap = one RSA-OAEP private-key operation per row).
 * sim-kms: local-aes keys behind a provider that sleeps 10 ms per call (a KMS round trip).
 * sim-kms-native: a simulated KMS (bench/sim-kms.ts) with a native rewrap (AWS ReEncrypt,
 *   Vault rewrap), each call 10 ms. `bound` = the latency bound of one process,
 *   workers × concurrency / 10 ms (6,400 rows/s at 64) if a row cost one call;
 *   `boundAtCallsPerRow` divides it by the calls a row really costs.
 *   `timerBound`: the same in-flight values each doing `kmsCallsPerValue` bare 10 ms sleeps
 *   in a row, no crypto, no database, timed in this run: what this machine's timers allow
 *   (setTimeout(10) takes ≥ 10 ms, more on a loaded machine). `ofTimerBound` compares.
 * verifyBody: "false" to skip the body check (default on, as in the engine).
 * Not a test: numbers depend on the machine. Prints one JSON line.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect, dropStateTables, rewrapTable } from "@envelope/batch-rewrap";
import { Envelope, type KeyProvider, localAesProvider } from "@envelope/core";
import { generateKeyPair, localRsaProvider } from "@envelope/local-rsa";
import { insertSealedEmails } from "./seed.js";
import { SimKms } from "./sim-kms.js";

const kind = process.argv[2] ?? "local-rsa";
const concurrency = Number(process.argv[3] ?? 8);
const rows = Number(process.argv[4] ?? 100_000);
const workers = Number(process.argv[5] ?? 1);
const verifyBody = process.argv[6] !== "false";
const LATENCY_MS = 10;
const url = process.env.BATCH_REWRAP_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const table = `batch_rewrap_bench_${process.pid}`;
const prefix = `${table}_st`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function slow(inner: KeyProvider, ms: number): KeyProvider {
  return {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    wrap: async (k, r) => {
      await sleep(ms);
      return inner.wrap(k, r);
    },
    unwrap: async (e, r) => {
      await sleep(ms);
      return inner.unwrap(e, r);
    },
  };
}

/** The old and new keys the job uses, and `seed`: the old key without the simulated latency. */
async function keys(): Promise<{ oldKey: KeyProvider; newKey: KeyProvider; seed: KeyProvider }> {
  if (kind === "sim-kms-native") {
    const kms = new SimKms({ latencyMs: LATENCY_MS });
    return {
      oldKey: kms.key("old"),
      newKey: kms.key("new"),
      seed: kms.key("old", { latency: false }),
    };
  }
  if (kind === "sim-kms") {
    const fastOld = localAesProvider({ keys: crypto.getRandomValues(new Uint8Array(32)) });
    const fastNew = localAesProvider({ keys: crypto.getRandomValues(new Uint8Array(32)) });
    return { oldKey: slow(fastOld, 10), newKey: slow(fastNew, 10), seed: fastOld };
  }
  const dir = mkdtempSync(`${tmpdir()}/bench-rsa-`);
  const a = await generateKeyPair({ dir, name: "old" });
  const b = await generateKeyPair({ dir, name: "new" });
  const oldKey = localRsaProvider({ keys: [{ path: a.privateKeyPath }] });
  return {
    oldKey,
    newKey: localRsaProvider({ keys: [{ path: b.privateKeyPath }] }),
    seed: oldKey,
  };
}

const db = await connect(url);
const { oldKey, newKey, seed } = await keys();
await db.query(`DROP TABLE IF EXISTS ${table}`);
await db.query(`CREATE TABLE ${table} (id BIGINT PRIMARY KEY, email BYTEA)`);
// Seed under the old key without its simulated latency (the sleep is for the measured job
// only): same key material, id and key reference, so the job unwraps what this sealed.
const sealer = new Envelope({ encrypt: seed, cache: false });
const seedStart = performance.now();
await insertSealedEmails(db, table, sealer, rows);
const seedMs = performance.now() - seedStart;

// The same KMS work without the database, in this run: `workers × concurrency` values
// rewrapped at once through the same providers (body check and proof included).
async function kmsOnly(n: number): Promise<number> {
  const { rows: sample } = await db.query(`SELECT id, email FROM ${table} ORDER BY id LIMIT ?`, [
    n,
  ]);
  const client = new Envelope({ encrypt: newKey, decrypt: [oldKey], cache: false });
  const queue = [...sample];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: workers * concurrency }, async () => {
      for (let row = queue.shift(); row; row = queue.shift()) {
        await client.rewrap(row.email as Buffer, {
          to: newKey,
          context: { table, column: "email", id: String(row.id) },
          verifyBody,
        });
      }
    }),
  );
  return sample.length / ((performance.now() - start) / 1000);
}
const kmsOnlyRowsPerSecond = kind === "local-rsa" ? undefined : await kmsOnly(Math.min(rows, 5000));

/** Values per second when each of `workers × concurrency` loops does `calls` bare sleeps of 10 ms in a row. */
async function timerBound(calls: number, seconds = 2): Promise<number> {
  let done = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: workers * concurrency }, async () => {
      while (performance.now() < end) {
        for (let c = 0; c < calls; c++) await sleep(LATENCY_MS);
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}
const cpu0 = process.cpuUsage();
const report = await rewrapTable({
  db,
  table,
  primaryKey: "id",
  columns: ["email"],
  to: newKey,
  decrypt: [oldKey],
  apply: true,
  concurrency,
  workers,
  verifyBody,
  batchSize: 500,
  stateTablePrefix: prefix,
});
const cpu = process.cpuUsage(cpu0);
const timer =
  kind.startsWith("sim-kms") && report.kmsCallsPerValue > 0
    ? await timerBound(Math.round(report.kmsCallsPerValue))
    : undefined;
await db.query(`DROP TABLE IF EXISTS ${table}`);
await dropStateTables(db, prefix);
await db.close();
process.stdout.write(
  `${JSON.stringify({
    kind,
    rows,
    concurrency,
    complete: report.complete,
    rewrapped: report.run.rewrapped,
    workers,
    verifyBody,
    kmsCalls: report.run.kmsCalls,
    kmsCallsPerValue: +report.kmsCallsPerValue.toFixed(3),
    ...(kind.startsWith("sim-kms")
      ? {
          bound: (workers * concurrency * 1000) / LATENCY_MS,
          boundAtCallsPerRow: Math.round(
            (workers * concurrency * 1000) / (LATENCY_MS * report.kmsCallsPerValue),
          ),
        }
      : {}),
    seconds: +(report.durationMs / 1000).toFixed(1),
    rowsPerSecond: Math.round(report.rowsPerSecond),
    ...(timer
      ? {
          timerBound: Math.round(timer),
          ofTimerBound: +(report.rowsPerSecond / timer).toFixed(2),
          ofBoundAtCallsPerRow: +(
            (report.rowsPerSecond * LATENCY_MS * report.kmsCallsPerValue) /
            (workers * concurrency * 1000)
          ).toFixed(2),
        }
      : {}),
    cpuMicrosecondsPerRow: +((cpu.user + cpu.system) / Math.max(1, report.run.rewrapped)).toFixed(
      1,
    ),
    seedSeconds: +(seedMs / 1000).toFixed(1),
    ...(kmsOnlyRowsPerSecond ? { kmsOnlyRowsPerSecond: Math.round(kmsOnlyRowsPerSecond) } : {}),
  })}\n`,
);
