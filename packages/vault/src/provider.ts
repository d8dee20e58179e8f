import { inspect } from "node:util";
import {
  ConfigError,
  type EncryptionContext,
  type GeneratedDataKey,
  type KeyProvider,
  type KeyRequest,
  ProviderError,
  type WrappedKey,
} from "@envelope/core";
import { TokenSource } from "./auth.js";
import { createNodeVaultClient } from "./client.js";
import { transitContext } from "./context.js";
import type { FailureHint } from "./errors.js";
import { entryCiphertext, formatKeyRef, PROVIDER_ID, parseKeyRef } from "./key-ref.js";
import { resolveOptions, type VaultTransitOptions } from "./options.js";
import { contract, PLAIN, transit } from "./transit.js";

export type { VaultTransitOptions } from "./options.js";

/** What Vault says about the key (from GET `<mount>/keys/<name>`). */
export interface VaultKeyInfo {
  latestVersion: number;
  minDecryptionVersion: number;
  derived: boolean;
}

/** A Vault transit KeyProvider, plus key metadata helpers. */
export interface VaultTransitProvider extends KeyProvider {
  /**
   * `<mount>/keys/<name>@v<N>` with N the latest key version this provider knows: from
   * `init()` / `refresh()`, and raised by every datakey / encrypt / rewrap answer. Before
   * any of those it is `<mount>/keys/<name>` (no version).
   */
  readonly keyRef: string;
  /** Reads the key once (latest version, derived flag). The factory calls it. */
  init(): Promise<void>;
  /** Re-reads the key, e.g. after `vault write -f <mount>/keys/<name>/rotate`, before a rewrap run. */
  refresh(): Promise<VaultKeyInfo>;
}

/**
 * HashiCorp Vault transit as a master-key provider, on node-vault. New data keys come
 * from `datakey/plaintext` (one call), further wraps from `encrypt`, unwraps from
 * `decrypt`, and rewrap from `rewrap` inside Vault (the data key never reaches this
 * process). Entries: keyRef `<mount>/keys/<name>@v<N>`, wrapped bytes = the ASCII
 * `vault:vN:…` ciphertext.
 *
 * @example
 * const provider = vaultTransitProvider({
 *   address: "https://vault.internal:8200",
 *   keyName: "pii",
 *   auth: { approle: { roleId: process.env.VAULT_ROLE_ID!, secretId: process.env.VAULT_SECRET_ID! } },
 *   tls: { ca: readFileSync("/etc/vault/ca.pem") },
 * });
 * await provider.init();
 * const envelope = new Envelope({ encrypt: provider });
 */
