import { EnvelopeError, type EnvelopeErrorOptions } from "@envelope/core";
import { printable } from "@envelope/core/internal";

/**
 * Longest table, field, id-field or blind-index column name, in UTF-8 bytes. Names go into
 * encryption contexts, blind index key derivation (HKDF info, at most 1024 bytes for the
 * table and field together) and SQL identifiers; 255 bytes keeps every one of them valid.
 */
export const MAX_NAME_BYTES = 255;

/**
 * Longest record id, in UTF-8 bytes: the id is a value of each field's encryption context,
 * whose values are limited to 8192 bytes by the envelope format (docs/FORMAT.md).
 */
export const MAX_ID_BYTES = 8192;

/** What is wrong with `name` as a table/field/column name, or undefined when it is usable. */
export function nameProblem(name: unknown): string | undefined {
  if (typeof name !== "string") return `must be a string (got ${typeof name})`;
  if (name.length === 0) return "must not be empty";
  if (!name.isWellFormed()) return "contains an unpaired surrogate";
  // A UTF-8 byte per UTF-16 unit at least: skip counting bytes of a huge string.
  if (name.length > MAX_NAME_BYTES) return tooLong(name);
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > MAX_NAME_BYTES) return tooLong(name, bytes);
  return undefined;
}

function tooLong(name: string, bytes?: number): string {
  const size = bytes === undefined ? `${name.length} characters` : `${bytes} bytes`;
  return `is ${size} long; the limit is ${MAX_NAME_BYTES} bytes (UTF-8)`;
}

/** A caller-given name shown in a message: control characters escaped, cut to 64 characters. */
export function shown(name: unknown): string {
  return printable(String(name), 64);
}

/**
 * The same error with non-secret facts added to its `details` (those it has win): same
 * class, code, message and cause, and its stack. Details are frozen, hence a new error.
 * Anything that is not an EnvelopeError, or whose class cannot be rebuilt so, is returned
 * as it is.
 */
export function withDetails<E>(error: E, extra: Record<string, string | undefined>): E {
  if (!EnvelopeError.isInstance(error)) return error;
  const added = Object.entries(extra).filter(
    ([k, v]) => v !== undefined && error.details[k] === undefined,
  );
  if (added.length === 0) return error;
  try {
    const Class = error.constructor as new (
      code: EnvelopeError["code"],
      message: string,
      options: EnvelopeErrorOptions,
    ) => EnvelopeError;
    const out = new Class(error.code, error.message, {
      ...(error.cause === undefined ? {} : { cause: error.cause }),
      details: { ...Object.fromEntries(added), ...error.details },
    });
    if (out.code !== error.code || out.message !== error.message) return error;
    if (error.stack !== undefined) out.stack = error.stack;
    return out as E;
  } catch {
    return error;
  }
}

/** Where a value lives, for error details: `{ table, column, id }` of its context, shown. */
export function placeOf(context: {
  table?: string;
  column?: string;
  id?: string;
}): Record<string, string | undefined> {
  return {
    table: context.table === undefined ? undefined : shown(context.table),
    column: context.column === undefined ? undefined : shown(context.column),
    id: context.id === undefined ? undefined : shown(context.id),
  };
}

/**
 * ` Did you mean "x"?` for the candidate closest to `name` (at most 2 edits, or the same
 * letters in another case), or "" when none is close.
 */
export function didYouMean(name: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = c.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best === undefined ? "" : ` Did you mean "${best}"?`;
}

/** Levenshtein distance, on names of at most a few dozen characters. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || a.length > 64 || b.length > 64) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        prev[j]! + 1,
        row[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length]!;
}
