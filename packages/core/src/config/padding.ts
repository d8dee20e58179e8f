import { ConfigError, type ErrorCode } from "../errors.js";
import type { PadRule } from "../format/padding.js";

/**
 * Length padding of sealed values (docs/FORMAT.md §2.3), so a stored value reveals the
 * bucket its plaintext falls in rather than its exact length:
 * - a number `N`: pad to the next multiple of N bytes (`pad: 32`);
 * - `{ bucket: N, min: M }`: the same, but never shorter than M bytes;
 * - `"pii"`: `{ bucket: 32, min: 64 }` — every value under 64 bytes (names, emails,
 *   phone numbers, SSNs, card numbers, dates) looks the same, longer ones step by 32;
 * - `false`: no padding (turns a client default off for one call or one field).
 * The value always gains at least one byte (the 0x80 marker).
 */
export type PadOption = number | "pii" | false | { readonly bucket: number; readonly min?: number };

/** The `"pii"` preset. */
export const PII_PADDING: PadRule = Object.freeze({ bucket: 32, min: 64 });

/** Largest `bucket` and `min` accepted: 1 MiB (padding is for short values). */
export const MAX_PAD_BYTES = 1024 * 1024;

/**
 * A validated rule from a `pad` option, or undefined for no padding. `field` names the
 * option in errors; `code` is `ENVELOPE_BAD_CONFIG` for client settings and
 * `ENVELOPE_BAD_INPUT` for a per-call option.
 */
export function padRule(
  option: unknown,
  field = "pad",
  code: ErrorCode = "ENVELOPE_BAD_CONFIG",
): PadRule | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === "pii") return PII_PADDING;
  const bad = (subject: string, problem: string) =>
    new ConfigError(
      code,
      `${subject} ${problem}. Use a bucket size in bytes (pad: 32), { bucket: 32, min: 64 }, "pii" or false.`,
      { details: { field } },
    );
  const size = (value: unknown, subject: string, low: number): number => {
    if (typeof value !== "number" || !Number.isInteger(value) || value < low) {
      throw bad(subject, `must be an integer from ${low} to ${MAX_PAD_BYTES}`);
    }
    if (value > MAX_PAD_BYTES) throw bad(subject, `must be at most ${MAX_PAD_BYTES} bytes (1 MiB)`);
    return value;
  };
  if (typeof option === "number") return Object.freeze({ bucket: size(option, field, 2), min: 0 });
  if (typeof option === "object" && option !== null && !Array.isArray(option)) {
    const { bucket, min, ...rest } = option as { bucket?: unknown; min?: unknown };
    const extra = Object.keys(rest);
    if (extra.length > 0) throw bad(field, `has an unknown field "${extra[0]}"`);
    return Object.freeze({
      bucket: size(bucket, `${field}.bucket`, 2),
      min: min === undefined ? 0 : size(min, `${field}.min`, 0),
    });
  }
  throw bad(field, "is not a padding option");
}

/**
 * `ENVELOPE_PAD` (`off`, `pii`, or a bucket size in bytes) and `ENVELOPE_PAD_MIN` (bytes)
 * as a `pad` option; undefined when neither is set.
 */
export function padFromEnv(
  pad: string | undefined,
  min: string | undefined,
): PadOption | undefined {
  const value = pad?.trim().toLowerCase() ?? "";
  const minimum = min?.trim() ?? "";
  if (value === "" && minimum === "") return undefined;
  const number = (raw: string, name: string): number => {
    if (!/^\d{1,8}$/.test(raw)) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `${name} must be a number of bytes; got "${raw.slice(0, 20)}".`,
        { details: { field: name } },
      );
    }
    return Number(raw);
  };
  if (value === "off" || value === "false") {
    if (minimum !== "") {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        "ENVELOPE_PAD_MIN is set but ENVELOPE_PAD is off; set ENVELOPE_PAD to a bucket size, or unset ENVELOPE_PAD_MIN.",
        { details: { field: "ENVELOPE_PAD_MIN" } },
      );
    }
    return false;
  }
  if (value === "pii" && minimum === "") return "pii";
  if (value === "" || value === "pii") {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      'ENVELOPE_PAD_MIN needs ENVELOPE_PAD set to a bucket size in bytes (e.g. ENVELOPE_PAD=32 ENVELOPE_PAD_MIN=64); "pii" already sets its own minimum.',
      { details: { field: "ENVELOPE_PAD_MIN" } },
    );
  }
  const option: PadOption =
    minimum === ""
      ? number(value, "ENVELOPE_PAD")
      : { bucket: number(value, "ENVELOPE_PAD"), min: number(minimum, "ENVELOPE_PAD_MIN") };
  padRule(option, "ENVELOPE_PAD"); // validated here, so the variable is named in the error
  return option;
}

/**
 * The rule one encrypt uses: the call's own `pad` when given (validated as caller input),
 * else the client's default.
 */
export function choosePad(
  callOption: unknown,
  clientRule: PadRule | undefined,
): PadRule | undefined {
  return callOption === undefined ? clientRule : padRule(callOption, "pad", "ENVELOPE_BAD_INPUT");
}
