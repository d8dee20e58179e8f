import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { ConfigError, Envelope, EnvelopeError, type KeyProvider } from "@envelope/core";
import type { Row } from "../adapters/types.js";
import { checkName, quote } from "../sql/identifiers.js";
import { describeTable, requireColumn } from "../sql/introspect.js";
import type { JobSpec } from "../state/jobs.js";
import { type Limiter, toLimiter } from "./limiter.js";
import { metered } from "./metered.js";
import type { MigrateTableOptions, RewrapTableOptions, TableJobOptions } from "./options.js";
import type { Runtime } from "./runtime.js";
import { runtimeRows } from "./scan.js";
import { migrateTransform, rewrapTransform, type ValueTransform } from "./transform.js";
import { type ColumnPlan, storedLength, toStored, toValue } from "./values.js";

export type { Runtime } from "./runtime.js";

const label = (p: KeyProvider) => `${p.id}:${p.keyRef}`;
const list = <T>(x: T | readonly T[]): T[] => (Array.isArray(x) ? [...x] : [x as T]);

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
  const transform = rewrapTransform(envelope, targets, {
    verifyAll: options.verify === "all",
    verifyBody: options.verifyBody ?? true,
  });
  return prepare(options, transform, limiter, { kind: "rewrap", targets: to.map(label) });
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
  return prepare({ ...options, contextColumns }, migrateTransform(target, options.from), limiter, {
    kind: "migrate",
    targets: to.map(label),
    legacy: options.from.format,
  });
}

async function prepare(
  options: TableJobOptions,
  transform: ValueTransform,
  limiter: Limiter,
  partial: Pick<JobSpec, "kind" | "targets" | "legacy">,
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

/** The job id used when none is given: kind, table and a hash of the whole spec. */
export function defaultJobId(spec: JobSpec): string {
  const hash = createHash("sha256").update(JSON.stringify(spec)).digest("hex").slice(0, 12);
  return `${spec.kind}-${spec.table}-${hash}`.slice(0, 100);
}

/** Rows the preflight reads at most while looking for values to sample (reads only, no KMS call). */
export const PREFLIGHT_SCAN_ROWS = 100_000;

/**
 * The preflight: before anything is written, read a sample of each column and prove the
 * job can do it: values are envelopes (rewrap) or decodable legacy values (migrate), the
 * context builder yields the context they were sealed with, the configured keys unwrap
 * them, and the targets can open what the job would write. Throws the first problem,
 * naming the column and row.
 *
 * Only values the job will actually rewrite are sampled (up to `sampleSize` per column,
 * among the first {@link PREFLIGHT_SCAN_ROWS} rows in key order): values already on the
 * target cost no KMS call, so a run with nothing to do makes none.
 */
export async function preflight(rt: Runtime): Promise<{ checked: number }> {
  const sampleSize = rt.options.sampleSize ?? 16;
  let checked = 0;
  if (sampleSize < 1) return { checked };
  const sampled = new Map(rt.table.columns.map((c) => [c.name, 0]));
  let read = 0;
  // migrate, mixed columns: a value in no configured format is a per-row failure, unless
  // nothing at all is recognized (then --from is wrong and the job is refused).
  let done = 0;
  let unrecognized: { error: unknown; where: string } | undefined;
  for await (const rows of runtimeRows(rt)) {
    for (const row of rows) {
      read++;
      for (const column of rt.table.columns) {
        if (sampled.get(column.name)! >= sampleSize) continue;
        const raw = row[column.name];
        if (raw === null || raw === undefined) continue;
        const where = `${rt.table.name}.${column.name} (${rt.table.pk} = ${String(row[rt.table.pk]).slice(0, 40)})`;
        let value: string | Buffer;
        try {
          value = toValue(raw, column);
          if (rt.transform.classify(value) !== "work") {
            done++;
            continue;
          }
        } catch (error) {
          if (isUnrecognized(error)) {
            unrecognized ??= { error, where };
            continue;
          }
          // A value that is not usable refuses the job when it is among the first rows;
          // further on, the run records it as a failure and leaves it unchanged.
          if (read <= sampleSize * 4) throw explain(error, where, rt);
          continue;
        }
        try {
          sampled.set(column.name, sampled.get(column.name)! + 1);
          checked += await checkOne(rt, row, column, value);
        } catch (error) {
          throw explain(error, where, rt);
        }
      }
    }
    if (read >= PREFLIGHT_SCAN_ROWS || [...sampled.values()].every((n) => n >= sampleSize)) break;
  }
  if (unrecognized && checked === 0 && done === 0)
    throw explain(unrecognized.error, unrecognized.where, rt);
  return { checked };
}

/** The full proof on one value: decrypt, and the target can open what would be written. */
async function checkOne(
  rt: Runtime,
  row: Row,
  column: ColumnPlan,
  value: string | Buffer,
): Promise<number> {
  const next = await rt.transform.check(
    value,
    buildContext(rt, row, column.name),
    column.form,
    row,
  );
  const max = column.info.maxLength;
  if (next !== undefined && max !== undefined && storedLength(toStored(next, column)) > max) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Column "${column.name}" holds at most ${max} ${column.info.kind === "binary" ? "bytes" : "characters"} (${column.info.dataType}), but its new values need about ${storedLength(toStored(next, column))}. Widen it first (e.g. ALTER TABLE ${rt.table.name} ALTER/MODIFY ${column.name} to TEXT, bytea or BLOB).`,
      { details: { column: column.name } },
    );
  }
  return 1;
}

export function buildContext(rt: Runtime, row: Row, column: string) {
  const context = rt.context(row, column);
  if (typeof context !== "object" || context === null) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      "The context builder must return an object of strings.",
      { details: { column } },
    );
  }
  return context;
}

const isUnrecognized = (error: unknown) =>
  EnvelopeError.isInstance(error) && error.code === "ENVELOPE_LEGACY_UNRECOGNIZED";

function explain(error: unknown, where: string, rt: Runtime): EnvelopeError {
  if (!EnvelopeError.isInstance(error)) {
    return new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `Preflight failed at ${where}: ${String((error as Error)?.message ?? error).slice(0, 200)}. Nothing was written.`,
      {
        cause: error,
      },
    );
  }
  const hints: Partial<Record<string, string>> = {
    ENVELOPE_BAD_FORMAT:
      rt.transform.kind === "rewrap"
        ? "The column does not hold Envelope values there. Use migrate for legacy or plaintext values, or check --column."
        : "The value is not in the legacy format given; check --from.",
    ENVELOPE_LEGACY_UNRECOGNIZED:
      "No value read so far is in the legacy format(s) given; check --from.",
    ENVELOPE_UNSUPPORTED_VERSION:
      "The column does not hold Envelope values there. Use migrate for legacy values.",
    ENVELOPE_DECRYPT_FAILED:
      rt.transform.kind === "rewrap"
        ? "The context builder does not produce the context this value was sealed with (check the context template / contextColumns), or the value was altered."
        : "The legacy key does not decrypt this value (wrong key or wrong format).",
    ENVELOPE_CONTEXT_MISMATCH:
      "The context builder does not produce the context stored in this value.",
    // The error's own message already says which keys and how to add one: no second advice.
  };
  const Same = error.constructor as typeof EnvelopeError;
  return new Same(
    error.code,
    `Preflight failed at ${where}: ${error.message} ${hints[error.code] ?? ""} Nothing was written.`
      .replace(/\s+/g, " ")
      .trim(),
    {
      cause: error,
      details: { ...error.details, where },
    },
  );
}
