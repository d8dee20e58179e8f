import { inspect } from "node:util";
import type { KeyVaultKey } from "@azure/keyvault-keys";
import {
  ConfigError,
  type KeyProvider,
  ProviderError,
  providerError,
  type RetryTarget,
  type WrappedKey,
  withRetry,
} from "@envelope/core";
import { algorithmFor, tagWrapped, untagWrapped } from "./algorithm.js";
import { AzureClients } from "./clients.js";
import { lazyDefaultCredential, sharedTokenRequests } from "./credential.js";
import { classify } from "./errors.js";
import { CurrentKey } from "./key-cache.js";
import { formatKeyId, type KeyId, sameKey, tryParseVersioned } from "./key-id.js";
import { localWrapKey, wrapLocally } from "./local-wrap.js";
import { type AzureKeyVaultOptions, resolveOptions } from "./options.js";

/** Provider id written into envelope entries (same as the URI scheme). */
export const PROVIDER_ID = "azure-kv";

/** An Azure Key Vault KeyProvider. `keyRef` is the full, versioned id of the current key once known. */
export interface AzureKeyVaultProvider extends KeyProvider {
  /** The configured key id (with or without a version). */
  readonly keyId: string;
  /**
   * Re-reads the current key now (after a rotation, instead of waiting `keyRefreshMs`) and
   * returns its versioned id, which becomes `keyRef`. `envelope.refreshKeys()` calls it.
   * Unlike the periodic re-read, it rejects with the typed error when Key Vault cannot be
   * read (throttled, unreachable, denied), so a rotation job never runs on a stale version
   * without knowing it.
   *
   * @example
   * await envelope.refreshKeys(); // after `az keyvault key rotate`
   * await envelope.rewrap(sealed, { context }); // now moves the value to the new version
   */
  refresh(): Promise<string>;
  /** @deprecated Use `refresh()` (what `envelope.refreshKeys()` calls); same behaviour. */
  refreshKey(): Promise<string>;
}

/**
 * Azure Key Vault / Managed HSM master keys on `@azure/keyvault-keys`. New data keys are
 * wrapped under the latest version of the key (or the pinned one): locally with the cached
 * public key for RSA keys (no network call), otherwise with Key Vault's wrapKey. Each entry
 * records the full versioned key id, and unwrap calls unwrapKey on exactly that version, so
 * data wrapped before a rotation still opens. Key Vault has no native rewrap: `rewrap`
 * unwraps and wraps again (the core does this; the body never changes).
 *
 * @example
 * const provider = azureKeyVaultProvider({
 *   keyId: "https://contoso.vault.azure.net/keys/pii-master",
 * }); // DefaultAzureCredential, RSA-OAEP-256, local wrap
 * const envelope = new Envelope({ encrypt: provider });
 */
