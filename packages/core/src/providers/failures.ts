import { DecryptionError, EnvelopeError, ProviderError } from "../errors.js";
import type { WrappedKey } from "../format/envelope.js";
import type { KeyProvider } from "./types.js";

export function commitmentError(provider: KeyProvider, entry: WrappedKey): DecryptionError {
  return new DecryptionError(
    "ENVELOPE_COMMITMENT_MISMATCH",
    "Could not decrypt: a wrapped key unwrapped to a data key that does not match this envelope's key commitment. The wrapped-key entry was altered or copied from another envelope.",
    { details: { provider: provider.id, keyRef: entry.keyRef } },
  );
}

export function asEnvelopeError(error: unknown): EnvelopeError {
  if (EnvelopeError.isInstance(error)) return error;
  return new ProviderError(
    "ENVELOPE_UNWRAP_FAILED",
    "A key provider failed with an unexpected error while unwrapping a data key. See `cause`.",
    { cause: error },
  );
}

export function wrapFailure(error: unknown, provider: KeyProvider): EnvelopeError {
  if (EnvelopeError.isInstance(error)) return error;
  return new ProviderError(
    "ENVELOPE_KMS_ERROR",
    `Key provider "${provider.id}" failed with an unexpected error while wrapping a data key under key "${provider.keyRef}". See \`cause\`.`,
    { cause: error, details: { provider: provider.id, keyRef: provider.keyRef } },
  );
}

// Prefer errors that tell the operator what to fix (a provider or key problem) over
// the generic commitment failure of an entry that was merely tried.
export function pickFailure(failures: EnvelopeError[]): EnvelopeError {
  return failures.find((f) => f.code !== "ENVELOPE_COMMITMENT_MISMATCH") ?? failures[0]!;
}
