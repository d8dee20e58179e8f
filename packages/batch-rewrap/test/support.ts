import { randomBytes } from "node:crypto";
import {
  connect,
  delegatingAdapter,
  dropStateTables,
  type RewrapTableOptions,
  rewrapTable,
  type SqlAdapter,
  type SqlExecutor,
} from "@envelope/batch-rewrap";
import {
  type EncryptionContext,
  Envelope,
  type KeyProvider,
  localAesProvider,
  ProviderError,
} from "@envelope/core";
import { selectDatabases } from "../../../test/support/databases.js";

export const PG_URL = process.env.BATCH_REWRAP_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const MYSQL_URL = process.env.BATCH_REWRAP_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";

/** Both, or those ENVELOPE_TEST_DATABASES names (test/support/databases.ts). */
export const DATABASES = selectDatabases([
  { name: "postgresql", url: PG_URL },
  { name: "mariadb", url: MYSQL_URL },
] as const);

/** A unique, prefixed name so concurrent test files and helpers never collide. */
export function uniqueName(label: string): string {
  return `batch_rewrap_${label}_${process.pid}_${randomBytes(3).toString("hex")}`;
}

export const plaintextOf = (id: number | string) => `user${id}@example.com`;
export const contextOf = (
  table: string,
  column: string,
  id: number | string,
): EncryptionContext => ({
  table,
  column,
  id: String(id),
});

export function keyPair(): { hex: string; provider: KeyProvider } {
  const hex = randomBytes(32).toString("hex");
  return { hex, provider: localAesProvider({ keys: hex }) };
}

/**
 * Creates `table (id, email)` with `rows` envelopes sealed under `key`, the email column
 * binary (bytea / BLOB) or text (`ev1:`).
 */
export async function seedTable(
  db: SqlAdapter,
  table: string,
  rows: number,
  key: KeyProvider,
  form: "binary" | "text" = "binary",
): Promise<void> {
  const type = form === "text" ? "TEXT" : db.dialect === "mysql" ? "BLOB" : "BYTEA";
  await db.query(`DROP TABLE IF EXISTS ${table}`);
  await db.query(`CREATE TABLE ${table} (id BIGINT PRIMARY KEY, email ${type}, note VARCHAR(50))`);
  const envelope = new Envelope({ encrypt: key, cache: false });
  for (let start = 1; start <= rows; start += 500) {
    const ids = Array.from({ length: Math.min(500, rows - start + 1) }, (_, i) => start + i);
    const values = await Promise.all(
      ids.map((id) =>
        form === "text"
          ? envelope.encrypt(plaintextOf(id), {
              context: contextOf(table, "email", id),
              output: "text",
            })
          : envelope.encrypt(plaintextOf(id), {
              context: contextOf(table, "email", id),
              output: "binary",
            }),
      ),
    );
    await db.query(
      `INSERT INTO ${table} (id, email) VALUES ${ids.map(() => "(?, ?)").join(", ")}`,
      ids.flatMap((id, i) => [id, values[i]]),
    );
  }
}

