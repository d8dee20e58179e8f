import type { EncryptionContext } from "../crypto/context.js";
import type { WrappedKey } from "../format/envelope.js";

/** What every provider call receives: the caller's full encryption context. */
export interface KeyRequest {
  /**
   * The caller's encryption context. A provider that can bind context at the KMS (AWS
   * EncryptionContext, say) maps it; others ignore it (the body's AAD binds it anyway).
   */
  readonly context: EncryptionContext;
}

/** A fresh data key and its first wrapped copy, from one KMS call where possible. */
export interface GeneratedDataKey {
  /** 32 random bytes. The core zeroes it after use. */
  readonly dataKey: Uint8Array;
  readonly entry: WrappedKey;
  /**
   * `0x03`: seal values under this key as suite 0x03 (one-step SHA-512 KDF, FORMAT.md §15)
   * instead of 0x01. Only for providers whose users opted in: readers older than suite
   * 0x03 refuse such values. Ignored when the writer signs (suite 0x02).
   */
  readonly suite?: number;
}

/**
 * A master-key provider: the one interface a KMS implements. Five required members, on
 * purpose; a new KMS is one file. What a KMS can do beyond wrap and unwrap is a named
 * capability (`DataKeyGeneration`, `NativeRewrap`, `KmsContextBinding`, `KeyRefresh`,
 * `LocalUnwrap`)
 * that the core detects with a type guard (`supportsNativeRewrap(provider)`, …). The core
 * checks every result (lengths, ids, limits), so a provider bug becomes a typed error,
 * never a wrong plaintext.
 *
 * @example
 * const provider: KeyProvider = {
 *   id: "my-kms", keyRef: "key-1",
 *   handles: (e) => e.providerId === "my-kms",
 *   wrap: async (dataKey) => ({ providerId: "my-kms", keyRef: "key-1", wrapped: await myKms.wrap(dataKey) }),
 *   unwrap: async (entry) => myKms.unwrap(entry.wrapped),
 * };
 */
export interface KeyProvider
  extends Partial<DataKeyGeneration>,
    Partial<NativeRewrap>,
    Partial<KmsContextBinding>,
    Partial<KeyRefresh>,
    Partial<LocalUnwrap>,
    Partial<ReadinessDelegation> {
  /** Provider id written into each entry: lowercase ASCII, e.g. `local-rsa`, `aws-kms`. */
  readonly id: string;
  /** Reference of the key new data keys are wrapped under (fingerprint, ARN, name/version). */
  readonly keyRef: string;
  /** Wraps a data key under `keyRef`. */
  wrap(dataKey: Uint8Array, request: KeyRequest): Promise<WrappedKey>;
  /** Unwraps an entry this provider `handles`. Returns the 32-byte data key. */
  unwrap(entry: WrappedKey, request: KeyRequest): Promise<Uint8Array>;
  /** True when this provider holds (or can reach) the key that wrapped `entry`. */
  handles(entry: WrappedKey): boolean;
  /**
   * @deprecated Whether a data key is cached is core policy now (see `cachesUnwrap`); the
   * flag is still honoured until the next minor version.
   */
  readonly skipUnwrapCache?: boolean;
}

/** Capability: generate and wrap a data key in one KMS call (AWS GenerateDataKey, Vault datakey). */
export interface DataKeyGeneration {
  generateDataKey(request: KeyRequest): Promise<GeneratedDataKey>;
}

/**
 * Capability: native rewrap. Re-protects `entry` (which this provider `handles`) under
 * this provider's current `keyRef` inside the KMS, so the data key never reaches this
 * process. Envelope unwraps the returned entry once (with `unwrap`, so the key needs
 * decrypt permission too) and checks it against the value's key commitment before any
 * old entry is dropped.
 */
export interface NativeRewrap {
  rewrap(entry: WrappedKey, request: KeyRequest): Promise<WrappedKey>;
}

/**
 * Capability: the provider binds (part of) the context at the KMS. `kmsContextKey`
 * returns that part, canonicalized; it becomes part of the unwrap-cache key and the
 * data-key-reuse key. It must not change over the provider's life.
 */
export interface KmsContextBinding {
  kmsContextKey(context: EncryptionContext): string;
}

/**
 * Capability: the data key of an entry at once, when the provider can have it without
 * I/O (hierarchical mode with the intermediate key cached: one HMAC). Returns undefined
 * when it cannot (the key is not at hand, or the entry is malformed); the core then calls
 * `unwrap`, which reports what went wrong. Lets a decrypt skip the promises of the unwrap
 * path, which cost more than such a derivation.
 */
export interface LocalUnwrap {
  unwrapNow(entry: WrappedKey, request: KeyRequest): Uint8Array | undefined;
}

/**
 * Capability: re-read the current key version from the KMS, so `keyRef` reflects a
 * rotation made elsewhere (Vault, Azure). `Envelope.refreshKeys()` calls it; batch
 * rewrap jobs call that once before they compare entries with the target key.
 */
export interface KeyRefresh {
  refresh(): Promise<unknown>;
}

/**
 * Capability: what a readiness check (`Envelope.check()`) exercises in this provider's
 * place, for a provider whose keys another provider wraps (hierarchical mode). A canary
 * through its own wrap would create and store an intermediate key, and once one is cached
 * its unwrap never reaches the master KMS: such a check would write to the key store and
 * report a dead master as ok.
 */
export interface ReadinessDelegation {
  readinessTargets(): ReadinessTargets;
}

export interface ReadinessTargets {
  /** Wraps and unwraps the canary, as it does this provider's own keys. */
  readonly master: KeyProvider;
  /** Older masters this provider still unwraps with: each is checked as a decrypt key. */
  readonly decrypt?: readonly KeyProvider[];
  /** Runs first: a read that changes nothing (the key store is reachable). */
  readonly probe?: () => Promise<unknown>;
}

/**
 * Builds providers of one URI scheme. Each provider package exports one, named
 * `providerFactory`, and the core loads it lazily when config names the scheme.
 */
export interface ProviderFactory {
  /** URI scheme without `://`, e.g. `local-rsa`. */
  readonly scheme: string;
  /** From a key URI such as `local-rsa:///run/secrets/enc_key.pem`. */
  fromUri(uri: string, env?: Readonly<Record<string, string | undefined>>): Promise<KeyProvider>;
  /**
   * From a config object `{ provider: "<scheme>", ...options }`. `env` is the environment
   * given to createEnvelope / envelopeFromEnv, for options that name env variables.
   */
  fromConfig(
    config: Readonly<Record<string, unknown>>,
    env?: Readonly<Record<string, string | undefined>>,
  ): Promise<KeyProvider>;
}
