import { statSync } from "node:fs";
import {
  ConfigError,
  defineProviderFactory,
  parseUriQuery,
  redactUri,
  type UriOptionValue,
} from "@envelope/core";
import { checkKeyFileMode, secretFromFile, strictKeyFiles } from "@envelope/core/internal";
import type { VaultAuth } from "./auth.js";
import type { VaultTlsOptions } from "./client.js";
import type { ContextMapping } from "./context.js";
import { PROVIDER_ID } from "./key-ref.js";
import { OPTION_FIELDS, type VaultTransitOptions } from "./options.js";
import { vaultTransitProvider } from "./provider.js";

type Env = Readonly<Record<string, string | undefined>>;

const URI_SHAPE =
  "vault-transit://<host[:port]>/<mount>/keys/<name>, or vault-transit:///<mount>/keys/<name> with the address in VAULT_ADDR, [?tls=false&namespace=…&derived=true&kmsContext=all|none|a,b&approleMount=…&timeoutMs=…&attempts=…&lookup=false&renew=false]";

/** Environment variable that sets `auth.renew` for a VAULT_TOKEN (`false` skips lookup and renewal). */
export const TOKEN_RENEW_ENV = "ENVELOPE_VAULT_TOKEN_RENEW";

const URI_SYNTAX = {
  scheme: PROVIDER_ID,
  uriShape: URI_SHAPE,
  uriOptions: {
    tls: "boolean",
    namespace: "string",
    derived: "boolean",
    kmsContext: "kmsContext",
    approleMount: "string",
    timeoutMs: "integer",
    attempts: "integer",
    lookup: "boolean",
    renew: "boolean",
  },
  deprecatedUriOptions: {
    context: "kmsContext",
    timeout_ms: "timeoutMs",
    approle_mount: "approleMount",
  },
} as const;

/**
 * Builds Vault transit providers from config. URI:
 * `vault-transit://<host[:port]>/<mount>/keys/<name>[?tls=false&namespace=…&derived=true&kmsContext=all|none|a,b&approleMount=…&timeoutMs=…&attempts=…&lookup=false&renew=false]`,
 * or `vault-transit:///<mount>/keys/<name>` to take the address from VAULT_ADDR.
 * HTTPS unless `tls=false`; port 8200 when omitted. Credentials come from the environment:
 * VAULT_TOKEN, or VAULT_ROLE_ID + VAULT_SECRET_ID (AppRole, mount VAULT_APPROLE_MOUNT or
 * `approle`); namespace from the URI or VAULT_NAMESPACE; TLS files from VAULT_CACERT,
 * VAULT_CLIENT_CERT, VAULT_CLIENT_KEY; token renewal off with ENVELOPE_VAULT_TOKEN_RENEW=false
 * or `renew=false`. The provider reads the key once at start-up (latest version, derived
 * flag) unless `lookup=false`.
 *
 * @example
 * // ENVELOPE_ENCRYPT_KEYS=vault-transit://vault.internal:8200/transit/keys/pii
 * const envelope = await createEnvelope({ encrypt: "vault-transit://vault.internal:8200/transit/keys/pii" });
 */
export const providerFactory = defineProviderFactory({
  ...URI_SYNTAX,
  options: OPTION_FIELDS,
  deprecatedOptions: { context: "kmsContext", timeoutMs: "retry.timeoutMs" },
  fromUri: (location, query, env) => {
    const { options, lookup } = optionsFromLocation(location, query, env);
    return { ...options, lookup };
  },
  async create(config, env) {
    const { lookup, ...rest } = config as unknown as VaultTransitOptions & { lookup?: unknown };
    const options: VaultTransitOptions = {
      ...rest,
      address: rest.address ?? (rest.client ? undefined : env.VAULT_ADDR),
      namespace: rest.namespace ?? env.VAULT_NAMESPACE,
      auth: rest.auth ?? (rest.client ? undefined : authFromEnv(env)),
      tls: rest.tls ?? tlsFromEnv(env),
    };
    const provider = vaultTransitProvider(options);
    if (lookup !== false) await provider.init();
    return provider;
  },
});

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
  if (typeof uri !== "string" || !uri.startsWith(`${PROVIDER_ID}://`))
    throw bad(`"${redactUri(String(uri))}" does not start with ${PROVIDER_ID}://`);
  const rest = uri.slice(`${PROVIDER_ID}://`.length);
  const q = rest.indexOf("?");
  const query = q < 0 ? {} : parseUriQuery(URI_SYNTAX, rest.slice(q + 1));
  return optionsFromLocation(q < 0 ? rest : rest.slice(0, q), query, env);
}

