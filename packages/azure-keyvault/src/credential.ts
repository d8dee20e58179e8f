import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";

/**
 * A TokenCredential that loads `@azure/identity` and builds a DefaultAzureCredential on the
 * first token request, so an app that passes its own credential (or only builds a provider
 * without calling Azure) never loads identity.
 */
export function lazyDefaultCredential(): TokenCredential {
  let loaded: Promise<TokenCredential> | undefined;
  return {
    async getToken(
      scopes: string | string[],
      options?: GetTokenOptions,
    ): Promise<AccessToken | null> {
      loaded ??= import("@azure/identity").then(
        ({ DefaultAzureCredential }) => new DefaultAzureCredential(),
      );
      return (await loaded).getToken(scopes, options);
    },
  };
}

/** True for anything shaped like a TokenCredential. */
export function isTokenCredential(value: unknown): value is TokenCredential {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as TokenCredential).getToken === "function"
  );
}
