/**
 * What the check before `complete` (report.verified: the column read again, headers parsed,
 * no KMS call) costs, on a table in the local PostgreSQL:
 *   node --import tsx packages/batch-rewrap/bench/verify-cost.ts [rows] [latencyMs]
 * Seeds `rows` values under a local AES key, then times three things:
 * - `first`: the apply run that creates the job and rewraps every value;
 * - `again`: the same job id run again (every range done: it goes over the table again and
 *   skips every value without a KMS call), the case where the check weighs most;
 * - `scan`: `countKeyRefs` over the column alone (what the check reads and parses).
 * `latencyMs` (default 0) makes each key call sleep that long, as a KMS round trip would.
 * Build the package first (`pnpm --filter @envelope/batch-rewrap build`): this imports its dist.
 * Not a test: numbers depend on the machine. Prints one JSON line.
 */
import { connect, countKeyRefs, dropStateTables, rewrapTable } from "@envelope/batch-rewrap";
import { Envelope, type KeyProvider, localAesProvider } from "@envelope/core";
import { insertSealedEmails } from "./seed.js";

const rows = Number(process.argv[2] ?? 50_000);
const latencyMs = Number(process.argv[3] ?? 0);
const url = process.env.BATCH_REWRAP_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const table = `batch_rewrap_verify_${process.pid}`;
const prefix = `${table}_st`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function slow(inner: KeyProvider): KeyProvider {
  if (latencyMs <= 0) return inner;
  return {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    wrap: async (k, r) => {
      await sleep(latencyMs);
      return inner.wrap(k, r);
    },
    unwrap: async (e, r) => {
      await sleep(latencyMs);
      return inner.unwrap(e, r);
    },
  };
}

const db = await connect(url);
const oldKey = localAesProvider({ keys: crypto.getRandomValues(new Uint8Array(32)) });
const newKey = localAesProvider({ keys: crypto.getRandomValues(new Uint8Array(32)) });
await db.query(`DROP TABLE IF EXISTS ${table}`);
await db.query(`CREATE TABLE ${table} (id BIGINT PRIMARY KEY, email BYTEA)`);
await insertSealedEmails(db, table, new Envelope({ encrypt: oldKey, cache: false }), rows);
await db.query(`ANALYZE ${table}`);

const job = () =>
  rewrapTable({
    db,
    table,
    primaryKey: "id",
    columns: ["email"],
    to: slow(newKey),
    decrypt: [slow(oldKey)],
    apply: true,
    concurrency: 16,
    workers: 2,
    batchSize: 500,
    jobId: "verify-cost",
    stateTablePrefix: prefix,
  });
const first = await job();
const again = await job();
const scanStart = performance.now();
const scan = await countKeyRefs({ db, table, primaryKey: "id", columns: ["email"] });
const scanMs = performance.now() - scanStart;
await db.query(`DROP TABLE IF EXISTS ${table}`);
await dropStateTables(db, prefix);
await db.close();
const seconds = (ms: number) => +(ms / 1000).toFixed(2);
process.stdout.write(
  `${JSON.stringify({
    rows,
    latencyMs,
    first: {
      seconds: seconds(first.durationMs),
      complete: first.complete,
      rewrapped: first.run.rewrapped,
      verified: first.verified,
    },
    again: {
      seconds: seconds(again.durationMs),
      complete: again.complete,
      skipped: again.run.skipped,
      verified: again.verified,
    },
    scan: { seconds: seconds(scanMs), scanned: scan.scanned },
  })}\n`,
);