export function vaultTransitProvider(options: VaultTransitOptions): VaultTransitProvider {
  const { mount, name, namespace, mapping, timeoutMs, retry } = resolveOptions(options);
  const client = options.client ?? createNodeVaultClient(options.address!, options.tls);
  const auth = new TokenSource(options.auth, client, namespace, Date.now, `${mount}/keys/${name}`);
  const address = options.address ?? "(injected client)";

  let latest: number | undefined;
  let derived = options.derived;
  let reading: Promise<VaultKeyInfo> | undefined;

  const keyRef = () =>
    formatKeyRef(latest === undefined ? { mount, name } : { mount, name, version: latest });
  const vault = transit({
    client,
    auth,
    mount,
    name,
    timeoutMs,
    retry,
    noteVersion: (version) => {
      if (latest === undefined || version > latest) latest = version;
    },
  });
  const unwrapping = (): FailureHint => ({
    unwrapping: true,
    derivedWithContext: derived === true,
  });

  async function readKey(): Promise<VaultKeyInfo> {
    const body = await vault.read("read key", keyRef(), `keys/${name}`);
    const data = (body as { data?: Record<string, unknown> } | undefined)?.data;
    const version = data?.latest_version;
    if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 1) {
      throw contract(`GET ${mount}/keys/${name} returned no latest_version`);
    }
    if (data?.supports_encryption === false) {
      // A signing or HMAC-only key (ed25519, ecdsa-*, hmac): every wrap would fail in Vault.
      const type = typeof data.type === "string" ? data.type.slice(0, 40) : "unknown";
      throw new ConfigError(
        "ENVELOPE_BAD_KEY",
        `vault-transit: key ${mount}/keys/${name} is of type "${type}", which cannot encrypt, so it cannot wrap data keys. Point keyName at an encryption key (e.g. vault write -f ${mount}/keys/<name> type=aes256-gcm96).`,
        { details: { provider: PROVIDER_ID, keyRef: keyRef(), type } },
      );
    }
    if (latest === undefined || version > latest) latest = version;
    derived = data?.derived === true;
    const min = typeof data?.min_decryption_version === "number" ? data.min_decryption_version : 1;
    return { latestVersion: version, minDecryptionVersion: min, derived };
  }

  function refresh(): Promise<VaultKeyInfo> {
    reading ??= readKey().finally(() => {
      reading = undefined;
    });
    return reading;
  }

  async function contextFields(request: KeyRequest): Promise<{ context?: string }> {
    if (derived === undefined) await refresh();
    return derived ? { context: transitContext(mapping, request?.context ?? {}) } : {};
  }

  function checkHandled(entry: WrappedKey): void {
    if (!provider.handles(entry)) {
      throw new ProviderError(
        "ENVELOPE_PROVIDER_CONTRACT",
        `${PROVIDER_ID} (${mount}/keys/${name}) was asked to open an entry of "${entry.providerId}:${entry.keyRef}", which it does not handle.`,
        { details: { provider: PROVIDER_ID, keyRef: entry.keyRef } },
      );
    }
  }

  const provider: VaultTransitProvider & { toJSON(): object; [inspect.custom](): string } = {
    id: PROVIDER_ID,
    get keyRef() {
      return keyRef();
    },
    handles(entry) {
      if (entry.providerId !== PROVIDER_ID) return false;
      const ref = parseKeyRef(entry.keyRef);
      return ref !== undefined && ref.mount === mount && ref.name === name;
    },
    async init() {
      await refresh();
    },
    refresh,
    async generateDataKey(request): Promise<GeneratedDataKey> {
      const ctx = await contextFields(request);
      const body = await vault.write("datakey", keyRef(), PLAIN, "datakey/plaintext", {
        bits: 256,
        ...ctx,
      });
      const entry = vault.toEntry(body, "datakey");
      return { dataKey: vault.plaintextKey(body, "datakey"), entry };
    },
    async wrap(dataKey, request) {
      const ctx = await contextFields(request);
      const plaintext = Buffer.from(dataKey.buffer, dataKey.byteOffset, dataKey.length).toString(
        "base64",
      );
      const body = await vault.write("encrypt", keyRef(), PLAIN, "encrypt", { plaintext, ...ctx });
      return vault.toEntry(body, "encrypt");
    },
    async unwrap(entry, request) {
      checkHandled(entry);
      const { ciphertext } = entryCiphertext(entry.wrapped, entry.keyRef);
      const ctx = await contextFields(request);
      const body = await vault.write("decrypt", entry.keyRef, unwrapping(), "decrypt", {
        ciphertext,
        ...ctx,
      });
      return vault.plaintextKey(body, "decrypt");
    },
    async rewrap(entry, request) {
      checkHandled(entry);
      const { ciphertext } = entryCiphertext(entry.wrapped, entry.keyRef);
      const ctx = await contextFields(request);
      const body = await vault.write("rewrap", entry.keyRef, unwrapping(), "rewrap", {
        ciphertext,
        ...ctx,
      });
      return vault.toEntry(body, "rewrap");
    },
    kmsContextKey(context: EncryptionContext) {
      // Must not change over the provider's life (it keys the unwrap cache), so it follows the
      // configured `derived`, not what a later key read learns. Extra specificity costs no hits:
      // one envelope is always opened with one context.
      return options.derived === false ? "" : transitContext(mapping, context);
    },
    toJSON: () => ({
      provider: PROVIDER_ID,
      address,
      namespace,
      keyRef: keyRef(),
      ...auth.toJSON(),
    }),
    [inspect.custom]: () =>
      `VaultTransitProvider { address: '${address}', keyRef: '${keyRef()}'${namespace ? `, namespace: '${namespace}'` : ""} }`,
  };
  return provider;
}
