import type { UnwrapCache } from "../cache/unwrap-cache.js";
import { openBody } from "../crypto/aead.js";
import { commitmentMatches, deriveMessageKeys } from "../crypto/kdf.js";
import { latin1, openAndZero } from "../crypto/seal.js";
import type { EnvelopeParts, WrappedKey } from "../format/envelope.js";
import type { KeyProvider, KeyRequest } from "../providers/types.js";
import { kmsContextOf } from "./cache-keys.js";

/** Which entry and provider opened a value, for the audit event of the operation. */
export type OpenedBy = { provider: KeyProvider; keyRef: string; cacheHit: boolean };

/** Where a remembered message key came from: the entry, its provider, the KMS context. */
interface MessageKeyOrigin {
  readonly provider: KeyProvider;
  readonly entry: WrappedKey;
  readonly kms: string;
}

/**
 * The warm path of decrypt, part 1: a message key already derived for this message id
 * and commitment, from an entry the envelope still carries. Synchronous from peek to
 * open, so the cache cannot evict (and zero) the key meanwhile. Undefined when none.
 */
export function openRemembered(
  cache: UnwrapCache,
  parts: EnvelopeParts,
  request: KeyRequest,
  aad: Uint8Array,
  report: (used: OpenedBy) => void,
): Buffer | undefined {
  if (!cache.remembersMessages) return undefined;
  // Keyed by message id AND commitment: the message key was remembered after a
  // commitment check, and must not let an altered commitment skip that check.
  const remembered = cache.peekMessageKey<MessageKeyOrigin>(messageKeyId(parts));
  if (!remembered || !sameOrigin(remembered.origin, parts, request)) return undefined;
  const { provider, entry } = remembered.origin;
  report({ provider, keyRef: entry.keyRef, cacheHit: true });
  return openBody(remembered.key, parts.body, aad);
}

/**
 * The warm path of decrypt, part 2: a cached data key of a candidate entry (`keys[i]` is
 * the unwrap-cache key of `pairs[i]`, undefined where the provider opts out). The message
 * key derived is kept for the next read of this message: a data key still cached means
 * its record was read a moment ago, and a list page or a hot record is read again. Not
 * when the key is in `fresh` (loaded for this value's group by a bulk read: a first read,
 * which an export never repeats); that message key is zeroed after the open. Synchronous like part 1.
 * Undefined when no candidate's data key is cached.
 */
export function openCached(
  cache: UnwrapCache,
  pairs: readonly (readonly [WrappedKey, KeyProvider])[],
  keys: readonly (string | undefined)[],
  parts: EnvelopeParts,
  request: KeyRequest,
  aad: Uint8Array,
  report: (used: OpenedBy) => void,
  fresh?: ReadonlySet<string>,
): Buffer | undefined {
  for (let i = 0; i < pairs.length; i++) {
    const key = keys[i];
    if (key === undefined) continue;
    const cached = cache.peek(key);
    if (!cached) continue;
    const [entry, provider] = pairs[i]!;
    const derived = deriveMessageKeys(cached, parts.messageId, parts.suite);
    if (commitmentMatches(derived.commitment, parts.commitment)) {
      report({ provider, keyRef: entry.keyRef, cacheHit: true });
      if (fresh?.has(key)) return openAndZero(derived.encryptionKey, parts.body, aad);
      // The commitment matched, so this key is right whatever the AAD: keep it (the
      // cache owns it from here), with the entry and KMS context it came from.
      const origin: MessageKeyOrigin = {
        provider,
        entry: { ...entry, wrapped: Buffer.from(entry.wrapped) },
        kms: kmsContextOf(provider, request.context),
      };
      cache.rememberMessageKey(key, messageKeyId(parts), derived.encryptionKey, origin);
      return openBody(derived.encryptionKey, parts.body, aad);
    }
    derived.encryptionKey.fill(0);
  }
  return undefined;
}

function messageKeyId(parts: EnvelopeParts): string {
  return latin1(parts.messageId) + latin1(parts.commitment);
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