export function azureKeyVaultProvider(options: AzureKeyVaultOptions): AzureKeyVaultProvider {
  const o = resolveOptions(options);
  const configured = o.keyId;
  const configuredId = formatKeyId(configured);
  const clients = new AzureClients(sharedTokenRequests(o.credential ?? lazyDefaultCredential()), {
    ...o.clientOptions,
    serviceVersion: o.serviceVersion,
    // Envelope's withRetry is the one bounded retry loop; see `retry` in the README.
    retryOptions: { maxRetries: 0 },
  });
  const target = (operation: string, keyRef: string): RetryTarget => ({
    provider: PROVIDER_ID,
    keyRef,
    operation,
  });

  const current = new CurrentKey(
    () =>
      withRetry(
        target("get key", configuredId),
        (signal) =>
          clients.keyClient(configured.vaultUrl).getKey(configured.name, {
            ...(configured.version ? { version: configured.version } : {}),
            abortSignal: signal,
          }),
        classify(target("get key", configuredId)),
        o.retry,
      ).then((key) => checkFetched(key, configured, configuredId)),
    o.keyRefreshMs,
  );

  const handles = (entry: WrappedKey): boolean => {
    if (entry.providerId !== PROVIDER_ID) return false;
    const id = tryParseVersioned(entry.keyRef);
    if (!id) return false;
    return (
      sameKey(id, configured) ||
      o.additional.some((a) => sameKey(a, id) && (!a.version || a.version === id.version))
    );
  };

  const provider: AzureKeyVaultProvider & { toJSON(): object; [inspect.custom](): string } = {
    id: PROVIDER_ID,
    keyId: configuredId,
    get keyRef() {
      return current.peek()?.id ?? configuredId;
    },
    handles,

    async wrap(dataKey) {
      const key = await current.get();
      const kid = key.id!;
      // A version the key read says is disabled is never wrapped under (locally or by Key
      // Vault, which may accept a wrapKey on it): the value could not be opened until the
      // version is enabled again.
      if (key.properties.enabled === false) throw disabledVersion(kid);
      // Key Vault refuses wrapKey outside the version's nbf/exp window (unwrap stays allowed),
      // so a remote wrap there is a wasted call whose 403 reads like a missing permission.
      const outside = outsideValidity(key, kid);
      if (outside) throw outside;
      // Unwrap is always Key Vault's unwrapKey, which it refuses when the key's own permitted
      // operations lack it: a value wrapped under such a key (locally via `encrypt`, or by a
      // wrapKey Key Vault accepts) could be written but never read back.
      const ops = key.keyOperations ?? key.key?.keyOps;
      if (ops && !ops.includes("unwrapKey")) throw cannotUnwrap(kid, ops);
      const algorithm = algorithmFor(key.keyType, o.algorithm, kid);
      if (o.localWrap) {
        const publicKey = localWrapKey(key);
        if (publicKey)
          return {
            providerId: PROVIDER_ID,
            keyRef: kid,
            wrapped: tagWrapped(algorithm, wrapLocally(publicKey, algorithm, dataKey)),
          };
      }
      const versioned = tryParseVersioned(kid)!;
      const t = target("wrap", kid);
      const result = await withRetry(
        t,
        (signal) => clients.crypto(versioned).wrapKey(algorithm, dataKey, { abortSignal: signal }),
        classify(t),
        o.retry,
      );
      return {
        providerId: PROVIDER_ID,
        keyRef: kid,
        wrapped: tagWrapped(algorithm, result.result),
      };
    },

    async unwrap(entry) {
      const id = tryParseVersioned(entry.keyRef);
      // The key reference comes from stored data: only ever send it (and a token) to a
      // vault and key this provider was configured for.
      if (!id || !handles(entry)) {
        throw new ProviderError(
          "ENVELOPE_KEY_NOT_FOUND",
          `azure-kv unwrap for key "${entry.keyRef.slice(0, 300)}" refused: it is not a versioned id of ${configuredId}${o.additional.length ? " or additionalKeyIds" : ""}. Add the key to additionalKeyIds if this data is yours.`,
          {
            details: {
              provider: PROVIDER_ID,
              keyRef: entry.keyRef.slice(0, 300),
              operation: "unwrap",
            },
          },
        );
      }
      const { algorithm, value } = untagWrapped(entry.wrapped, entry.keyRef);
      const t = target("unwrap", formatKeyId(id));
      const result = await withRetry(
        t,
        (signal) => clients.crypto(id).unwrapKey(algorithm, value, { abortSignal: signal }),
        classify(t),
        o.retry,
      );
      return result.result;
    },

    async refresh() {
      return (await current.reload()).id!;
    },

    refreshKey() {
      return provider.refresh();
    },

    toJSON: () => ({
      provider: PROVIDER_ID,
      keyId: configuredId,
      keyRef: provider.keyRef,
      algorithm: o.algorithm ?? "default",
      localWrap: o.localWrap,
      additionalKeyIds: o.additional.map(formatKeyId),
    }),
    [inspect.custom]: () =>
      `AzureKeyVaultProvider { keyRef: '${provider.keyRef}', localWrap: ${o.localWrap} }`,
  };
  return provider;
}

// A key read from Key Vault must be the configured key and carry a version, or every
// entry written under it would be unreadable later.
function checkFetched(key: KeyVaultKey, configured: KeyId, configuredId: string): KeyVaultKey {
  const id = key.id ? tryParseVersioned(key.id) : undefined;
  if (
    !id ||
    !sameKey(id, configured) ||
    (configured.version && id.version !== configured.version)
  ) {
    throw providerError(
      "ENVELOPE_PROVIDER_CONTRACT",
      { provider: PROVIDER_ID, keyRef: configuredId, operation: "get key" },
      `Key Vault returned key "${String(key.id).slice(0, 300)}", not a version of the configured key`,
      "Check the key id and any proxy between this process and the vault.",
    );
  }
  // Canonical form (lowercased host and version) so keyRef compares equal across calls.
  return { ...key, id: formatKeyId(id) };
}

function disabledVersion(kid: string): ProviderError {
  return new ProviderError(
    "ENVELOPE_KEY_DISABLED",
    `azure-kv: key version ${kid} is disabled in Key Vault; nothing was wrapped under it. Enable a version (or rotate to a new one) and call envelope.refreshKeys().`,
    { details: { provider: PROVIDER_ID, keyRef: kid, operation: "wrap" } },
  );
}

function outsideValidity(
  key: KeyVaultKey,
  kid: string,
  now = new Date(),
): ProviderError | undefined {
  const { notBefore, expiresOn } = key.properties;
  const problem =
    notBefore && now < notBefore
      ? `is not valid before ${notBefore.toISOString()} (its nbf)`
      : expiresOn && now >= expiresOn
        ? `expired at ${expiresOn.toISOString()} (its exp)`
        : undefined;
  if (!problem) return undefined;
  return new ProviderError(
    "ENVELOPE_KEY_DISABLED",
    `azure-kv: key version ${kid} ${problem}; Key Vault wraps nothing under it outside that window, so nothing was wrapped. Rotate the key to a new version (or change this version's activation / expiration date) and call envelope.refreshKeys(). Data already wrapped under it still decrypts.`,
    { details: { provider: PROVIDER_ID, keyRef: kid, operation: "wrap" } },
  );
}

function cannotUnwrap(kid: string, ops: readonly string[]): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_KEY",
    `azure-kv: key ${kid} permits only ${ops.join(", ") || "no operations"}; without unwrapKey Key Vault would refuse to unwrap anything wrapped under it, so nothing was wrapped. Allow wrapKey and unwrapKey on that key version (az keyvault key set-attributes --ops wrapKey unwrapKey) and call envelope.refreshKeys().`,
    { details: { keyRef: kid } },
  );
}