/** `host[:port]/<mount>/keys/<name>` (or `/<mount>/keys/<name>` with VAULT_ADDR) plus URI options. */
function optionsFromLocation(
  location: string,
  q: Readonly<Record<string, UriOptionValue>>,
  env: Env,
): { options: VaultTransitOptions; lookup: boolean } {
  const slash = location.indexOf("/");
  const host = slash < 0 ? location : location.slice(0, slash);
  let address: string;
  if (host === "") {
    // vault-transit:///transit/keys/pii: the address is VAULT_ADDR's, scheme and port included.
    const fromEnv = env.VAULT_ADDR?.trim();
    if (!fromEnv) throw bad("the URI names no Vault host and VAULT_ADDR is not set");
    if (q.tls !== undefined) throw bad("tls= does not apply with VAULT_ADDR (its scheme decides)");
    address = fromEnv.replace(/\/+$/, "");
  } else {
    let url: URL;
    try {
      url = new URL(`http://${host}`);
    } catch {
      // No cause: URL's TypeError keeps the whole input, userinfo (a token) included.
      throw bad(`"${redactUri(`${PROVIDER_ID}://${location}`)}" is not a valid URI`);
    }
    if (url.username || url.password)
      throw bad(
        "do not put credentials in the URI; use VAULT_TOKEN or VAULT_ROLE_ID/VAULT_SECRET_ID",
      );
    const https = q.tls !== false;
    address = `${https ? "https" : "http"}://${url.hostname}:${url.port || "8200"}`;
  }
  let path: string;
  try {
    path = decodeURIComponent(slash < 0 ? "" : location.slice(slash)).replace(/^\/+|\/+$/g, "");
  } catch {
    throw bad("the URI path has a broken %-escape");
  }
  const cut = path.lastIndexOf("/keys/");
  if (cut <= 0)
    throw bad(
      `"${redactUri(`${PROVIDER_ID}://${location}`)}" must end in /<mount>/keys/<name>, e.g. ${PROVIDER_ID}://vault:8200/transit/keys/pii`,
    );
  const options: VaultTransitOptions = {
    address,
    mount: path.slice(0, cut),
    keyName: path.slice(cut + "/keys/".length),
    auth: authFromEnv(env, q.approleMount as string | undefined, q.renew as boolean | undefined),
  };
  const namespace = (q.namespace as string | undefined) ?? env.VAULT_NAMESPACE;
  if (namespace) options.namespace = namespace;
  if (q.derived !== undefined) options.derived = q.derived as boolean;
  if (q.kmsContext !== undefined) options.kmsContext = q.kmsContext as ContextMapping;
  const retry = {
    ...(q.timeoutMs !== undefined ? { timeoutMs: q.timeoutMs as number } : {}),
    ...(q.attempts !== undefined ? { attempts: q.attempts as number } : {}),
  };
  if (Object.keys(retry).length > 0) options.retry = retry;
  const tls = tlsFromEnv(env);
  if (address.startsWith("https:") && tls) options.tls = tls;
  return { options, lookup: q.lookup !== false };
}

function authFromEnv(env: Env, approleMount?: string, renew?: boolean): VaultAuth {
  if (env.VAULT_TOKEN) {
    const renewToken = renew ?? renewFromEnv(env);
    return { token: env.VAULT_TOKEN, ...(renewToken === false ? { renew: false } : {}) };
  }
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

function renewFromEnv(env: Env): boolean | undefined {
  const value = env[TOKEN_RENEW_ENV]?.trim().toLowerCase();
  if (value === undefined || value === "") return undefined;
  if (value !== "true" && value !== "false") throw bad(`${TOKEN_RENEW_ENV} must be true or false`);
  return value === "true";
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
    return secretFromFile(path); // VAULT_CLIENT_KEY is a private key
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