/** Drops the test table and the state tables of a prefix. */
export async function dropAll(db: SqlAdapter, table: string, prefix: string): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${table}`);
  await dropStateTables(db, prefix);
}

/**
 * Asserts every row decrypts (with the target key alone) to what `expected` says and
 * carries only the target entry. Returns the number of rows checked.
 */
export async function verifyAll(
  db: SqlAdapter,
  table: string,
  target: KeyProvider,
  expected: (id: string) => string = plaintextOf,
): Promise<{ rows: number; wrong: string[] }> {
  const onlyTarget = new Envelope({ encrypt: target, cache: false });
  const { rows } = await db.query(`SELECT id, email FROM ${table} ORDER BY id`);
  const wrong: string[] = [];
  for (const row of rows) {
    const id = String(row.id);
    const value = row.email as Buffer | string | null;
    if (value === null) continue;
    try {
      const info = onlyTarget.inspect(value);
      if (info.entries.length !== 1 || info.entries[0]!.keyRef !== target.keyRef) {
        wrong.push(`${id}: not on target`);
        continue;
      }
      const text = await onlyTarget.decrypt(value, {
        context: contextOf(table, "email", id),
        as: "text",
      });
      if (text !== expected(id)) wrong.push(`${id}: plaintext differs`);
    } catch (error) {
      wrong.push(`${id}: ${(error as Error).message}`);
    }
  }
  return { rows: rows.length, wrong };
}

/** Wraps a provider to count calls and to inject faults or hooks per call. */
export function instrumented(
  inner: KeyProvider,
  hooks: {
    beforeWrap?: (request: { context: EncryptionContext }) => Promise<void> | void;
    beforeUnwrap?: (request: { context: EncryptionContext }) => Promise<void> | void;
  } = {},
): KeyProvider & { counts: { wrap: number; unwrap: number } } {
  const counts = { wrap: 0, unwrap: 0 };
  return {
    id: inner.id,
    keyRef: inner.keyRef,
    counts,
    handles: (e) => inner.handles(e),
    async wrap(dataKey, request) {
      await hooks.beforeWrap?.(request);
      counts.wrap++;
      return inner.wrap(dataKey, request);
    },
    async unwrap(entry, request) {
      await hooks.beforeUnwrap?.(request);
      counts.unwrap++;
      return inner.unwrap(entry, request);
    },
  };
}

export const throttled = () =>
  new ProviderError("ENVELOPE_KMS_THROTTLED", "test KMS: rate exceeded", {
    details: { provider: "local-aes" },
  });

export async function openDb(url: string): Promise<SqlAdapter> {
  return connect(url);
}

/**
 * A point a test pauses a job at: the job calls `reached()` and awaits `gate`; the test
 * awaits `paused`, then calls `release()`.
 */
function pausePoint() {
  let release!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const paused = new Promise<void>((r) => {
    reached = r;
  });
  return { gate, paused, reached, release };
}

/**
 * The rotation target, paused at its `after`-th wrap until `release()`: a slow KMS that
 * holds a running job between two batches.
 */
export function gated(target: KeyProvider, after: number) {
  let calls = 0;
  const { gate, paused, reached, release } = pausePoint();
  const provider: KeyProvider = {
    id: target.id,
    keyRef: target.keyRef,
    handles: (entry) => target.handles(entry),
    unwrap: (entry, request) => target.unwrap(entry, request),
    async wrap(dataKey, request) {
      if (++calls >= after) {
        reached();
        await gate;
      }
      return target.wrap(dataKey, request);
    },
  };
  return { provider, paused, release };
}

/**
 * An applied rewrap of `table.email` (see seedTable) from `from` to `to`, in batches of 10
 * at concurrency 1, no preflight sample: small steps a test can stop or pause between.
 * `extra` adds or overrides options (a signal, `rangeSize`, `apply: false`, …).
 */
export function smallJob(
  db: SqlAdapter,
  table: string,
  prefix: string,
  jobId: string,
  to: KeyProvider,
  from: KeyProvider,
  extra: Partial<RewrapTableOptions> = {},
) {
  return rewrapTable({
    db,
    table,
    primaryKey: "id",
    columns: ["email"],
    to,
    decrypt: [from],
    apply: true,
    batchSize: 10,
    concurrency: 1,
    sampleSize: 0,
    jobId,
    stateTablePrefix: prefix,
    ...extra,
  });
}

/**
 * The adapter, with the first batch transaction paused right after its job-row check (the
 * SELECT of checkJobRow, which holds the row's shared lock) until `release()`: a batch whose
 * CAS updates take a while, which a large batch on a busy database does on its own.
 * `kill()` makes every later query of the job fail, as if its process had left: a
 * transaction in progress rolls back, none starts.
 */
export function pausedAfterJobCheck(db: SqlAdapter) {
  const { gate, paused, reached, release } = pausePoint();
  let done = false;
  let killed = false;
  const alive = () => {
    if (killed) throw new Error("the process has left");
  };
  const wrapTx = (tx: SqlExecutor): SqlExecutor => ({
    async query(sql, params) {
      alive();
      const result = await tx.query(sql, params);
      if (
        !done &&
        /^SELECT spec FROM .*jobs.* WHERE job_id = \?( FOR SHARE| LOCK IN SHARE MODE)?$/s.test(
          sql.trim(),
        )
      ) {
        done = true;
        reached();
        await gate;
      }
      alive();
      return result;
    },
  });
  const adapter = delegatingAdapter(db, {
    query: async (sql, params) => {
      alive();
      return db.query(sql, params);
    },
    transaction: (fn) => db.transaction((tx) => fn(wrapTx(tx))),
  });
  const kill = () => {
    killed = true;
  };
  /**
   * `db` for `stopJob`, as a process that leaves the moment its stop mark is made: `kill`
   * runs when the mark's transaction has done its work, before its COMMIT is sent. InnoDB
   * releases row locks before it acknowledges a COMMIT, so a batch waiting on the job row
   * could otherwise take the lock and commit while the COMMIT's answer is on its way
   * (MariaDB, 2 runs in 3 of the whole suite on a loaded 2-vCPU machine).
   */
  const stopper = delegatingAdapter(db, {
    transaction: (fn) =>
      db.transaction(async (tx) => {
        const result = await fn(tx);
        kill();
        return result;
      }),
  });
  return { adapter, paused, release, kill, stopper };
}
