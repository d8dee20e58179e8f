import type { AuditEvent, Auditor } from "../audit.js";
import type { UnwrapCache } from "../cache/unwrap-cache.js";
import type { EncryptionMaterials } from "../crypto/materials.js";
import { randomBytesPooled } from "../crypto/random.js";
import { openAndZero } from "../crypto/seal.js";
import { secretCopy } from "../crypto/secret-bytes.js";
import type { EnvelopeError } from "../errors.js";
import { DATA_KEY_LENGTH } from "../format/constants.js";
import type { EnvelopeParts, WrappedKey } from "../format/envelope.js";
import { cachesUnwrap, supportsDataKeyGeneration } from "../providers/capabilities.js";
import { checkDataKey, checkReturnedEntry } from "../providers/checks.js";
import {
  asEnvelopeError,
  maxEntriesTried,
  nativeRewrapError,
  pickFailure,
  type TriedEntry,
  wrapFailure,
} from "../providers/failures.js";
import type { KeyProvider, KeyRequest, NativeRewrap } from "../providers/types.js";
import { type BulkOpen, openHeld } from "./bulk-open.js";
import { cacheKeysOf, unwrapCacheKey } from "./cache-keys.js";
import { candidates, checkedProviders, handlersOf, noMatchingKey } from "./candidates.js";
import { type EntryKey, entryKey } from "./entry-key.js";
import { openNow } from "./open-now.js";
import { type OpenedBy, openCached, openRemembered } from "./warm-path.js";

export type { OpenedBy } from "./warm-path.js";

export interface KeyRingOptions {
  /** Providers new data keys are wrapped under (the first one generates it). */
  encrypt: KeyProvider | readonly KeyProvider[];
  /** Further providers allowed to unwrap. */
  decrypt?: readonly KeyProvider[] | undefined;
  /** Shared unwrap cache, or undefined for none. */
  cache: UnwrapCache | undefined;
  auditor: Auditor;
  maxEntriesTried?: number | undefined;
}

/** A data key proven (key commitment) to be the one of an envelope, and where it came from. */
export interface VerifiedDataKey {
  /** The caller zeroes it. */
  readonly dataKey: Buffer;
  /** The message key derived on the way. The caller zeroes it. */
  readonly encryptionKey: Buffer;
  readonly provider: KeyProvider;
  readonly entry: WrappedKey;
  readonly cacheHit: boolean;
}

/**
 * The keyring half of the client (the ESDK's keyring / materials split): the encrypting
 * and decrypting providers, fresh data keys wrapped under every encrypting key, and data
 * keys of stored values, unwrapped (through the unwrap cache) and checked against the key
 * commitment. Every provider result is checked before it is used.
 */
export class KeyRing {
  readonly encryptors: readonly KeyProvider[];
  readonly decryptors: readonly KeyProvider[];
  readonly #cache: UnwrapCache | undefined;
  readonly #audit: Auditor;
  readonly #maxEntriesTried: number;

  constructor(options: KeyRingOptions) {
    const { encrypt, decrypt } = checkedProviders(options.encrypt, options.decrypt);
    this.encryptors = encrypt;
    this.decryptors = decrypt;
    this.#cache = options.cache;
    this.#audit = options.auditor;
    this.#maxEntriesTried = maxEntriesTried(options.maxEntriesTried, encrypt.length);
  }

