import {
  ConfigError,
  DecryptionError,
  EnvelopeError,
  FormatError,
  ProviderError,
} from "../errors.js";
import type { WrappedKey } from "../format/envelope.js";
import { printable } from "../format/printable.js";
import type { KeyProvider } from "./types.js";

export function commitmentError(provider: KeyProvider, entry: WrappedKey): DecryptionError {
  return new DecryptionError(
    "ENVELOPE_COMMITMENT_MISMATCH",
    "Could not decrypt: a wrapped key unwrapped to a data key that does not match this envelope's key commitment. The wrapped-key entry was altered or copied from another envelope.",
    { details: { provider: printable(provider.id), keyRef: printable(entry.keyRef) } },
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
    `Key provider "${printable(provider.id)}" failed with an unexpected error while wrapping a data key under key "${printable(provider.keyRef)}". See \`cause\`.`,
    {
      cause: error,
      details: { provider: printable(provider.id), keyRef: printable(provider.keyRef) },
    },
  );
}

// Prefer errors that tell the operator what to fix (a provider or key problem) over
// the generic commitment failure of an entry that was merely tried.
export function pickFailure(failures: EnvelopeError[]): EnvelopeError {
  return failures.find((f) => f.code !== "ENVELOPE_COMMITMENT_MISMATCH") ?? failures[0]!;
}

/** A native rewrap returned an entry that unwraps to another data key: nothing is written. */
export function nativeRewrapError(provider: KeyProvider, entry: WrappedKey): DecryptionError {
  return new DecryptionError(
    "ENVELOPE_COMMITMENT_MISMATCH",
    `Rewrap stopped: the entry that key provider "${printable(provider.id)}" returned from its native rewrap does not open to this value's data key (key commitment). The source entry was altered or copied from another envelope; the value was left unchanged.`,
    { details: { provider: printable(provider.id), keyRef: printable(entry.keyRef) } },
  );
}

/** Default of `maxEntriesTried`: see EnvelopeOptions. */
export const DEFAULT_MAX_ENTRIES_TRIED = 3;

/** `maxEntriesTried` checked, or its default for a client with `encryptKeys` keys. */
export function maxEntriesTried(value: number | undefined, encryptKeys: number): number {
  if (value === undefined) return Math.max(DEFAULT_MAX_ENTRIES_TRIED, encryptKeys);
  if (!Number.isInteger(value) || value < 1 || value > 1024) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "maxEntriesTried must be an integer from 1 to 1024 (default 3).",
      { details: { field: "maxEntriesTried" } },
    );
  }
  return value;
}

/** A value asks this client to try more wrapped keys than `maxEntriesTried` allows. */
export function entryLimitError(count: number, max: number): FormatError {
  return new FormatError(
    "ENVELOPE_LIMIT_EXCEEDED",
    `This value has ${count} wrapped keys that this client's keys could try; the limit is ${max}. Nothing was unwrapped. If you multi-wrap values under that many keys, raise maxEntriesTried (ENVELOPE_MAX_ENTRIES_TRIED); otherwise the stored value was planted or tampered with.`,
    { details: { field: "maxEntriesTried", entries: count, limit: max } },
  );
}
