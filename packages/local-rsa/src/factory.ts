import { ConfigError, type ProviderFactory } from "@envelope/core";
import { PROVIDER_ID } from "./constants.js";
import { THREADS_ENV } from "./pool.js";
import { type LocalRsaOptions, localRsaProvider } from "./provider.js";
import type { RsaKeySource } from "./sources.js";
import { parseLocalRsaUri, uriThreads } from "./uri.js";

const SOURCE_FIELDS = [
  "pem",
  "path",
  "env",
  "passphrase",
  "passphraseEnv",
  "passphraseFile",
] as const;

/**
 * The `local-rsa` scheme for `createEnvelope` / `resolveKey`: loaded lazily by
 * @envelope/core when config names a `local-rsa://` URI or `{ provider: "local-rsa" }`.
 *
 * @example
 * const envelope = await createEnvelope({ encrypt: "local-rsa:///run/secrets/enc_key.pem" });
 * const same = await createEnvelope({ encrypt: { provider: "local-rsa", keys: [{ path: "/run/secrets/enc_key.pem" }] } });
 */
export const providerFactory: ProviderFactory = {
  scheme: PROVIDER_ID,
  async fromUri(uri, env = process.env) {
    const source = parseLocalRsaUri(uri);
    const threads = uriThreads(uri);
    return localRsaProvider({
      keys: [source],
      env,
      ...(threads !== undefined ? { threads: threads as LocalRsaOptions["threads"] } : {}),
    });
  },
  async fromConfig(config, env = process.env) {
    const options = optionsFromConfig(config);
    // Without `threads` in the config, ENVELOPE_LOCAL_RSA_THREADS of the caller's env decides.
    if (options.threads === undefined && env[THREADS_ENV] !== undefined)
      options.threads = env[THREADS_ENV] as LocalRsaOptions["threads"];
    return localRsaProvider(options);
  },
};

/**
 * `{ provider, keys, env? }` (LocalRsaOptions), or one source inline:
 * `{ provider, path | pem | env: "VAR", passphrase…? }`.
 */
function optionsFromConfig(config: Readonly<Record<string, unknown>>): LocalRsaOptions {
  const inline = config.keys === undefined;
  const allowed: readonly string[] = inline
    ? ["provider", "strictKeyFiles", "threads", ...SOURCE_FIELDS]
    : ["provider", "keys", "env", "strictKeyFiles", "threads"];
  for (const field of Object.keys(config)) {
    if (!allowed.includes(field)) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `local-rsa: unknown field "${field}". Use { provider: "local-rsa", keys: [{ path | pem | env, passphrase | passphraseEnv | passphraseFile }], env?, strictKeyFiles?, threads? } or one source inline: { provider: "local-rsa", path: "/run/secrets/enc_key.pem" }.`,
        { details: { field } },
      );
    }
  }
  if (inline) {
    const source: RsaKeySource = {};
    for (const field of SOURCE_FIELDS) {
      if (config[field] !== undefined) (source as Record<string, unknown>)[field] = config[field];
    }
    return {
      keys: [source],
      ...threadsOf(config),
      ...(config.strictKeyFiles !== undefined
        ? { strictKeyFiles: config.strictKeyFiles as boolean }
        : {}),
    };
  }
  const env = config.env;
  if (env !== undefined && (typeof env !== "object" || env === null)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "local-rsa: env must be an object of environment variables (default process.env).",
      {
        details: { field: "env" },
      },
    );
  }
  return {
    keys: config.keys as LocalRsaOptions["keys"],
    ...threadsOf(config),
    ...(env ? { env: env as LocalRsaOptions["env"] } : {}),
    ...(config.strictKeyFiles !== undefined
      ? { strictKeyFiles: config.strictKeyFiles as boolean }
      : {}),
  };
}

function threadsOf(config: Readonly<Record<string, unknown>>): Pick<LocalRsaOptions, "threads"> {
  return config.threads !== undefined
    ? { threads: config.threads as LocalRsaOptions["threads"] }
    : {};
}
