import { DecryptionError, FormatError } from "@envelope/core";

/** The value has the wrong shape for `format` (no key was tried). */
export function notLegacy(format: string, problem: string, cause?: unknown): FormatError {
  return new FormatError(
    "ENVELOPE_BAD_FORMAT",
    `Value is not in the legacy ${format} format: ${problem}.`,
    { cause, details: { field: "legacyValue" } },
  );
}

/** The value has the right shape but no configured key opens it. */
export function wrongKey(format: string, cause?: unknown): DecryptionError {
  return new DecryptionError(
    "ENVELOPE_DECRYPT_FAILED",
    `Could not decrypt a legacy ${format} value: wrong legacy key, or the value was altered.`,
    { cause },
  );
}

/** Text view of a column value (bytes as UTF-8). */
export const asText = (value: string | Buffer): string =>
  typeof value === "string" ? value : value.toString("utf8");

/** A value in a mixed column that none of the configured legacy formats accepts. */
export function unrecognized(formats: readonly string[]): FormatError {
  return new FormatError(
    "ENVELOPE_LEGACY_UNRECOGNIZED",
    `Value is neither an Envelope value nor in a configured legacy format (${formats.join(", ") || "none"}). It was left unchanged: add its format, or allow plaintext only if it really is plaintext.`,
    { details: { field: "legacyValue" } },
  );
}
