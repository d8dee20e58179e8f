import { ConfigError, EnvelopeError } from "@envelope/core";
import type { Row } from "../adapters/types.js";
import { failedValuesByPk, failurePk } from "../state/failures.js";
import { tableExists } from "../state/lookup.js";
import { stateTables } from "../state/tables.js";
import { buildContext } from "./row-context.js";
import type { Runtime } from "./runtime.js";
import { runtimeRows } from "./scan.js";
import { type ColumnPlan, storedLength, toStored, toValue } from "./values.js";

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
 * target cost no KMS call, so a run with nothing to do makes none. Values an earlier run of
 * this job recorded as failed are left out when the run verifies every body: they are known
 * and reported, and the run retries them; sampling one would refuse every rerun until it is
 * repaired.
 */
export async function preflight(rt: Runtime): Promise<{ checked: number }> {
  const sampleSize = rt.options.sampleSize ?? 16;
  let checked = 0;
  if (sampleSize < 1) return { checked };
  // Only when the run checks every body: with verifyBody off, the preflight is the one check
  // of the context template, and a known-damaged value would be rewrapped unchecked.
  const verifyBody = (rt.options as { verifyBody?: boolean }).verifyBody !== false; // rewrap only
  const known = verifyBody ? await knownFailures(rt) : new Map<string, Set<string>>();
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
        if (known.get(failurePk(String(row[rt.table.pk])))?.has(column.name)) continue;
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

/** The values this job recorded as failed in earlier runs (none before its first run). */
async function knownFailures(rt: Runtime): Promise<Map<string, Set<string>>> {
  const prefix = rt.options.stateTablePrefix ?? "envelope_rewrap";
  // Reads only: a dry run creates no state tables.
  if (!(await tableExists(rt.db, `${prefix}_failures`))) return new Map();
  return failedValuesByPk(rt.db, stateTables(rt.db, prefix), rt.job.id);
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
    column.name,
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
