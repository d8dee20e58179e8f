import { ConfigError, checkRetryOptions, type RetryOptions } from "@envelope/core";
import type { VaultAuth } from "./auth.js";
import type { VaultClient, VaultTlsOptions } from "./client.js";
import { type ContextMapping, checkMapping } from "./context.js";
import { isKeyName, isMountPath, PROVIDER_ID } from "./key-ref.js";

export interface VaultTransitOptions {
  /** Vault address, e.g. `https://vault.example.com:8200` (VAULT_ADDR). Required unless `client` is given. */
  address?: string;
  /** Transit mount path. Default `transit`. */
  mount?: string;
  /** Name of the transit key (type aes256-gcm96 recommended). */
  keyName: string;
  /** Vault Enterprise / HCP namespace, sent as X-Vault-Namespace (VAULT_NAMESPACE). */
  namespace?: string;
  /** `{ token, renew? }` or `{ approle: { roleId, secretId, mount? } }`. Required unless `client` carries a token. */
  auth?: VaultAuth;
  /** CA, client certificate and key for HTTPS / mTLS. */
  tls?: VaultTlsOptions;
  /**
   * Whether the key is derived (created with derived=true). Default: read from Vault on
   * first use (needs read on `<mount>/keys/<name>`); set it to skip that read.
   */
  derived?: boolean;
  /** Context fields sent to Vault for a derived key: "all" (default), "none", or a list. */
  kmsContext?: ContextMapping;
  /** @deprecated Use `kmsContext` (the name every provider uses); same meaning. */
  context?: ContextMapping;
  /** Your own client (node-vault instance or the narrow VaultClient interface). */
  client?: VaultClient;
  /**
   * Bounded retries of throttling (429), 5xx / sealed, network errors and timeouts, and
   * the per-attempt `timeoutMs` (default 10000).
   */
  retry?: RetryOptions;
  /** @deprecated Use `retry.timeoutMs` (the name every provider uses); same meaning. */
  timeoutMs?: number;
}

/** Option fields of `{ provider: "vault-transit", … }` config objects. */
export const OPTION_FIELDS = [
  "address",
  "mount",
  "keyName",
  "namespace",
  "auth",
  "tls",
  "derived",
  "kmsContext",
  "client",
  "retry",
  "lookup",
] as const;

export interface ResolvedVaultOptions {
  mount: string;
  name: string;
  namespace: string | undefined;
  mapping: ContextMapping;
  timeoutMs: number;
  retry: RetryOptions;
}

/** Checks the options up front; every error names the field and the fix. */
export function resolveOptions(options: VaultTransitOptions): ResolvedVaultOptions {
  needsConfig(typeof options === "object" && options !== null, "options", "options are required");
  const mount = (options.mount ?? "transit").replace(/^\/+|\/+$/g, "");
  const name = options.keyName;
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
    "give address (https://host:8200, or VAULT_ADDR) or client",
  );
  needsConfig(
    options.client !== undefined || options.auth !== undefined,
    "auth",
    "give auth: { token } or { approle: { roleId, secretId } }",
  );
  needsConfig(
    options.context === undefined || options.kmsContext === undefined,
    "kmsContext",
    "give kmsContext or its deprecated alias context, not both",
  );
  needsConfig(
    options.timeoutMs === undefined || options.retry?.timeoutMs === undefined,
    "retry.timeoutMs",
    "give retry.timeoutMs or its deprecated alias timeoutMs, not both",
  );
  const retry = checkRetryOptions(
    {
      ...options.retry,
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    },
    PROVIDER_ID,
  );
  return {
    mount,
    name,
    namespace: options.namespace?.replace(/^\/+|\/+$/g, "") || undefined,
    mapping: checkMapping(options.kmsContext ?? options.context),
    timeoutMs: retry.timeoutMs ?? 10_000,
    retry,
  };
}

export function needsConfig(condition: unknown, field: string, message: string): asserts condition {
  if (!condition) {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", `${PROVIDER_ID}: ${message}.`, {
      details: { field },
    });
  }
}