  /** A new data key wrapped under every encrypting key (one entry each). The caller zeroes it. */
  async freshMaterials(request: KeyRequest): Promise<EncryptionMaterials> {
    const [primary, ...others] = this.encryptors as [KeyProvider, ...KeyProvider[]];
    let dataKey: Buffer;
    let first: WrappedKey;
    let suite: number | undefined;
    if (supportsDataKeyGeneration(primary)) {
      const generated = await this.#call("wrap", primary, () => primary.generateDataKey(request));
      checkDataKey(generated?.dataKey, primary);
      dataKey = secretCopy(generated.dataKey);
      generated.dataKey.fill(0);
      first = generated.entry;
      suite = generated.suite;
    } else {
      dataKey = randomBytesPooled(DATA_KEY_LENGTH);
      first = await this.#call("wrap", primary, () => primary.wrap(dataKey, request)).catch((e) => {
        dataKey.fill(0);
        throw e;
      });
    }
    try {
      const rest = await Promise.all(
        others.map((p) => this.#call("wrap", p, () => p.wrap(dataKey, request))),
      );
      const entries = [first, ...rest];
      for (const [i, entry] of entries.entries()) checkReturnedEntry(entry, this.encryptors[i]!);
      return suite === undefined ? { dataKey, entries } : { dataKey, entries, suite };
    } catch (error) {
      dataKey.fill(0);
      throw error;
    }
  }

  /** Caches a data key this process just generated, so reading back what it sealed costs no unwrap. */
  prime(materials: EncryptionMaterials, request: KeyRequest): void {
    if (!this.#cache) return;
    for (const [i, entry] of materials.entries.entries()) {
      const provider = this.encryptors[i]!;
      if (!cachesUnwrap(provider)) continue;
      this.#cache.prime(unwrapCacheKey(provider, entry, request), materials.dataKey);
    }
  }

  /** Wraps `dataKey` under `target` (a rewrap done here); the entry is checked. */
  async wrap(target: KeyProvider, dataKey: Buffer, request: KeyRequest): Promise<WrappedKey> {
    const entry = await this.#call("wrap", target, () => target.wrap(dataKey, request));
    checkReturnedEntry(entry, target);
    return entry;
  }

  /** `target`'s native rewrap of `source` (no data key here); the entry is checked. */
  async nativeRewrap(
    target: KeyProvider & NativeRewrap,
    source: WrappedKey,
    request: KeyRequest,
  ): Promise<WrappedKey> {
    const entry = await this.#call("wrap", target, () => target.rewrap(source, request), {
      native: true,
    });
    checkReturnedEntry(entry, target);
    return entry;
  }

  /**
   * Finds a configured provider for some entry, gets its data key, checks commitment, opens.
   * `bulk`: a bulk read's open (decryptMany), which gates its KMS calls, may hold its
   * group's key, and is told when an unwrap put the key in the cache, but only for a value
   * with one candidate entry: one with more could go on to unwrap another entry (see
   * decryptGrouped). A value opened with a held key or a key its group loaded keeps no
   * message key; one whose data key was cached before does, as `decrypt` would.
   */
  async open(
    parts: EnvelopeParts,
    request: KeyRequest,
    aad: Uint8Array,
    report: (used: OpenedBy) => void,
    bulk?: BulkOpen,
  ): Promise<Buffer> {
    const cache = this.#cache;
    const remembered = cache ? openRemembered(cache, parts, request, aad, report) : undefined;
    if (remembered) return remembered;
    // Listed once, cache keys built once: the cached-key peek and the cold path share them.
    const pairs = this.#candidates(parts);
    const keys = cache ? cacheKeysOf(pairs, request) : undefined;
    const one = pairs.length === 1;
    const held = one ? openHeld(bulk?.held, pairs[0], keys?.[0], parts, aad, report) : undefined;
    if (held) return held;
    const warm =
      cache && keys
        ? openCached(cache, pairs, keys, parts, request, aad, report, bulk?.loaded)
        : undefined;
    if (warm) return warm;
    const now = openNow(this.#audit, pairs, parts, request, aad, report);
    if (now) return now;
    // With more than one candidate the hook is withheld: the value could go on to unwrap
    // another entry while the lane's next call is out.
    const hooked = bulk && !one ? { gate: bulk.gate, loaded: bulk.loaded } : bulk;
    const found = await this.#firstDataKey(pairs, keys, parts, request, hooked);
    found.dataKey.fill(0);
    report({ provider: found.provider, keyRef: found.entry.keyRef, cacheHit: found.cacheHit });
    return openAndZero(found.encryptionKey, parts.body, aad);
  }

  /**
   * The data key of an envelope from the first entry a configured provider can unwrap
   * (through the unwrap cache unless the provider opts out), commitment-checked, with the
   * message key derived on the way. The caller zeroes `dataKey` and `encryptionKey`.
   */
  verifiedDataKey(parts: EnvelopeParts, request: KeyRequest): Promise<VerifiedDataKey> {
    return this.#firstDataKey(this.#candidates(parts), undefined, parts, request);
  }

  async #firstDataKey(
    pairs: readonly [WrappedKey, KeyProvider][],
    keys: readonly (string | undefined)[] | undefined,
    parts: EnvelopeParts,
    request: KeyRequest,
    bulk?: BulkOpen,
  ): Promise<VerifiedDataKey> {
    let failures: TriedEntry[] | undefined;
    for (let i = 0; i < pairs.length; i++) {
      // Indexing, not `const [entry, provider] = …`, and no object spread below: both
      // showed as self time of this loop in the cold-read profile (issue 15, item 2).
      const entry = pairs[i]![0];
      const provider = pairs[i]![1];
      try {
        const found = await this.#entryKey(provider, entry, parts, request, keys?.[i], bulk);
        const { dataKey, encryptionKey, cacheHit } = found;
        return { dataKey, encryptionKey, cacheHit, provider, entry };
      } catch (error) {
        if (!failures) failures = [];
        failures.push({ provider, entry, error: asEnvelopeError(error) });
      }
    }
    throw failures ? pickFailure(failures) : noMatchingKey(parts, this.decryptors);
  }

  /**
   * Whether `entry` opens to this envelope's data key (unwrap + key commitment), tried
   * with `preferred` and then the configured keys that handle it. False when it opens to
   * another key or no provider can unwrap it; with `strict`, the unwrap failure is thrown
   * instead (a native rewrap whose result cannot be checked must not be written).
   */
  async opensToCommitment(
    entry: WrappedKey,
    preferred: readonly KeyProvider[],
    parts: EnvelopeParts,
    request: KeyRequest,
    strict = false,
  ): Promise<boolean> {
    let failure: EnvelopeError | undefined;
    for (const provider of handlersOf(entry, [...preferred, ...this.decryptors])) {
      try {
        const found = await this.#entryKey(provider, entry, parts, request);
        found.dataKey.fill(0);
        found.encryptionKey.fill(0);
        return true;
      } catch (error) {
        const typed = asEnvelopeError(error);
        if (typed.code === "ENVELOPE_COMMITMENT_MISMATCH") return false;
        failure ??= typed;
      }
    }
    if (strict && failure) throw failure;
    return false;
  }

  /**
   * The proof of a native rewrap's entry that also yields its keys: unwrapped with the
   * target (then the configured keys that handle it) and checked against the key
   * commitment. Throws `nativeRewrapError` when it opens to another data key, and the
   * unwrap failure when no provider can open it (an unchecked entry must not be written).
   * The caller zeroes `dataKey` and `encryptionKey`.
   */
  async provenNativeEntry(
    entry: WrappedKey,
    target: KeyProvider,
    parts: EnvelopeParts,
    request: KeyRequest,
  ): Promise<{ dataKey: Buffer; encryptionKey: Buffer; entry: WrappedKey }> {
    let failure: EnvelopeError | undefined;
    for (const provider of handlersOf(entry, [target, ...this.decryptors])) {
      try {
        const found = await this.#entryKey(provider, entry, parts, request);
        return { dataKey: found.dataKey, encryptionKey: found.encryptionKey, entry };
      } catch (error) {
        const typed = asEnvelopeError(error);
        if (typed.code === "ENVELOPE_COMMITMENT_MISMATCH") throw nativeRewrapError(target, entry);
        failure ??= typed;
      }
    }
    throw failure ?? nativeRewrapError(target, entry);
  }

  #entryKey(
    provider: KeyProvider,
    entry: WrappedKey,
    parts: EnvelopeParts,
    request: KeyRequest,
    cacheKey?: string,
    bulk?: BulkOpen,
  ): Promise<EntryKey> {
    return entryKey(this.#cache, this.#audit, provider, entry, parts, request, cacheKey, bulk);
  }

  #candidates(parts: EnvelopeParts): [WrappedKey, KeyProvider][] {
    return candidates(parts, this.decryptors, this.#maxEntriesTried);
  }

  /** A wrap-side provider call, audited; an untyped failure must not escape untyped. */
  async #call<T>(
    operation: AuditEvent["operation"],
    provider: KeyProvider,
    call: () => Promise<T>,
    extra: Partial<AuditEvent> = {},
  ): Promise<T> {
    try {
      return await this.#audit.timed(operation, provider, call, extra);
    } catch (error) {
      throw wrapFailure(error, provider);
    }
  }
}
