import { ConfigError, DecryptionError } from "../errors.js";
import { MAX_ENTRIES } from "../format/constants.js";
import type { EnvelopeParts, WrappedKey } from "../format/envelope.js";
import { printable } from "../format/printable.js";
import { checkProvider } from "../providers/checks.js";
import { entryLimitError } from "../providers/failures.js";
import type { KeyProvider } from "../providers/types.js";

/**
 * (entry, provider) pairs in envelope order, then configuration order. A value with more
 * entries that some configured key handles than `maxEntriesTried` is refused before any
 * of them is tried (the entries are the attacker's to multiply; the providers per entry
 * are bounded by this client's configuration).
 */
export function candidates(
  parts: EnvelopeParts,
  decryptors: readonly KeyProvider[],
  maxEntriesTried: number,
): [WrappedKey, KeyProvider][] {
  const out: [WrappedKey, KeyProvider][] = [];
  let entries = 0;
  for (const entry of parts.entries) {
    const before = out.length;
    for (const provider of decryptors) {
      if (provider.id === entry.providerId && provider.handles(entry)) out.push([entry, provider]);
    }
    if (out.length > before) entries++;
  }
  if (entries > maxEntriesTried) throw entryLimitError(entries, maxEntriesTried);
  return out;
}

/** The providers among `providers` that can unwrap `entry`, without duplicates. */
export function handlersOf(entry: WrappedKey, providers: readonly KeyProvider[]): KeyProvider[] {
  return [...new Set(providers)].filter((p) => p.id === entry.providerId && p.handles(entry));
}

/** No configured key handles any entry: name what the value needs and what this client has. */
export function noMatchingKey(
  parts: EnvelopeParts,
  decryptors: readonly KeyProvider[],
): DecryptionError {
  // Read from the stored value: escaped and capped before it is shown.
  const present = parts.entries
    .map((e) => printable(`${e.providerId}:${e.keyRef}`, 100))
    .join(", ");
  const configured = decryptors.map((p) => `${p.id}:${p.keyRef}`).join(", ");
  return new DecryptionError(
    "ENVELOPE_NO_MATCHING_KEY",
    `No configured key can unwrap this envelope. It was wrapped under [${present}]; this client has [${configured}]. Add the old key to the decrypt list (ENVELOPE_DECRYPT_KEYS / config.decrypt).`,
    { details: { wrappedUnder: present, configured: printable(configured, 1000) } },
  );
}

/** The encrypting and decrypting providers of a client, checked and frozen. */
export function checkedProviders(
  encryptOption: KeyProvider | readonly KeyProvider[],
  decryptOption: readonly KeyProvider[] = [],
): { encrypt: readonly KeyProvider[]; decrypt: readonly KeyProvider[] } {
  const encrypt = Array.isArray(encryptOption) ? encryptOption : [encryptOption as KeyProvider];
  if (encrypt.length === 0) {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", "encrypt: give at least one key provider.", {
      details: { field: "encrypt" },
    });
  }
  if (encrypt.length > MAX_ENTRIES) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `encrypt: ${encrypt.length} keys given; an envelope holds at most ${MAX_ENTRIES} wrapped keys. Move the extra keys to \`decrypt\`.`,
      { details: { field: "encrypt" } },
    );
  }
  for (const [i, p] of encrypt.entries()) checkProvider(p, `encrypt[${i}]`);
  for (const [i, p] of decryptOption.entries()) checkProvider(p, `decrypt[${i}]`);
  return {
    encrypt: Object.freeze([...encrypt]),
    // A provider listed under both (or twice) is tried once: a failing entry would
    // otherwise cost it one unwrap per listing.
    decrypt: Object.freeze([...new Set([...encrypt, ...decryptOption])]),
  };
}
