import { inspect } from "node:util";
import {
  ConfigError,
  type EncryptionContext,
  type GeneratedDataKey,
  type KeyProvider,
  type KeyRequest,
  ProviderError,
  type RetryOptions,
  type RetryTarget,
  type WrappedKey,
  withRetry,
} from "@envelope/core";
import { TokenSource, type VaultAuth } from "./auth.js";
import {
  createNodeVaultClient,
  type VaultClient,
  type VaultRequestOptions,
  type VaultTlsOptions,
} from "./client.js";
import { type ContextMapping, checkMapping, transitContext } from "./context.js";
import { classifyVaultError, describeFailure, type FailureHint } from "./errors.js";
import {
  ciphertextVersion,
  entryCiphertext,
  formatKeyRef,
  isKeyName,
  isMountPath,
  PROVIDER_ID,
  parseKeyRef,
} from "./key-ref.js";

export interface VaultTransitOptions {
  /** Vault address, e.g. `https://vault.example.com:8200` (VAULT_ADDR). Required unless `client` is given. */
  address?: string;
  /** Transit mount path. Default `transit`. */
  mount?: string;
  /** Name of the transit key (type aes256-gcm96 recommended). */
  keyName: string;
  /** Vault Enterprise / HCP namespace, sent as X-Vault-Namespace (VAULT_NAMESPACE). */
  namespace?: string;
  /** `{ token }` or `{ approle: { roleId, secretId, mount? } }`. Required unless `client` carries a token. */
  auth?: VaultAuth;
  /** CA, client certificate and key for HTTPS / mTLS. */
  tls?: VaultTlsOptions;
  /**
   * Whether the key is derived (created with derived=true). Default: read from Vault on
   * first use (needs read on `<mount>/keys/<name>`); set it to skip that read.
   */
  derived?: boolean;
  /** Context fields sent to Vault for a derived key: "all" (default), "none", or a list. */
  context?: ContextMapping;
  /** Your own client (node-vault instance or the narrow VaultClient interface). */
  client?: VaultClient;
  /** Per-attempt timeout in ms. Default 10000. */
  timeoutMs?: number;
  /** Bounded retries of throttling (429), 5xx / sealed, network errors and timeouts. */
  retry?: Omit<RetryOptions, "timeoutMs">;
}

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
  const mount = (options?.mount ?? "transit").replace(/^\/+|\/+$/g, "");
  const name = options?.keyName;
  needsConfig(
    isMountPath(mount),
    "mount",
    `mount "${mount}" is not a mount path such as transit or team-a/transit`,
  );
  needsConfig(
    typeof name === "string" && isKeyName(name),
    "keyName",
    "keyName must be a transit key name (letters, digits, _ . - @)",
  );
  needsConfig(
    options.client !== undefined || typeof options.address === "string",
    "address",
    "give address (https://host:8200) or client",
  );
  needsConfig(
    options.client !== undefined || options.auth !== undefined,
    "auth",
    "give auth: { token } or { approle: { roleId, secretId } }",
  );
  const timeoutMs = options.timeoutMs ?? 10_000;
  needsConfig(
    Number.isSafeInteger(timeoutMs) && timeoutMs > 0,
    "timeoutMs",
    "timeoutMs must be a positive integer of milliseconds",
  );
  const namespace = options.namespace?.replace(/^\/+|\/+$/g, "") || undefined;
  const mapping = checkMapping(options.context);
  const client = options.client ?? createNodeVaultClient(options.address!, options.tls);
  const auth = new TokenSource(options.auth, client, namespace);
  const retry: RetryOptions = { ...options.retry, timeoutMs };
  const address = options.address ?? "(injected client)";

  let latest: number | undefined;
  let derived = options.derived;
  let reading: Promise<VaultKeyInfo> | undefined;

  const keyRef = () =>
    formatKeyRef(latest === undefined ? { mount, name } : { mount, name, version: latest });
  const noteVersion = (version: number) => {
    if (latest === undefined || version > latest) latest = version;
  };

  /** One Vault call: token, timeout, bounded retries, typed errors; one re-login after a 403 with AppRole. */
  async function call(
    operation: string,
    ref: string,
    hint: FailureHint,
    fn: (o: VaultRequestOptions) => Promise<unknown>,
  ) {
    const target: RetryTarget = { provider: PROVIDER_ID, keyRef: ref, operation };
    return withRetry(
      target,
      async () => {
        const headers = await auth.headers(timeoutMs);
        try {
          return await fn({ headers, timeout: timeoutMs });
        } catch (error) {
          if (!auth.canRelogin || describeFailure(error).status !== 403) throw error;
          auth.invalidate(headers["X-Vault-Token"]);
          return await fn({ headers: await auth.headers(timeoutMs), timeout: timeoutMs });
        }
      },
      (error) => classifyVaultError(error, target, hint),
      retry,
    );
  }

  const plain: FailureHint = { unwrapping: false, derivedWithContext: false };
  const unwrapping = (): FailureHint => ({
    unwrapping: true,
    derivedWithContext: derived === true,
  });

  async function readKey(): Promise<VaultKeyInfo> {
    const body = await call("read key", keyRef(), plain, (o) =>
      client.read(`${mount}/keys/${name}`, o),
    );
    const data = (body as { data?: Record<string, unknown> } | undefined)?.data;
    const version = data?.latest_version;
    if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 1) {
      throw contract(`GET ${mount}/keys/${name} returned no latest_version`);
    }
    noteVersion(version);
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

  function toEntry(body: unknown, operation: string): WrappedKey {
    const ciphertext = (body as { data?: { ciphertext?: unknown } } | undefined)?.data?.ciphertext;
    const version = typeof ciphertext === "string" ? ciphertextVersion(ciphertext) : undefined;
    if (typeof ciphertext !== "string" || version === undefined)
      throw contract(`${operation} returned no vault:vN: ciphertext`);
    noteVersion(version);
    return {
      providerId: PROVIDER_ID,
      keyRef: formatKeyRef({ mount, name, version }),
      wrapped: Buffer.from(ciphertext, "latin1"),
    };
  }

  function plaintextKey(body: unknown, operation: string): Buffer {
    const plaintext = (body as { data?: { plaintext?: unknown } } | undefined)?.data?.plaintext;
    if (typeof plaintext !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(plaintext)) {
      throw contract(`${operation} returned no base64 plaintext`);
    }
    return Buffer.from(plaintext, "base64");
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
      const body = await call("datakey", keyRef(), plain, (o) =>
        client.write(`${mount}/datakey/plaintext/${name}`, { bits: 256, ...ctx }, o),
      );
      const entry = toEntry(body, "datakey");
      return { dataKey: plaintextKey(body, "datakey"), entry };
    },
    async wrap(dataKey, request) {
      const ctx = await contextFields(request);
      const plaintext = Buffer.from(dataKey.buffer, dataKey.byteOffset, dataKey.length).toString(
        "base64",
      );
      const body = await call("encrypt", keyRef(), plain, (o) =>
        client.write(`${mount}/encrypt/${name}`, { plaintext, ...ctx }, o),
      );
      return toEntry(body, "encrypt");
    },
    async unwrap(entry, request) {
      checkHandled(entry);
      const { ciphertext } = entryCiphertext(entry.wrapped, entry.keyRef);
      const ctx = await contextFields(request);
      const body = await call("decrypt", entry.keyRef, unwrapping(), (o) =>
        client.write(`${mount}/decrypt/${name}`, { ciphertext, ...ctx }, o),
      );
      return plaintextKey(body, "decrypt");
    },
    async rewrap(entry, request) {
      checkHandled(entry);
      const { ciphertext } = entryCiphertext(entry.wrapped, entry.keyRef);
      const ctx = await contextFields(request);
      const body = await call("rewrap", entry.keyRef, unwrapping(), (o) =>
        client.write(`${mount}/rewrap/${name}`, { ciphertext, ...ctx }, o),
      );
      return toEntry(body, "rewrap");
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

function needsConfig(condition: unknown, field: string, message: string): asserts condition {
  if (!condition) {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", `${PROVIDER_ID}: ${message}.`, {
      details: { field },
    });
  }
}

function contract(problem: string): ProviderError {
  return new ProviderError(
    "ENVELOPE_KMS_ERROR",
    `${PROVIDER_ID}: Vault's answer was not what the transit API returns (${problem}). Check that the address and mount point at a Vault transit engine.`,
    { details: { provider: PROVIDER_ID } },
  );
}
