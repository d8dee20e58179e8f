/**
 * CPU of the rewrap engine per row, for comparing engine changes on a loaded machine
 * (wall-clock rates mean little there; CPU time per row moves far less):
 *   node --import tsx packages/batch-rewrap/bench/engine-cpu.ts [rows] [jobs] [concurrency]
 * Seeds `rows` local-aes values in PostgreSQL, runs one warm-up job (JIT), then `jobs`
 * measured jobs over the whole table (each rewraps every row to the other key: body
 * verified, compare-and-swap, checkpoints, as `rewrapTable` does by default). Prints one
 * JSON line per job (process CPU of all threads per row, PostgreSQL backends' CPU per row)
 * and the medians. With ENGINE_CPU_IN_MEMORY=1 also the CPU per row of `Envelope.rewrap`
 * alone on the same values (no database), the floor the engine adds to.
 *
 * For instruction counts (callgrind counts them whatever the machine's load), bundle it
 * first: under tsx, esbuild's keepNames helper runs a defineProperty for every closure the
 * sources create per call, which the built packages do not do (3% of a tsx profile). Then
 * run jobs = 2 and jobs = 3 and take the difference: the instructions of one warm job
 * (divide by `rows`). Or, in one process: every job is bracketed by `mark()`, so
 *   valgrind --tool=callgrind --dump-before='*GetUid*' --callgrind-out-file=cg.out node … 3000 4
 * writes one dump per segment: cg.out.2, .4, .6, … hold the jobs (warm-up first), and the
 * `summary:` line of each is that job's instruction count. Separate processes differ by
 * up to 40% per job (JIT and GC timing); jobs of one process are far closer.
 *   esbuild packages/batch-rewrap/bench/engine-cpu.ts --bundle --platform=node --format=esm \
 *     --tsconfig=tsconfig.json --external:pg --external:mysql2 --external:@electric-sql/pglite \
 *     --outfile=packages/batch-rewrap/bench/engine-cpu.bundle.mjs   # inside the package: pg resolves
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
 *     node packages/batch-rewrap/bench/engine-cpu.bundle.mjs 3000 2   # then 3000 3
 * Not a test: prints JSON lines.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { connect, dropStateTables, rewrapTable } from "@envelope/batch-rewrap";
import { Envelope, localAesProvider } from "@envelope/core";
import { insertSealedEmails } from "./seed.js";

const rows = Number(process.argv[2] ?? 20_000);
const jobs = Number(process.argv[3] ?? 5);
const concurrency = Number(process.argv[4] ?? 16);
const APP = `engine_cpu_${process.pid}`;
const baseUrl = process.env.BATCH_REWRAP_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const url = `${baseUrl}${baseUrl.includes("?") ? "&" : "?"}application_name=${APP}`;
const table = `engine_cpu_${process.pid}`;
const prefix = `${table}_st`;
const line = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const db = await connect(url);
/**
 * Marks a job's start and end for callgrind: run with --dump-before='*GetUid*' and each
 * job's instructions land in a dump file of their own (a native call nothing else here makes).
 */
const mark = () => process.getuid?.();

/** CPU milliseconds of each PostgreSQL backend serving this process (Linux /proc). */
async function backendCpu(): Promise<Map<number, number>> {
  const { rows: found } = await db.query(
    "SELECT pid FROM pg_stat_activity WHERE application_name = ?",
    [APP],
  );
  const out = new Map<number, number>();
  for (const { pid } of found) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      out.set(Number(pid), (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // the backend ended: not counted
    }
  }
  return out;
}

let [from, to] = [
  localAesProvider({ keys: randomBytes(32) }),
  localAesProvider({ keys: randomBytes(32) }),
];
try {
  await db.query(`DROP TABLE IF EXISTS ${table}`);
  await db.query(`CREATE TABLE ${table} (id BIGINT PRIMARY KEY, email BYTEA)`);
  await insertSealedEmails(db, table, new Envelope({ encrypt: from, cache: false }), rows);

  const job = async () => {
    const pg0 = await backendCpu();
    mark();
    const cpu0 = process.cpuUsage();
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to,
      decrypt: [from],
      apply: true,
      concurrency,
      batchSize: 500,
      stateTablePrefix: prefix,
    });
    const cpu = process.cpuUsage(cpu0);
    mark();
    const pg1 = await backendCpu();
    await dropStateTables(db, prefix);
    if (!report.complete || report.run.rewrapped !== rows)
      throw new Error(`bench: the job rewrapped ${report.run.rewrapped} of ${rows}`);
    [from, to] = [to, from];
    const pgMs = [...pg1].reduce((n, [pid, ms]) => n + ms - (pg0.get(pid) ?? 0), 0);
    return {
      cpuUsPerRow: +((cpu.user + cpu.system) / rows).toFixed(1),
      userUsPerRow: +(cpu.user / rows).toFixed(1),
      pgCpuUsPerRow: +((pgMs * 1000) / rows).toFixed(1),
      rowsPerSecond: Math.round(report.rowsPerSecond),
    };
  };

  const inMemory = async () => {
    const { rows: read } = await db.query(`SELECT id, email FROM ${table} ORDER BY id`);
    const client = new Envelope({ encrypt: to, decrypt: [from], cache: false });
    const cpu0 = process.cpuUsage();
    for (const row of read) {
      await client.rewrap(row.email as Buffer, {
        to,
        context: { table, column: "email", id: String(row.id) },
        verifyBody: true,
      });
    }
    const cpu = process.cpuUsage(cpu0);
    return +((cpu.user + cpu.system) / read.length).toFixed(1);
  };

  line({ warmup: await job(), loadavg: loadavg()[0] });
  const results = [];
  const memory: number[] = [];
  for (let i = 0; i < jobs; i++) {
    if (process.env.ENGINE_CPU_IN_MEMORY === "1") memory.push(await inMemory());
    const r = await job();
    results.push(r);
    line({ job: i + 1, ...r, loadavg: loadavg()[0] });
  }
  if (jobs > 0)
    line({
      rows,
      jobs,
      medianCpuUsPerRow: median(results.map((r) => r.cpuUsPerRow)),
      medianPgCpuUsPerRow: median(results.map((r) => r.pgCpuUsPerRow)),
      ...(memory.length ? { medianInMemoryCpuUsPerRow: median(memory) } : {}),
    });
} finally {
  await db.query(`DROP TABLE IF EXISTS ${table}`);
  await dropStateTables(db, prefix);
  await db.close();
}
