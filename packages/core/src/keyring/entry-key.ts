import type { Auditor } from "../audit.js";
import type { UnwrapCache } from "../cache/unwrap-cache.js";
import { commitmentMatches, deriveMessageKeys } from "../crypto/kdf.js";
import { secretCopy } from "../crypto/secret-bytes.js";
import { ProviderError } from "../errors.js";
import { DATA_KEY_LENGTH } from "../format/constants.js";
import type { EnvelopeParts, WrappedKey } from "../format/envelope.js";
import { printable } from "../format/printable.js";
import { cachesUnwrap } from "../providers/capabilities.js";
import { takeDataKey } from "../providers/checks.js";
import { commitmentError } from "../providers/failures.js";
import type { KeyProvider, KeyRequest } from "../providers/types.js";
import type { BulkOpen } from "./bulk-open.js";
import { unwrapCacheKey } from "./cache-keys.js";

/** A data key checked against an envelope's key commitment, and the message key derived. */
export interface EntryKey {
  /** The caller zeroes it. */
  readonly dataKey: Buffer;
  /** The caller zeroes it. */
  readonly encryptionKey: Buffer;
  readonly cacheHit: boolean;
}

/**
 * Unwraps one entry with one provider (through `cache` unless the provider opts out) and
 * checks the result against the envelope's key commitment; throws
 * `ENVELOPE_COMMITMENT_MISMATCH` when it opens to another data key. `cacheKey` is the
 * entry's unwrap-cache key when the caller already built it (the same string object
 * keeps its hash, so the cache does not hash 60–500 characters again). `bulk`: a bulk
 * read's gate on KMS calls, and its hook after one (see BulkOpen), called before the
 * commitment check.
 */
export async function entryKey(
  cache: UnwrapCache | undefined,
  audit: Auditor,
  provider: KeyProvider,
  entry: WrappedKey,
  parts: EnvelopeParts,
  request: KeyRequest,
  cacheKey?: string,
  bulk?: BulkOpen,
): Promise<EntryKey> {
  const cached = cache && cachesUnwrap(provider) ? cache : undefined;
  let dataKey: Buffer;
  let cacheHit = false;
  if (cached) {
    const key = cacheKey ?? unwrapCacheKey(provider, entry, request);
    const found = cached.peek(key);
    if (found) {
      dataKey = secretCopy(found);
      cacheHit = true;
    } else {
      const loaded = await cached.loadKey(key, () => gated(audit, provider, entry, request, bulk));
      dataKey = loaded.key;
      cacheHit = loaded.joined;
      bulk?.loaded.add(key);
      if (bulk?.afterUnwrap)
        await bulk.afterUnwrap({ cacheKey: key, dataKey: secretCopy(dataKey) });
    }
  } else {
    dataKey = takeDataKey(await gated(audit, provider, entry, request, bulk));
  }
  const encryptionKey = committedMessageKey(dataKey, parts);
  if (encryptionKey) return { dataKey, encryptionKey, cacheHit };
  dataKey.fill(0);
  throw commitmentError(provider, entry);
}

/**
 * The message key of `parts` derived from `dataKey`, or undefined (and nothing left in
 * memory) when `dataKey` does not match the envelope's key commitment.
 */
export function committedMessageKey(dataKey: Uint8Array, parts: EnvelopeParts): Buffer | undefined {
  const keys = deriveMessageKeys(dataKey, parts.messageId, parts.suite);
  if (commitmentMatches(keys.commitment, parts.commitment)) return keys.encryptionKey;
  keys.encryptionKey.fill(0);
  return undefined;
}

/** `unwrapEntry`, through a bulk read's gate on KMS calls when there is one. */
function gated(
  audit: Auditor,
  provider: KeyProvider,
  entry: WrappedKey,
  request: KeyRequest,
  bulk: BulkOpen | undefined,
): Promise<Uint8Array> {
  return bulk
    ? bulk.gate(() => unwrapEntry(audit, provider, entry, request))
    : unwrapEntry(audit, provider, entry, request);
}

/** One provider unwrap, audited, whose result must be a 32-byte key. */
async function unwrapEntry(
  audit: Auditor,
  provider: KeyProvider,
  entry: WrappedKey,
  request: KeyRequest,
): Promise<Uint8Array> {
  // Unwrap failures are typed by the callers (asEnvelopeError), not here.
  const dataKey = await audit.timed(
    "unwrap",
    provider,
    () => provider.unwrap(entry, request),
    UNWRAP_EXTRA,
    entry.keyRef,
  );
  // Whoever can write the stored value can make an entry unwrap to the wrong length:
  // report it as a bad entry, not as a provider bug.
  if (!(dataKey instanceof Uint8Array) || dataKey.length !== DATA_KEY_LENGTH) {
    if (dataKey instanceof Uint8Array) dataKey.fill(0);
    throw new ProviderError(
      "ENVELOPE_UNWRAP_FAILED",
      `Key provider "${provider.id}" unwrapped a data key that is not 32 bytes: the wrapped-key entry is corrupted or was tampered with.`,
      { details: { provider: provider.id, keyRef: printable(entry.keyRef) } },
    );
  }
  return dataKey;
}

// Read only (auditEvent copies the fields it needs): one object for every unwrap.
export const UNWRAP_EXTRA = Object.freeze({ cacheHit: false });
