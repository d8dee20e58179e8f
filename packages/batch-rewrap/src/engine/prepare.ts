import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { ConfigError, Envelope, type KeyProvider } from "@envelope/core";
import { type AnyLegacyDecoder, recordValueDecoder, recordValueTypeOf } from "@envelope/legacy";
import type { SqlAdapter } from "../adapters/types.js";
import { checkName, quote } from "../sql/identifiers.js";
import { describeTable, requireColumn } from "../sql/introspect.js";
import type { JobSpec } from "../state/jobs.js";
import { planThreads } from "../threads/options.js";
import { MAX_PER_MESSAGE, RewrapPool } from "../threads/pool.js";
import { threadedTransform } from "../threads/transform.js";
import { type Limiter, toLimiter } from "./limiter.js";
import { metered } from "./metered.js";
import type {
  ContextBuilder,
  MigrateTableOptions,
  RewrapTableOptions,
  TableJobOptions,
} from "./options.js";
import { planRecords, type RecordPlan } from "./record-fields.js";
import type { Runtime } from "./runtime.js";
import { migrateTransform, rewrapTransform, type ValueTransform } from "./transform.js";
import type { ColumnPlan } from "./values.js";

const label = (p: KeyProvider) => `${p.id}:${p.keyRef}`;
const list = <T>(x: T | readonly T[]): T[] => (Array.isArray(x) ? [...x] : [x as T]);

/** With rewrap threads, a job keeps at least this many full messages in flight per thread. */
const IN_FLIGHT_MESSAGES = 4;

/** Resolves options for a rewrap job: names checked against the database, providers metered. */
export async function prepareRewrap(options: RewrapTableOptions): Promise<Runtime> {
  const to = list(options.to);
  if (to.length === 0)
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "rewrap: `to` must name at least one target key.",
      { details: { field: "to" } },
    );
  const limiter = toLimiter(options.rateLimit);
  const targets = to.map((p) => metered(p, limiter));
  const others = (options.decrypt ?? [])
    .filter((p) => !to.includes(p))
    .map((p) => metered(p, limiter));
  const envelope = new Envelope({ encrypt: targets, decrypt: others, cache: false });
  const checks = { verifyAll: options.verify === "all", verifyBody: options.verifyBody ?? true };
  const transform = rewrapTransform(envelope, targets, checks);
  // Checked before anything else is: a bad spec fails a dry run too.
  const threads =
    options.threads === undefined
      ? undefined
      : await planThreads(options.threads, to, options.decrypt ?? [], limiter.ceiling);
  const rt = await prepare(options, transform, limiter, {
    kind: "rewrap",
    targets: to.map(label),
  });
  if (!threads || !options.apply) return rt;
  const pool = await RewrapPool.start(threads.size, { ...threads.setup, ...checks }, (calls) =>
    limiter.record(calls),
  );
  // Enough values in flight for every thread to have its next message queued while the
  // main thread handles its last answer (else the two take turns, each idle half the time).
  const workers = Math.max(1, options.workers ?? 1);
  const inFlight = Math.ceil((IN_FLIGHT_MESSAGES * MAX_PER_MESSAGE * threads.size) / workers);
  return {
    ...rt,
    limits: { ...rt.limits, concurrency: Math.max(rt.limits.concurrency, inFlight) },
    transform: threadedTransform(transform, pool),
    close: () => pool.close(),
  };
}

