import { ProviderError } from "../errors.js";
import {
  MAX_ENTRIES,
  MAX_KEY_REF_LENGTH,
  MAX_WRAPPED_KEY_LENGTH,
  PROVIDER_ID_PATTERN,
} from "./constants.js";
import type { WrappedKey } from "./envelope.js";
import { printable } from "./printable.js";

/**
 * Checks a wrapped-key entry against the format's limits and returns its encoded fields.
 * Entries come from providers, so a violation is a provider contract error. The limits are
 * the decoder's (docs/FORMAT.md §2 entry table, §2.1 step 6), applied on encode (§8: "the
 * same limits bind encoders").
 */
export function checkEntry(entry: WrappedKey): { id: Buffer; ref: Buffer; wrapped: Uint8Array } {
  if (typeof entry !== "object" || entry === null) throw badEntry(entry, "not an object");
  if (typeof entry.providerId !== "string" || !PROVIDER_ID_PATTERN.test(entry.providerId)) {
    throw badEntry(entry, "provider id must match /^[a-z0-9][a-z0-9-]{0,63}$/");
  }
  if (typeof entry.keyRef !== "string" || entry.keyRef.length === 0)
    throw badEntry(entry, "empty key reference");
  const ref = Buffer.from(entry.keyRef, "utf8");
  if (ref.length > MAX_KEY_REF_LENGTH)
    throw badEntry(entry, "key reference longer than 2048 bytes");
  if (!(entry.wrapped instanceof Uint8Array) || entry.wrapped.length === 0)
    throw badEntry(entry, "empty wrapped key");
  if (entry.wrapped.length > MAX_WRAPPED_KEY_LENGTH)
    throw badEntry(entry, "wrapped key longer than 4096 bytes");
  return { id: Buffer.from(entry.providerId, "ascii"), ref, wrapped: entry.wrapped };
}

/** Not a closure inside checkEntry: that one was allocated for every entry encoded. */
function badEntry(entry: WrappedKey, problem: string): ProviderError {
  return new ProviderError(
    "ENVELOPE_PROVIDER_CONTRACT",
    `Key provider "${printable(String(entry?.providerId), 64)}" returned an invalid wrapped key: ${problem}. This is a bug in the provider.`,
    { details: { provider: printable(String(entry?.providerId), 64) } },
  );
}

/** §2.1 step 5 on encode: 1 … 16 entries. */
export function checkEntryCount(count: number): void {
  if (count < 1 || count > MAX_ENTRIES) {
    throw new ProviderError(
      "ENVELOPE_PROVIDER_CONTRACT",
      `An envelope needs between 1 and ${MAX_ENTRIES} wrapped keys; got ${count}. Configure fewer encrypting keys.`,
    );
  }
}
