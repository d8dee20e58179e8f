import { ConfigError, ProviderError } from "@envelope/core";
import { secretFromText } from "@envelope/core/internal";

/** The narrow part of a node-vault client this package calls. */
export interface VaultKvClient {
  read(path: string, requestOptions?: { headers: Record<string, string> }): Promise<unknown>;
}

export interface VaultKvSource {
  /** Vault address (default VAULT_ADDR). */
  address?: string;
  /** Vault token (default VAULT_TOKEN). Sent as X-Vault-Token, never logged. */
  token?: string;
  /** Enterprise namespace (default VAULT_NAMESPACE). */
  namespace?: string;
  /** The KV v2 mount. Default `secret`. */
  mount?: string;
  /** The secret's path under the mount, e.g. `app/legacy`. */
  path: string;
  /** The key of the secret's data map holding the legacy key. */
  field: string;
  /** A version number (default: the latest). */
  version?: number;
  /** Your own node-vault client (TLS options, proxies); created from `address` otherwise. */
  client?: VaultKvClient;
}

export const describeVaultSecret = (s: VaultKvSource) =>
  `Vault KV secret ${(s.mount ?? "secret").slice(0, 100)}/${s.path.slice(0, 200)}#${s.field.slice(0, 100)}${s.version ? ` version ${s.version}` : ""}`;

async function nodeVault(address: string): Promise<VaultKvClient> {
  let mod: { default?: unknown };
  try {
    mod = (await import("node-vault")) as { default?: unknown };
  } catch (cause) {
    throw new ConfigError(
      "ENVELOPE_PROVIDER_NOT_INSTALLED",
      "Reading a legacy key from Vault KV needs node-vault: npm install node-vault",
      { cause },
    );
  }
  const factory = (mod.default ?? mod) as (o: Record<string, unknown>) => VaultKvClient & {
    token?: string;
    namespace?: string;
  };
  // debug off: node-vault's DEBUG output would print response bodies (the secret).
  // strictSSL always explicit: node-vault would otherwise turn certificate checks off when
  // VAULT_SKIP_VERIFY is set, as @envelope/vault deliberately does not (pass `client` for
  // a CA bundle or mTLS).
  const client = factory({
    apiVersion: "v1",
    endpoint: address.replace(/\/+$/, ""),
    requestOptions: { strictSSL: true },
    debug: () => {},
  });
  // node-vault would pick VAULT_TOKEN / VAULT_NAMESPACE up by itself; we send both per request.
  client.token = "";
  client.namespace = undefined;
  return client;
}

/**
 * Reads one field of a KV version 2 secret (`GET /v1/<mount>/data/<path>?version=N`;
 * policy: `read` on `<mount>/data/<path>`). Returns the field's UTF-8 bytes.
 */
export async function readVaultKvSecret(
  source: VaultKvSource,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<Buffer> {
  const where = describeVaultSecret(source);
  const address = source.address ?? env.VAULT_ADDR;
  const token = source.token ?? env.VAULT_TOKEN;
  const namespace = source.namespace ?? env.VAULT_NAMESPACE;
  if (!source.client && !address)
    throw new ConfigError("ENVELOPE_BAD_CONFIG", `${where}: set VAULT_ADDR (or pass address).`, {
      details: { field: "address" },
    });
  if (!token)
    throw new ConfigError("ENVELOPE_BAD_CONFIG", `${where}: set VAULT_TOKEN (or pass token).`, {
      details: { field: "token" },
    });
  if (source.version !== undefined && (!Number.isInteger(source.version) || source.version < 1))
    throw new ConfigError("ENVELOPE_BAD_CONFIG", `${where}: version must be a positive integer.`);
  const client = source.client ?? (await nodeVault(address!));
  const mount = (source.mount ?? "secret").replace(/^\/+|\/+$/g, "");
  const path = source.path.replace(/^\/+/, "");
  const query = source.version ? `?version=${source.version}` : "";
  let body: unknown;
  try {
    body = await client.read(`${mount}/data/${path}${query}`, {
      headers: { "X-Vault-Token": token, ...(namespace ? { "X-Vault-Namespace": namespace } : {}) },
    });
  } catch (error) {
    throw mapVaultError(error, where);
  }
  const data = (body as { data?: { data?: Record<string, unknown> | null } } | null)?.data?.data;
  const value = data?.[source.field];
  if (typeof value !== "string" || value.length === 0)
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      `${where}: the secret has no non-empty string field "${source.field}".`,
      {
        details: { field: source.field },
      },
    );
  return secretFromText(value, "utf8");
}

function mapVaultError(error: unknown, where: string): ProviderError {
  const e = error as { response?: { statusCode?: number; status?: number } };
  const status = e?.response?.statusCode ?? e?.response?.status;
  const code =
    status === 404
      ? "ENVELOPE_KEY_NOT_FOUND"
      : status === 403 || status === 401
        ? "ENVELOPE_KMS_ACCESS_DENIED"
        : status === 429
          ? "ENVELOPE_KMS_THROTTLED"
          : "ENVELOPE_KMS_UNAVAILABLE";
  const advice: Record<string, string> = {
    ENVELOPE_KEY_NOT_FOUND:
      "Check the mount, path and version (a deleted or destroyed version cannot be read; a KV v1 mount is not supported).",
    ENVELOPE_KMS_ACCESS_DENIED:
      "Check VAULT_TOKEN, VAULT_NAMESPACE and that its policy allows read on <mount>/data/<path>.",
    ENVELOPE_KMS_THROTTLED: "Vault's rate limit quota was hit; try again later.",
    ENVELOPE_KMS_UNAVAILABLE: "Check VAULT_ADDR and that Vault is reachable and unsealed.",
  };
  const cause = Object.assign(
    new Error(`Vault answered ${status ?? "no HTTP status"}`),
    status ? { status } : {},
  );
  return new ProviderError(
    code,
    `Could not read the legacy key from ${where}: HTTP ${status ?? "error"}. ${advice[code]}`,
    {
      cause,
      details: { provider: "vault-kv", ...(status ? { status } : {}) },
    },
  );
}
