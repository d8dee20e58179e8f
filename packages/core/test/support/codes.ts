import { EnvelopeError, type ErrorCode } from "@envelope/core";
import { expect } from "vitest";

// Record<ErrorCode, true> makes tsc fail if core adds or renames a code and this list
// is not updated: the tests' idea of "the documented set" cannot drift from errors.ts.
const CODES: Record<ErrorCode, true> = {
  ENVELOPE_BAD_FORMAT: true,
  ENVELOPE_UNSUPPORTED_VERSION: true,
  ENVELOPE_UNSUPPORTED_SUITE: true,
  ENVELOPE_LIMIT_EXCEEDED: true,
  ENVELOPE_LEGACY_UNRECOGNIZED: true,
  ENVELOPE_DECRYPT_FAILED: true,
  ENVELOPE_COMMITMENT_MISMATCH: true,
  ENVELOPE_CONTEXT_MISMATCH: true,
  ENVELOPE_NO_MATCHING_KEY: true,
  ENVELOPE_WRONG_PURPOSE: true,
  ENVELOPE_BAD_PADDING: true,
  ENVELOPE_UNSIGNED: true,
  ENVELOPE_UNTRUSTED_SIGNER: true,
  ENVELOPE_BAD_SIGNATURE: true,
  ENVELOPE_BAD_INPUT: true,
  ENVELOPE_BAD_CONFIG: true,
  ENVELOPE_PROVIDER_NOT_INSTALLED: true,
  ENVELOPE_BAD_KEY: true,
  ENVELOPE_ENCRYPT_ONLY: true,
  ENVELOPE_CLOSED: true,
  ENVELOPE_JOB_IN_PROGRESS: true,
  ENVELOPE_UNWRAP_FAILED: true,
  ENVELOPE_PROVIDER_CONTRACT: true,
  ENVELOPE_KMS_THROTTLED: true,
  ENVELOPE_KMS_UNAVAILABLE: true,
  ENVELOPE_KMS_TIMEOUT: true,
  ENVELOPE_KMS_ACCESS_DENIED: true,
  ENVELOPE_KMS_CONTEXT_MISMATCH: true,
  ENVELOPE_KEY_DISABLED: true,
  ENVELOPE_KEY_NOT_FOUND: true,
  ENVELOPE_KMS_ERROR: true,
};

/** Every documented error code. */
export const ERROR_CODES: ReadonlySet<string> = new Set(Object.keys(CODES));

/** The outcome of a promise, without letting a rejection escape the test. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

export async function outcome<T>(promise: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Runs `fn` and returns what it threw; fails the test if it returned. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw, but the call returned");
}

/** Awaits a promise that must reject and returns the rejection reason. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  const result = await outcome(promise);
  if (result.ok) throw new Error("expected a rejection, but the promise resolved");
  return result.error;
}

/**
 * Asserts `error` is an EnvelopeError of class `Class` (when given) with a documented
 * code, and one of `codes` when given. Returns it typed.
 */
export function expectEnvelopeError(
  error: unknown,
  Class?: abstract new (...args: never[]) => EnvelopeError,
  codes?: string | readonly string[],
): EnvelopeError {
  expect(EnvelopeError.isInstance(error), `not an EnvelopeError: ${String(error)}`).toBe(true);
  const e = error as EnvelopeError;
  if (Class) expect(e).toBeInstanceOf(Class);
  expect(ERROR_CODES.has(e.code), `undocumented code ${e.code}`).toBe(true);
  if (codes !== undefined) {
    const allowed = typeof codes === "string" ? [codes] : codes;
    expect(allowed, `unexpected code ${e.code}: ${e.message}`).toContain(e.code);
  }
  return e;
}
