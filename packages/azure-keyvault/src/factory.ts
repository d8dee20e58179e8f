import { ConfigError, type ProviderFactory, redactUri } from "@envelope/core";
import { type AzureKeyVaultOptions, OPTION_FIELDS } from "./options.js";
import { azureKeyVaultProvider, PROVIDER_ID } from "./provider.js";

/**
 * Builds providers for `azure-kv://<vault-host>/keys/<name>[/<version>]` (https implied)
 * and for `{ provider: "azure-kv", keyId, … }` config objects. URIs take no query string:
 * options (credential, algorithm, client options) go through the config object.
 *
 * @example
 * const envelope = await createEnvelope({ encrypt: "azure-kv://contoso.vault.azure.net/keys/pii-master" });
 */
export const providerFactory: ProviderFactory = {
  scheme: PROVIDER_ID,
  async fromUri(uri) {
    if (typeof uri !== "string" || !uri.startsWith(`${PROVIDER_ID}://`)) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `azure-kv: "${redactUri(String(uri))}" is not an azure-kv:// URI.`,
      );
    }
    if (uri.includes("?")) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        'azure-kv URIs take no query string. Pass options in a config object: { provider: "azure-kv", keyId: "https://<vault>/keys/<name>", algorithm, localWrap, … }.',
      );
    }
    return azureKeyVaultProvider({ keyId: uri });
  },
  async fromConfig(config) {
    const { provider: _scheme, ...rest } = config;
    for (const field of Object.keys(rest)) {
      if (!(OPTION_FIELDS as readonly string[]).includes(field)) {
        throw new ConfigError(
          "ENVELOPE_BAD_CONFIG",
          `azure-kv: unknown option "${field}". Known options: ${OPTION_FIELDS.join(", ")}.`,
          {
            details: { field },
          },
        );
      }
    }
    return azureKeyVaultProvider(rest as unknown as AzureKeyVaultOptions);
  },
};
