import type { EncryptionContext } from "../format/context.js";
import type { WrappedKey } from "../format/envelope.js";
import { cachesUnwrap, kmsContextKeyOf } from "../providers/capabilities.js";
import type { KeyProvider, KeyRequest } from "../providers/types.js";

/**
 * The unwrap cache's key for one entry: everything that determined the unwrap (provider,
 * key reference, wrapped bytes, KMS-level context), so a key unwrapped under one KMS
 * context is never served for another.
 */
export function unwrapCacheKey(
  provider: KeyProvider,
  entry: WrappedKey,
  request: KeyRequest,
): string {
  const wrapped = Buffer.from(entry.wrapped.buffer, entry.wrapped.byteOffset, entry.wrapped.length);
  const kms = kmsContextOf(provider, request.context);
  return `${provider.id}\u0000${entry.keyRef}\u0000${wrapped.toString("base64")}\u0000${kms}`;
}

/** The unwrap-cache key of each (entry, provider) pair; undefined where the provider opts out. */
export function cacheKeysOf(
  pairs: readonly (readonly [WrappedKey, KeyProvider])[],
  request: KeyRequest,
): (string | undefined)[] {
  const keys: (string | undefined)[] = [];
  for (const pair of pairs) {
    keys.push(cachesUnwrap(pair[1]) ? unwrapCacheKey(pair[1], pair[0], request) : undefined);
  }
  return keys;
}

/** The data-key reuse cache's key: one slot per KMS-level context of the encrypting keys. */
export function reuseCacheKey(
  encryptors: readonly KeyProvider[],
  context: EncryptionContext,
): string {
  return encryptors.map((p) => kmsContextOf(p, context)).join("\u0000");
}

/** The part of the context a provider binds at its KMS ("" when it binds none). */
export function kmsContextOf(provider: KeyProvider, context: EncryptionContext): string {
  return kmsContextKeyOf(provider, context);
}
