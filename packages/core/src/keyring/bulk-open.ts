import { openAndZero } from "../crypto/seal.js";
import type { EnvelopeParts, WrappedKey } from "../format/envelope.js";
import { commitmentError } from "../providers/failures.js";
import type { KeyProvider } from "../providers/types.js";
import { committedMessageKey } from "./entry-key.js";
import type { OpenedBy } from "./warm-path.js";

/**
 * A data key a bulk read's lane holds for the rest of its group, named by its unwrap-cache
 * key (provider, key reference, wrapped bytes, the context the provider binds at its KMS):
 * a value whose only entry has the same cache key would unwrap to this key.
 */
export interface HeldKey {
  readonly cacheKey: string;
  /** The lane's own copy; it zeroes it when the group is done. */
  readonly dataKey: Buffer;
}

/** What a bulk read (decryptMany, see decryptGrouped) adds to an open. */
export interface BulkOpen {
  /** Runs one KMS unwrap: at most `concurrency` at once per decryptMany call. */
  gate<T>(call: () => Promise<T>): Promise<T>;
  /**
   * Called once a KMS unwrap of this value's only candidate entry has put its data key in
   * the unwrap cache, with a copy for the lane, and awaited before the value is opened.
   */
  afterUnwrap?: ((key: HeldKey) => Promise<void>) | undefined;
  /** The group's key, for its other values. */
  held?: HeldKey | undefined;
  /**
   * Unwrap-cache keys this value's group loaded (KMS unwraps and joins): a value opened
   * from one of them is on its first read and keeps no message key; one whose data key was
   * cached before (a page read again) keeps it, as `decrypt` does.
   */
  loaded: Set<string>;
}

/**
 * Opens a value with the key its lane holds when the value's only candidate entry has the
 * same unwrap-cache key; undefined otherwise (the normal path then runs). A value that
 * fails the key commitment under it fails as it would with the cached key.
 */
export function openHeld(
  held: HeldKey | undefined,
  pair: readonly [WrappedKey, KeyProvider] | undefined,
  cacheKey: string | undefined,
  parts: EnvelopeParts,
  aad: Uint8Array,
  report: (used: OpenedBy) => void,
): Buffer | undefined {
  if (!held || !pair || cacheKey !== held.cacheKey) return undefined;
  const [entry, provider] = pair;
  const encryptionKey = committedMessageKey(held.dataKey, parts);
  if (!encryptionKey) throw commitmentError(provider, entry);
  report({ provider, keyRef: entry.keyRef, cacheHit: true });
  return openAndZero(encryptionKey, parts.body, aad);
}
