/**
 * local-aes rewrap with the job shared by several processes on this machine (the way
 * docs/ROTATION.md scales a job out: same job, same state tables, ranges claimed by
 * whichever process is free), next to the rate of one process in the same run:
 *   node --import tsx packages/batch-rewrap/bench/rewrap-processes.ts [rows] [processes] [concurrency]
 * One Node process runs the engine's main thread on one core (the crypto of a local-aes
 * rewrap is ~50 µs of CPU per row on it), so on a 2-core machine the second core is used
 * by a second process. Rows/s = all rows / wall time from "go" (sent once every process has
 * started and connected) to the last process's report. Not a test: prints JSON lines.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { availableParallelism, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { connect, dropStateTables, rewrapTable } from "@envelope/batch-rewrap";
import { Envelope, localAesProvider } from "@envelope/core";
import { insertSealedEmails } from "./seed.js";

const baseUrl = process.env.BATCH_REWRAP_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const [, , role] = process.argv;

if (role === "child") {
  // argv: child <table> <prefix> <oldKeyHex> <newKeyHex> <concurrency> <rangeSize>
  const [table, prefix, oldHex, newHex, concurrency, rangeSize] = process.argv.slice(3);
  const db = await connect(baseUrl);
  process.stdout.write("ready\n");
  await new Promise((resolve) => process.stdin.once("data", resolve));
  const report = await rewrapTable({
    db,
    table: table!,
    primaryKey: "id",
    columns: ["email"],
    to: localAesProvider({ keys: newHex! }),
    decrypt: [localAesProvider({ keys: oldHex! })],
    apply: true,
    concurrency: Number(concurrency),
    batchSize: 500,
    rangeSize: Number(rangeSize),
    stateTablePrefix: prefix!,
    jobId: `bench-${table}`,
  });
  await db.close();
  process.stdout.write(`${JSON.stringify({ rewrapped: report.run.rewrapped })}\n`);
  process.exit(0);
}

const rows = Number(process.argv[2] ?? 50_000);
const processes = Number(process.argv[3] ?? availableParallelism());
const concurrency = Number(process.argv[4] ?? 16);
const table = `batch_rewrap_procs_${process.pid}`;
const db = await connect(baseUrl);
const oldKey = randomBytes(32).toString("hex");
const newKey = randomBytes(32).toString("hex");
const line = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function seed(): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${table}`);
  await db.query(`CREATE TABLE ${table} (id BIGINT PRIMARY KEY, email BYTEA)`);
  const sealer = new Envelope({ encrypt: localAesProvider({ keys: oldKey }), cache: false });
  await insertSealedEmails(db, table, sealer, rows);
}

/** Runs the job in `n` processes at once; rows/s over the wall time of all of them. */
async function run(n: number) {
  await seed();
  const prefix = `${table}_st${n}`;
  const rangeSize = Math.max(1000, Math.floor(rows / (4 * n)));
  const self = fileURLToPath(import.meta.url);
  const children: ReturnType<typeof spawn>[] = [];
  let ready = 0;
  let t0 = 0;
  let go: () => void;
  const allReady = new Promise<void>((resolve) => {
    go = resolve;
  });
  const outputs = Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<number>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            [
              "--import",
              "tsx",
              self,
              "child",
              table,
              prefix,
              oldKey,
              newKey,
              String(concurrency),
              String(rangeSize),
            ],
            { stdio: ["pipe", "pipe", "inherit"] },
          );
          children.push(child);
          let out = "";
          child.stdout!.on("data", (d) => {
            out += d;
            if (out === "ready\n" && ++ready === n) go();
          });
          child.on("error", reject);
          child.on("exit", (code) =>
            code === 0
              ? resolve(JSON.parse(out.trim().split("\n").pop()!).rewrapped)
              : reject(new Error(`bench child exited with ${code}`)),
          );
        }),
    ),
  );
  await allReady;
  t0 = performance.now();
  for (const child of children) child.stdin!.end("go\n");
  const rewrapped = await outputs;
  const seconds = (performance.now() - t0) / 1000;
  await dropStateTables(db, prefix);
  const { rows: left } = await db.query(`SELECT COUNT(*) AS n FROM ${table}`);
  return { rewrapped: rewrapped.reduce((a, b) => a + b, 0), seconds, tableRows: Number(left[0].n) };
}

try {
  for (const n of [1, processes]) {
    const r = await run(n);
    line({
      case: `local-aes rewrap, job shared by ${n} process(es)`,
      rows,
      processes: n,
      concurrency,
      rewrapped: r.rewrapped,
      seconds: +r.seconds.toFixed(2),
      rowsPerSecond: Math.round(r.rewrapped / r.seconds),
      targetRowsPerSecond: 20_000,
      targetMet: r.rewrapped === rows && r.rewrapped / r.seconds >= 20_000,
      loadavg: loadavg().map((x) => +x.toFixed(2)),
    });
    if (r.rewrapped !== rows) throw new Error(`bench: ${r.rewrapped} of ${rows} rows rewrapped`);
  }
} finally {
  await db.query(`DROP TABLE IF EXISTS ${table}`);
  await db.close();
}
