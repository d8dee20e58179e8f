import type {
  DataKeyGeneration,
  KeyProvider,
  KeyRefresh,
  KmsContextBinding,
  LocalUnwrap,
  NativeRewrap,
  ReadinessDelegation,
} from "./types.js";

// Type guards for the optional abilities of a provider. The core asks these instead of
// probing members ad hoc, so "what a provider can do" is decided in one place.

/**
 * True when the provider generates data keys itself (one KMS call instead of two).
 *
 * @example
 * if (supportsDataKeyGeneration(provider)) await provider.generateDataKey({ context });
 */
export function supportsDataKeyGeneration(
  provider: KeyProvider,
): provider is KeyProvider & DataKeyGeneration {
  return typeof provider.generateDataKey === "function";
}

/**
 * True when the provider rewraps inside its KMS (the data key never reaches this process).
 *
 * @example
 * if (supportsNativeRewrap(target)) entry = await target.rewrap(entry, { context });
 */
export function supportsNativeRewrap(
  provider: KeyProvider,
): provider is KeyProvider & NativeRewrap {
  return typeof provider.rewrap === "function";
}

/**
 * True when the provider sends (part of) the context to its KMS.
 *
 * @example
 * const kms = bindsKmsContext(provider) ? provider.kmsContextKey(context) : "";
 */
export function bindsKmsContext(
  provider: KeyProvider,
): provider is KeyProvider & KmsContextBinding {
  return typeof provider.kmsContextKey === "function";
}

/**
 * True when the provider can re-read its current key version (`envelope.refreshKeys()`).
 *
 * @example
 * if (supportsRefresh(provider)) await provider.refresh();
 */
export function supportsRefresh(provider: KeyProvider): provider is KeyProvider & KeyRefresh {
  return typeof provider.refresh === "function";
}

/**
 * True when the provider can give some data keys at once, without I/O (`unwrapNow`).
 *
 * @example
 * const key = unwrapsLocally(provider) ? provider.unwrapNow(entry, { context }) : undefined;
 */
export function unwrapsLocally(provider: KeyProvider): provider is KeyProvider & LocalUnwrap {
  return typeof provider.unwrapNow === "function";
}

/**
 * True when a readiness check exercises other providers in this one's place
 * (`readinessTargets`: hierarchical mode's master).
 *
 * @example
 * const checked = delegatesReadiness(provider) ? provider.readinessTargets().master : provider;
 */
export function delegatesReadiness(
  provider: KeyProvider,
): provider is KeyProvider & ReadinessDelegation {
  return typeof provider.readinessTargets === "function";
}

/** The KMS-bound part of `context` for `provider`, or "" when it binds none. */
export function kmsContextKeyOf(
  provider: KeyProvider,
  context: Parameters<KmsContextBinding["kmsContextKey"]>[0],
): string {
  return bindsKmsContext(provider) ? provider.kmsContextKey(context) : "";
}

/** Names of the capabilities a provider has, for diagnostics and the conformance suite. */
export function providerCapabilities(provider: KeyProvider): string[] {
  return [
    supportsDataKeyGeneration(provider) ? "dataKeyGeneration" : "",
    supportsNativeRewrap(provider) ? "nativeRewrap" : "",
    bindsKmsContext(provider) ? "kmsContextBinding" : "",
    supportsRefresh(provider) ? "refresh" : "",
    unwrapsLocally(provider) ? "localUnwrap" : "",
    delegatesReadiness(provider) ? "readinessDelegation" : "",
  ].filter(Boolean);
}

// Providers whose unwrap is a local derivation cheaper than a cache entry (hierarchical
// mode: one HMAC with an intermediate key that provider already caches). Caching their data
// keys would only hold more secrets in memory and push useful entries out.
const LOCALLY_DERIVED = new Set(["hierarchical"]);

/**
 * Core policy: whether the unwrap cache holds the data keys this provider unwraps. Yes for
 * every provider whose unwrap costs a KMS call or a private-key operation; no for the
 * hierarchical provider. The deprecated `skipUnwrapCache` flag is still honoured.
 */
export function cachesUnwrap(provider: KeyProvider): boolean {
  return provider.skipUnwrapCache !== true && !LOCALLY_DERIVED.has(provider.id);
}
