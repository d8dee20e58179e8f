import { defineProviderFactory } from "@envelope/core";
import { type AzureKeyVaultOptions, OPTION_FIELDS } from "./options.js";
import { azureKeyVaultProvider, PROVIDER_ID } from "./provider.js";

type Env = Readonly<Record<string, string | undefined>>;

/** Env variable: CA file for a vault host outside *.vault.azure.net. */
export const CA_FILE_ENV = "ENVELOPE_AZURE_KV_CA_FILE";
/** Env variable: `true` accepts a bearer challenge for another host (private endpoint, proxy, emulator). */
export const DISABLE_CHALLENGE_VERIFICATION_ENV =
  "ENVELOPE_AZURE_KV_DISABLE_CHALLENGE_RESOURCE_VERIFICATION";

/**
 * Builds providers for `azure-kv://<vault-host>/keys/<name>[/<version>][?caFile=…&disableChallengeResourceVerification=true&decryptKeys=…&localWrap=false&timeoutMs=…&attempts=…]`
 * (https implied) and for `{ provider: "azure-kv", keyId, … }` config objects. A vault
 * reached under another host name (private endpoint, proxy, emulator) is set up with
 * `caFile` and `disableChallengeResourceVerification`, in the URI, the config object, or
 * ENVELOPE_AZURE_KV_CA_FILE / ENVELOPE_AZURE_KV_DISABLE_CHALLENGE_RESOURCE_VERIFICATION.
 *
 * @example
 * const envelope = await createEnvelope({ encrypt: "azure-kv://contoso.vault.azure.net/keys/pii-master" });
 */
export const providerFactory = defineProviderFactory({
  scheme: PROVIDER_ID,
  options: OPTION_FIELDS,
  deprecatedOptions: { additionalKeyIds: "decryptKeys" },
  uriOptions: {
    caFile: "string",
    disableChallengeResourceVerification: "boolean",
    decryptKeys: "list",
    localWrap: "boolean",
    timeoutMs: "integer",
    attempts: "integer",
  },
  uriShape:
    "azure-kv://<vault>.vault.azure.net/keys/<name>[/<version>][?caFile=/path/ca.pem&disableChallengeResourceVerification=true]",
  fromUri(location, query) {
    const { timeoutMs, attempts, ...rest } = query;
    const retry = {
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(attempts !== undefined ? { attempts } : {}),
    };
    return {
      keyId: `${PROVIDER_ID}://${location}`,
      ...rest,
      ...(Object.keys(retry).length > 0 ? { retry } : {}),
    };
  },
  create(config, env) {
    return azureKeyVaultProvider({ ...fromEnv(env), ...config } as unknown as AzureKeyVaultOptions);
  },
});

function fromEnv(env: Env): Partial<AzureKeyVaultOptions> {
  const caFile = env[CA_FILE_ENV]?.trim();
  const disable = env[DISABLE_CHALLENGE_VERIFICATION_ENV]?.trim().toLowerCase();
  return {
    ...(caFile ? { caFile } : {}),
    ...(disable === "true" ? { disableChallengeResourceVerification: true } : {}),
  };
}