/** Resolves options for a migrate job. */
export async function prepareMigrate(options: MigrateTableOptions): Promise<Runtime> {
  const to = list(options.to);
  if (to.length === 0)
    throw new ConfigError("ENVELOPE_BAD_CONFIG", "migrate: `to` must name at least one key.", {
      details: { field: "to" },
    });
  if (!options.from || typeof options.from.decode !== "function") {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "migrate: `from` must be a legacy decoder: legacyDecoder({ format, key }).",
      {
        details: { field: "from" },
      },
    );
  }
  const limiter = toLimiter(options.rateLimit);
  const target = new Envelope({ encrypt: to.map((p) => metered(p, limiter)), cache: false });
  // Columns the decoder reads besides the value (a key-version column) are selected too.
  const contextColumns = [...(options.contextColumns ?? []), ...(options.from.columns ?? [])];
  const { from, records, context } = await recordsLayout(options);
  const job = { ...options, contextColumns, ...(context ? { context } : {}) };
  const layout = records ? recordsLayoutLabel(records) : options.contextLayout;
  return prepare(job, migrateTransform(target, from, records), limiter, {
    kind: "migrate",
    targets: to.map(label),
    legacy: options.from.format,
    ...(layout !== undefined ? { layout } : {}),
  });
}

/** A records job's context layout, for the job's definition: table and each column's field. */
function recordsLayoutLabel(records: RecordPlan): string {
  const fields = [...records.fields].map(([column, f]) => ({
    column,
    field: f.field,
    ...(f.pad !== undefined ? { pad: f.pad } : {}),
    ...(f.index ? { index: f.index.column.name } : {}),
  }));
  return JSON.stringify({ records: records.table, valueType: records.valueType, fields });
}

