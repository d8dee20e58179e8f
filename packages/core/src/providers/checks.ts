import { secretCopy } from "../crypto/secret-bytes.js";
import { ConfigError, ProviderError } from "../errors.js";
import { DATA_KEY_LENGTH } from "../format/constants.js";
import type { WrappedKey } from "../format/envelope.js";
import { printable } from "../format/printable.js";
import { checkEntry } from "../format/validate.js";
import type { KeyProvider } from "./types.js";

// Trust nothing a provider returns: every result is checked before the core uses it.

export function checkProvider(provider: KeyProvider, field: string): void {
  const ok =
    provider &&
    typeof provider.id === "string" &&
    typeof provider.keyRef === "string" &&
    typeof provider.wrap === "function" &&
    typeof provider.unwrap === "function" &&
    typeof provider.handles === "function";
  if (!ok) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `${field} is not a key provider (needs id, keyRef, wrap, unwrap, handles). Pass a provider object, a key URI, or { provider: "<scheme>", … } to createEnvelope.`,
      { details: { field } },
    );
  }
}

export function checkDataKey(
  dataKey: unknown,
  provider: KeyProvider,
): asserts dataKey is Uint8Array {
  if (!(dataKey instanceof Uint8Array) || dataKey.length !== DATA_KEY_LENGTH) {
    if (dataKey instanceof Uint8Array) dataKey.fill(0); // refused, but key material all the same: zero it
    throw new ProviderError(
      "ENVELOPE_PROVIDER_CONTRACT",
      `Key provider "${printable(provider.id)}" returned a data key that is not 32 bytes. This is a bug in the provider; nothing was encrypted or decrypted with it.`,
      { details: { provider: printable(provider.id), keyRef: printable(provider.keyRef) } },
    );
  }
}

export function checkReturnedEntry(entry: WrappedKey, provider: KeyProvider): void {
  checkEntry(entry);
  if (entry.providerId !== provider.id) {
    throw new ProviderError(
      "ENVELOPE_PROVIDER_CONTRACT",
      `Key provider "${printable(provider.id)}" returned an entry labelled "${printable(String(entry.providerId))}". This is a bug in the provider.`,
      { details: { provider: printable(provider.id) } },
    );
  }
}

/** Copies a data key a provider returned into our own buffer, and zeroes the provider's. */
export function takeDataKey(returned: Uint8Array): Buffer {
  const owned = secretCopy(returned);
  returned.fill(0);
  return owned;
}
