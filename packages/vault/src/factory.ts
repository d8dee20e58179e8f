import { readFileSync, statSync } from "node:fs";
import { ConfigError, type ProviderFactory, redactUri } from "@envelope/core";
import { checkKeyFileMode, strictKeyFiles } from "@envelope/core/internal";
import type { VaultAuth } from "./auth.js";
import type { VaultTlsOptions } from "./client.js";
import type { ContextMapping } from "./context.js";
import { PROVIDER_ID } from "./key-ref.js";
import { type VaultTransitOptions, vaultTransitProvider } from "./provider.js";

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Builds Vault transit providers from config. URI:
 * `vault-transit://<host[:port]>/<mount>/keys/<name>[?tls=false&namespace=…&derived=true&context=all|none|a,b&approle_mount=…&timeout_ms=…&lookup=false]`.
 * HTTPS unless `tls=false`; port 8200 when omitted. Credentials come from the environment:
 * VAULT_TOKEN, or VAULT_ROLE_ID + VAULT_SECRET_ID (AppRole, mount VAULT_APPROLE_MOUNT or
 * `approle`); namespace from the URI or VAULT_NAMESPACE; TLS files from VAULT_CACERT,
 * VAULT_CLIENT_CERT, VAULT_CLIENT_KEY. The provider reads the key once at start-up
 * (latest version, derived flag) unless `lookup=false`.
 *
 * @example
 * // ENVELOPE_ENCRYPT_KEY=vault-transit://vault.internal:8200/transit/keys/pii
 * const envelope = await createEnvelope({ encrypt: "vault-transit://vault.internal:8200/transit/keys/pii" });
 */
export const providerFactory: ProviderFactory = {
  scheme: PROVIDER_ID,
  async fromUri(uri, env = process.env) {
    const { options, lookup } = optionsFromUri(uri, env);
    const provider = vaultTransitProvider(options);
    if (lookup) await provider.init();
    return provider;
  },
  async fromConfig(config, env = process.env) {
    const { provider: _scheme, lookup, ...rest } = config as Record<string, unknown>;
    const options = rest as unknown as VaultTransitOptions;
    const filled: VaultTransitOptions = {
      ...options,
      address: options.address ?? (options.client ? undefined : env.VAULT_ADDR),
      namespace: options.namespace ?? env.VAULT_NAMESPACE,
      auth: options.auth ?? (options.client ? undefined : authFromEnv(env)),
      tls: options.tls ?? tlsFromEnv(env),
    };
    const provider = vaultTransitProvider(filled);
    if (lookup !== false) await provider.init();
    return provider;
  },
};

/**
 * Parses a `vault-transit://` URI into provider options (credentials from `env`).
 *
 * @example
 * const { options } = optionsFromUri("vault-transit://vault:8200/transit/keys/pii", process.env);
 * const provider = vaultTransitProvider(options);
 */
export function optionsFromUri(
  uri: string,
  env: Env,
): { options: VaultTransitOptions; lookup: boolean } {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    // No cause: URL's TypeError keeps the whole URI as `input`, userinfo (a token) included.
    throw bad(`"${redactUri(uri)}" is not a valid URI`);
  }
  if (url.protocol !== `${PROVIDER_ID}:`)
    throw bad(`"${redactUri(uri)}" does not start with ${PROVIDER_ID}://`);
  if (url.username || url.password)
    throw bad(
      "do not put credentials in the URI; use VAULT_TOKEN or VAULT_ROLE_ID/VAULT_SECRET_ID",
    );
  if (!url.hostname) throw bad(`"${redactUri(uri)}" has no Vault host`);
  const path = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, "");
  const cut = path.lastIndexOf("/keys/");
  if (cut <= 0)
    throw bad(
      `"${redactUri(uri)}" must end in /<mount>/keys/<name>, e.g. ${PROVIDER_ID}://vault:8200/transit/keys/pii`,
    );
  const q = url.searchParams;
  const https = q.get("tls") !== "false";
  const options: VaultTransitOptions = {
    address: `${https ? "https" : "http"}://${url.hostname.includes(":") ? `[${url.hostname}]` : url.hostname}:${url.port || "8200"}`,
    mount: path.slice(0, cut),
    keyName: path.slice(cut + "/keys/".length),
    auth: authFromEnv(env, q.get("approle_mount") ?? undefined),
  };
  const namespace = q.get("namespace") ?? env.VAULT_NAMESPACE;
  if (namespace) options.namespace = namespace;
  if (q.has("derived")) options.derived = q.get("derived") === "true";
  const context = q.get("context");
  if (context)
    options.context = (
      context === "all" || context === "none" ? context : context.split(",")
    ) as ContextMapping;
  const timeout = q.get("timeout_ms");
  if (timeout) options.timeoutMs = Number(timeout);
  const tls = tlsFromEnv(env);
  if (https && tls) options.tls = tls;
  return { options, lookup: q.get("lookup") !== "false" };
}

function authFromEnv(env: Env, approleMount?: string): VaultAuth {
  if (env.VAULT_TOKEN) return { token: env.VAULT_TOKEN };
  if (env.VAULT_ROLE_ID && env.VAULT_SECRET_ID) {
    const mount = approleMount ?? env.VAULT_APPROLE_MOUNT;
    return {
      approle: {
        roleId: env.VAULT_ROLE_ID,
        secretId: env.VAULT_SECRET_ID,
        ...(mount ? { mount } : {}),
      },
    };
  }
  throw bad(
    "no Vault credentials: set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole",
  );
}

function tlsFromEnv(env: Env): VaultTlsOptions | undefined {
  const tls: VaultTlsOptions = {};
  if (env.VAULT_CACERT) tls.ca = readPem(env.VAULT_CACERT, "VAULT_CACERT");
  if (env.VAULT_CLIENT_CERT) tls.cert = readPem(env.VAULT_CLIENT_CERT, "VAULT_CLIENT_CERT");
  if (env.VAULT_CLIENT_KEY) {
    // The mTLS private key: warned about (or refused, when strict) if group or others can read it.
    const path = env.VAULT_CLIENT_KEY;
    const mode = statMode(path);
    if (mode !== undefined) {
      checkKeyFileMode(path, mode, {
        provider: PROVIDER_ID,
        what: "TLS client key file (VAULT_CLIENT_KEY)",
        strict: strictKeyFiles(undefined, env),
      });
    }
    tls.key = readPem(path, "VAULT_CLIENT_KEY");
  }
  return Object.keys(tls).length > 0 ? tls : undefined;
}

/** The file's mode, or undefined when it cannot be stat'ed (readPem then says why). */
function statMode(path: string): number | undefined {
  try {
    return statSync(path).mode;
  } catch {
    return undefined;
  }
}

function readPem(path: string, variable: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `${PROVIDER_ID}: cannot read ${variable} file ${path}. Check the path and permissions.`,
      {
        cause,
        details: { field: variable },
      },
    );
  }
}

function bad(message: string, cause?: unknown): ConfigError {
  return new ConfigError("ENVELOPE_BAD_CONFIG", `${PROVIDER_ID}: ${message}.`, {
    cause,
    details: { field: "uri" },
  });
}