async function prepare(
  options: TableJobOptions,
  transform: ValueTransform,
  limiter: Limiter,
  partial: Pick<JobSpec, "kind" | "targets" | "legacy" | "layout">,
): Promise<Runtime> {
  const { db } = options;
  if (!db || typeof db.query !== "function") {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "db must be an adapter: postgresAdapter(pool), mysqlAdapter(pool), pgliteAdapter(db) or connect(url).",
      {
        details: { field: "db" },
      },
    );
  }
  checkPoolFitsWorkers(db, options.workers);
  const table = checkName(options.table, "table", true);
  const pk = checkName(options.primaryKey, "primaryKey");
  const specs = (options.columns ?? []).map((c) => (typeof c === "string" ? { name: c } : c));
  if (specs.length === 0)
    throw new ConfigError("ENVELOPE_BAD_CONFIG", "Name at least one encrypted column.", {
      details: { field: "columns" },
    });
  const contextColumns = (options.contextColumns ?? []).map((c) => checkName(c, "contextColumns"));

  const described = await describeTable(db, table);
  const pkInfo = requireColumn(described, table, pk, "primaryKey");
  if (pkInfo.kind === "binary") {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Primary key "${pk}" is a binary column; use an integer, text or uuid key.`,
      { details: { field: "primaryKey" } },
    );
  }
  const columns: ColumnPlan[] = specs.map((spec) => {
    const name = checkName(spec.name, "columns");
    const info = requireColumn(described, table, name, "columns");
    if (info.kind !== "binary" && info.kind !== "text") {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `Column "${name}" is ${info.dataType}; encrypted values live in binary (bytea, BLOB, VARBINARY) or text (TEXT, VARCHAR) columns.`,
        { details: { field: "columns", column: name } },
      );
    }
    if (name === pk)
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        "The primary key cannot be an encrypted column.",
        { details: { field: "columns" } },
      );
    return {
      name,
      q: quote(db, name),
      form: spec.form ?? (info.kind === "binary" ? "binary" : "text"),
      info,
    };
  });
  for (const c of contextColumns) requireColumn(described, table, c, "contextColumns");

  const selected = [...new Set([pk, ...columns.map((c) => c.name), ...contextColumns])];
  const spec: JobSpec = {
    kind: partial.kind,
    table,
    primaryKey: pk,
    columns: columns.map((c) => c.name),
    targets: partial.targets,
    ...(partial.legacy ? { legacy: partial.legacy } : {}),
    ...(partial.layout !== undefined ? { layout: partial.layout } : {}),
  };
  const jobId = options.jobId ?? defaultJobId(spec);
  if (jobId.length === 0 || jobId.length > 100)
    throw new ConfigError("ENVELOPE_BAD_CONFIG", "jobId must be 1–100 characters.", {
      details: { field: "jobId" },
    });
  const positive = (v: number | undefined, d: number, field: string) => {
    const n = v ?? d;
    if (!Number.isInteger(n) || n < 1)
      throw new ConfigError("ENVELOPE_BAD_CONFIG", `${field} must be a positive integer.`, {
        details: { field },
      });
    return n;
  };
  return {
    db,
    options,
    table: {
      name: table,
      q: quote(db, table),
      pk,
      pkq: quote(db, pk),
      integerKey: pkInfo.kind === "integer",
      pkType: pkInfo.dataType,
      columns,
      selectList: selected.map((c) => quote(db, c)).join(", "),
    },
    job: { id: jobId, spec, workerBase: options.workerId ?? `${hostname()}:${process.pid}` },
    limits: {
      limiter,
      batchSize: positive(options.batchSize, 500, "batchSize"),
      concurrency: positive(options.concurrency, 8, "concurrency"),
      retries: options.retries ?? 5,
    },
    context: options.context ?? ((row, column) => ({ table, column, id: String(row[pk]) })),
    transform,
  };
}

/**
 * Each worker keeps one connection for its range claim and reads and commits on others: a
 * pool with no more connections than workers would leave every worker waiting for a
 * connection it will never get (the job would hang). Refused before anything is written.
 */
function checkPoolFitsWorkers(db: SqlAdapter, workers: number | undefined): void {
  const n = Math.max(1, workers ?? 1);
  const max = db.maxConnections;
  if (!db.sessions || max === undefined || max > n) return;
  throw new ConfigError(
    "ENVELOPE_BAD_CONFIG",
    `${n} worker(s) need more than ${n} database connections (each keeps one for its range claim and reads and commits on others), but the pool allows ${max}. Use fewer workers or a larger pool: about 2 × workers (connect(url, { maxConnections }), pg's Pool max, mysql2's connectionLimit). Nothing was written.`,
    { details: { field: "workers", workers: n, maxConnections: max } },
  );
}

/** The job id used when none is given: kind, table and a hash of the spec but its layout. */
export function defaultJobId({ layout: _, ...spec }: JobSpec): string {
  const hash = createHash("sha256").update(JSON.stringify(spec)).digest("hex").slice(0, 12);
  return `${spec.kind}-${spec.table}-${hash}`.slice(0, 100);
}

/**
 * A records migrate: the legacy plaintext laid out as a records field (unless the decoder
 * already does it), the schema's fields and index columns checked against the table, and
 * the record cipher's context `{ table: schema.table, column, id }`.
 */
async function recordsLayout(options: MigrateTableOptions): Promise<{
  from: AnyLegacyDecoder;
  records?: RecordPlan;
  context?: ContextBuilder;
}> {
  if (options.records === undefined) return { from: options.from };
  if (options.context) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "migrate: give records or context, not both: with records the context is the record cipher's { table, column, id }.",
      { details: { field: "context" } },
    );
  }
  const table = checkName(options.table, "table", true);
  const pk = checkName(options.primaryKey, "primaryKey");
  const columns = (options.columns ?? []).map((c) =>
    checkName(typeof c === "string" ? c : c.name, "columns"),
  );
  const records = await planRecords(options.db, table, pk, columns, options.records);
  const tagged = recordValueTypeOf(options.from);
  if (tagged !== undefined && tagged !== records.valueType) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `migrate: the decoder already lays values out as ${tagged} fields but records.valueType is ${records.valueType}; pass the plain decoder.`,
      { details: { field: "records.valueType" } },
    );
  }
  const from = tagged ? options.from : recordValueDecoder(options.from, records.valueType);
  // The record cipher's context names the field, which may be stored under another column.
  const context: ContextBuilder = (row, column) => ({
    table: records.table,
    column: records.fields.get(column)?.field ?? column,
    id: String(row[pk]),
  });
  return { from, records, context };
}
