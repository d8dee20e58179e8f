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
