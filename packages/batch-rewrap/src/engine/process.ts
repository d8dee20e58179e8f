import { EnvelopeError } from "@envelope/core";
import type { Row } from "../adapters/types.js";
import type { Limiter } from "./limiter.js";
import { buildContext } from "./row-context.js";
import type { Runtime } from "./runtime.js";
import { type ColumnPlan, storedLength, toStored, toValue } from "./values.js";

/** A value the job could not do: recorded in the failures table, never written. */
export interface ValueFailure {
  column: string;
  code: string;
  message: string;
}

/** The result of processing one row, before anything is written. */
export interface RowOutcome {
  row: Row;
  pkText: string;
  /**
   * Columns to write. `setOnly`: written with the row's values but not compared (a blind
   * index column set by migrate), the values beside it carry the compare-and-swap.
   */
  updates: { column: ColumnPlan; old: unknown; next: string | Buffer; setOnly?: true }[];
  failures: ValueFailure[];
  skipped: number;
  nulls: number;
}

const RETRYABLE = new Set([
  "ENVELOPE_KMS_THROTTLED",
  "ENVELOPE_KMS_UNAVAILABLE",
  "ENVELOPE_KMS_TIMEOUT",
]);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Classifies and transforms every encrypted value of a row (KMS calls here, no writes). */
export async function processRow(
  rt: Runtime,
  row: Row,
  only?: ReadonlySet<string>,
): Promise<RowOutcome> {
  const outcome: RowOutcome = {
    row,
    pkText: String(row[rt.table.pk]),
    updates: [],
    failures: [],
    skipped: 0,
    nulls: 0,
  };
  for (const column of rt.table.columns) {
    if (only && !only.has(column.name)) continue;
    const raw = row[column.name];
    if (raw === null || raw === undefined) {
      outcome.nulls++;
      continue;
    }
    try {
      const value = toValue(raw, column);
      if (rt.transform.classify(value) === "skip") {
        outcome.skipped++;
        continue;
      }
      const context = buildContext(rt, row, column.name);
      const applied = await withKmsRetry(rt.limits.limiter, rt.limits.retries, () =>
        rt.transform.apply(value, context, column.form, row, column.name),
      );
      const next = toStored(applied.value, column);
      const max = column.info.maxLength;
      if (max !== undefined && storedLength(next) > max) {
        throw new EnvelopeError(
          "ENVELOPE_LIMIT_EXCEEDED",
          `The new value is ${storedLength(next)} long but column "${column.name}" holds at most ${max}. Widen the column (e.g. TEXT / bytea / BLOB).`,
        );
      }
      outcome.updates.push({ column, old: raw, next });
      for (const also of applied.also ?? [])
        outcome.updates.push({
          column: also.column,
          old: row[also.column.name],
          next: also.value,
          setOnly: true,
        });
    } catch (error) {
      outcome.failures.push(describeFailure(column.name, error));
    }
  }
  rt.transform.endRow?.(row);
  return outcome;
}

/** Retries throttling / unavailable / timeout errors (throttles pause the whole process through the limiter). */
export function withKmsRetry<T>(
  _limiter: Limiter,
  retries: number,
  call: () => Promise<T>,
): Promise<T> {
  return attemptCall(call, retries, 0);
}

// Not async: the first attempt (nearly always the only one) costs one `catch`, not an
// async frame and an await per value.
function attemptCall<T>(call: () => Promise<T>, retries: number, attempt: number): Promise<T> {
  let sent: Promise<T>;
  try {
    sent = call();
  } catch (error) {
    sent = Promise.reject(error);
  }
  return sent.catch((error: unknown) => {
    const code = EnvelopeError.isInstance(error) ? error.code : undefined;
    if (!code || !RETRYABLE.has(code) || attempt >= retries) throw error;
    // A throttle already cut the limiter's rate and paused it (the metered provider
    // reports it per call), so the retry's next call waits there; no sleep of our own.
    if (code === "ENVELOPE_KMS_THROTTLED") return attemptCall(call, retries, attempt + 1);
    return sleep(Math.random() * Math.min(5000, 100 * 2 ** attempt)).then(() =>
      attemptCall(call, retries, attempt + 1),
    );
  });
}

function describeFailure(column: string, error: unknown): ValueFailure {
  if (EnvelopeError.isInstance(error))
    return { column, code: error.code, message: error.message.slice(0, 1000) };
  // Not ours (a driver or context-builder bug): keep the type and a bounded message.
  const e = error as Error;
  return {
    column,
    code: "UNEXPECTED_ERROR",
    message: `${e?.name ?? "Error"}: ${String(e?.message ?? e).slice(0, 300)}`,
  };
}
