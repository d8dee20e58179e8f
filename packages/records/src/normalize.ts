import { ConfigError } from "@envelope/core";

/**
 * Canonical form of an email address for blind indexing: Unicode NFC, trimmed, lower-cased.
 * Provider-specific rules (Gmail dots, `+tag`) are not applied: they are not true of every
 * mail system, and merging two distinct addresses would be worse than missing a match.
 *
 * @example
 * normalizeEmail("  Alice@Example.COM ") // "alice@example.com"
 */
export function normalizeEmail(value: string): string {
  return value.normalize("NFC").trim().toLowerCase();
}

/**
 * Canonical form of a phone number for blind indexing: its ASCII digits only, so
 * "+1 (555) 010-0199" and "1-555-010-0199" index alike. A leading "00" international
 * prefix is not rewritten: store numbers in one convention (E.164) to match reliably.
 * A value with no digit at all ("n/a", "unknown") is not a number: it is kept as it is
 * (NFKC, trimmed), so that such values do not all index, and match, as one.
 *
 * @example
 * normalizePhone("+1 (555) 010-0199") // "15550100199"
 * normalizePhone(" n/a ") // "n/a"
 */
export function normalizePhone(value: string): string {
  const text = value.normalize("NFKC");
  const digits = text.replace(/[^0-9]/g, "");
  return digits === "" ? text.trim() : digits;
}

/** NFC, trimmed, lower-cased: usernames, codes, anything compared case-insensitively. */
export function normalizeTrimLower(value: string): string {
  return value.normalize("NFC").trim().toLowerCase();
}

export type Normalizer = "email" | "phone" | "trim-lower" | ((value: string) => string);

/** The normalizers known by name. */
export const NORMALIZER_NAMES: readonly string[] = ["email", "phone", "trim-lower"];

/** Applies a normalizer by name or function; no normalizer = the value as given. */
export function normalizeWith(normalize: Normalizer | undefined, value: string): string {
  if (normalize === undefined) return value;
  if (typeof normalize === "function") {
    const out = normalize(value);
    if (typeof out !== "string") {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        "A blind index normalize function must return a string.",
        { details: { field: "normalize" } },
      );
    }
    return out;
  }
  switch (normalize) {
    case "email":
      return normalizeEmail(value);
    case "phone":
      return normalizePhone(value);
    case "trim-lower":
      return normalizeTrimLower(value);
    default:
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `Unknown blind index normalizer "${String(normalize)}": use "email", "phone", "trim-lower" or a function.`,
        { details: { field: "normalize" } },
      );
  }
}
