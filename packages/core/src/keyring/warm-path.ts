import type { UnwrapCache } from "../cache/unwrap-cache.js";
import { openBody } from "../crypto/aead.js";
import { commitmentMatches, deriveMessageKeys } from "../crypto/kdf.js";
import { latin1 } from "../crypto/seal.js";
import type { EnvelopeParts, WrappedKey } from "../format/envelope.js";
import { cachesUnwrap } from "../providers/capabilities.js";
import type { KeyProvider, KeyRequest } from "../providers/types.js";
import { kmsContextOf, unwrapCacheKey } from "./cache-keys.js";

/** Which entry and provider opened a value, for the audit event of the operation. */
export type OpenedBy = { provider: KeyProvider; keyRef: string; cacheHit: boolean };

/** Where a remembered message key came from: the entry, its provider, the KMS context. */
interface MessageKeyOrigin {
  readonly provider: KeyProvider;
  readonly entry: WrappedKey;
  readonly kms: string;
}

/**
 * The warm path of decrypt, synchronous from peek to open so the cache cannot evict (and
 * zero) the key meanwhile: first a message key already derived, then a cached data key
 * of a candidate entry (listed only when no message key was remembered). Undefined when neither is cached.
 */
export function openWarm(
  cache: UnwrapCache,
  candidates: () => readonly [WrappedKey, KeyProvider][],
  parts: EnvelopeParts,
  request: KeyRequest,
  aad: Uint8Array,
  report: (used: OpenedBy) => void,
): Buffer | undefined {
  // Keyed by message id AND commitment: the message key was remembered after a
  // commitment check, and must not let an altered commitment skip that check.
  const messageId = latin1(parts.messageId) + latin1(parts.commitment);
  const remembered = cache.peekMessageKey<MessageKeyOrigin>(messageId);
  if (remembered && sameOrigin(remembered.origin, parts, request)) {
    const { provider, entry } = remembered.origin;
    report({ provider, keyRef: entry.keyRef, cacheHit: true });
    return openBody(remembered.key, parts.body, aad);
  }
  for (const [entry, provider] of candidates()) {
    if (!cachesUnwrap(provider)) continue;
    const key = unwrapCacheKey(provider, entry, request);
    const cached = cache.peek(key);
    if (!cached) continue;
    const keys = deriveMessageKeys(cached, parts.messageId, parts.suite);
    if (commitmentMatches(keys.commitment, parts.commitment)) {
      report({ provider, keyRef: entry.keyRef, cacheHit: true });
      // The commitment matched, so this key is right whatever the AAD: keep it (the
      // cache owns it from here), with the entry and KMS context it came from.
      const origin: MessageKeyOrigin = {
        provider,
        entry: { ...entry, wrapped: Buffer.from(entry.wrapped) },
        kms: kmsContextOf(provider, request.context),
      };
      cache.rememberMessageKey(key, messageId, keys.encryptionKey, origin);
      return openBody(keys.encryptionKey, parts.body, aad);
    }
    keys.encryptionKey.fill(0);
  }
  return undefined;
}

/**
 * Whether a remembered message key may open `parts`: the envelope must still carry the
 * entry the key came from, and the KMS-level context must be the one it was unwrapped
 * under. That is exactly what the data key's cache lookup would have required, so a
 * tampered entry or another KMS context falls through to the normal path.
 */
function sameOrigin(origin: MessageKeyOrigin, parts: EnvelopeParts, request: KeyRequest): boolean {
  const { provider, entry, kms } = origin;
  const carried = parts.entries.some(
    (e) =>
      e.providerId === entry.providerId &&
      e.keyRef === entry.keyRef &&
      Buffer.compare(e.wrapped, entry.wrapped) === 0,
  );
  return carried && kmsContextOf(provider, request.context) === kms;
}
