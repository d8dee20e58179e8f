import { ConfigError } from "@envelope/core";

const DAY = 86_400_000;

/** Where a key stands against the rotation thresholds. */
export type KeyAgeState = "ok" | "WARN" | "DUE" | "unknown age";

/** Rotation thresholds in days (fractions allowed). */
export interface AgeThresholds {
  warnDays: number;
  dueDays: number;
}

/**
 * A key's age and state at `now` from when it was created (ISO time, or undefined when
 * unknown). Thresholds compare the exact (fractional) age; `ageDays` is whole days, for display.
 */
export function keyAge(
  createdAt: string | undefined,
  now: number,
  { warnDays, dueDays }: AgeThresholds,
): { ageDays: number | undefined; state: KeyAgeState } {
  if (!createdAt) return { ageDays: undefined, state: "unknown age" };
  const age = (now - Date.parse(createdAt)) / DAY;
  const state = age >= dueDays ? "DUE" : age >= warnDays ? "WARN" : "ok";
  return { ageDays: Math.floor(age), state };
}

/** A `--warn-days` / `--due-days` value: a positive number of days (fractions allowed). */
export function parseDays(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `${flag} must be a positive number of days (e.g. 90, or 0.5 for twelve hours).`,
      { details: { field: flag } },
    );
  }
  return n;
}
