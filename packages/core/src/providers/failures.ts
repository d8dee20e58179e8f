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

/** One provider's attempt at one entry that failed, as the decrypt search records it. */
export interface TriedEntry {
  readonly provider: KeyProvider;
  readonly entry: WrappedKey;
  readonly error: EnvelopeError;
}

/** Most attempts listed in the message; the rest are counted. */
const MAX_LISTED = 8;

/**
 * The error thrown when every candidate entry failed. It keeps the class and code of the
 * most telling failure (a provider or key problem beats the generic commitment mismatch
 * of an entry that was merely tried) and, when more than one was tried, lists each
 * provider tried with its key and code, so the operator sees every problem at once.
 */
export function pickFailure(tried: readonly TriedEntry[]): EnvelopeError {
  const picked = tried.find((t) => t.error.code !== "ENVELOPE_COMMITMENT_MISMATCH") ?? tried[0]!;
  if (tried.length === 1) return picked.error;
  const listed = tried
    .slice(0, MAX_LISTED)
    .map(
      (t) => `${printable(t.provider.id, 64)} (${printable(t.entry.keyRef, 120)}): ${t.error.code}`,
    );
  const more = tried.length > MAX_LISTED ? `; and ${tried.length - MAX_LISTED} more` : "";
  const Same = picked.error.constructor as typeof EnvelopeError;
  return new Same(
    picked.error.code,
    `${picked.error.message} Every key tried failed (${tried.length}): ${listed.join("; ")}${more}.`,
    {
      cause: picked.error,
      details: {
        ...picked.error.details,
        tried: tried.length,
        triedCodes: tried.map((t) => `${t.provider.id}:${t.error.code}`).join(","),
      },
    },
  );
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
