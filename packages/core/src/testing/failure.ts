import { EnvelopeError } from "../errors.js";

/**
 * The rejection of `promise`, which must be an EnvelopeError (checked with `isInstance`,
 * so it works across two copies of @envelope/core). Throws when the promise resolves, or
 * rejects with anything untyped (that error is rethrown as is).
 *
 * @example
 * const error = await failure(envelope.decrypt(value, { context: other }));
 * expect(error.code).toBe("ENVELOPE_DECRYPT_FAILED");
 */
export async function failure(promise: Promise<unknown>): Promise<EnvelopeError> {
  const outcome = await promise.then(
    () => ({ resolved: true as const }),
    (error: unknown) => ({ resolved: false as const, error }),
  );
  if (outcome.resolved) throw new Error("expected a rejection, but the call succeeded");
  if (!EnvelopeError.isInstance(outcome.error)) throw outcome.error;
  return outcome.error;
}
