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

/**
 * Shares one in-flight token request among concurrent callers asking for the same scopes,
 * tenant and claims. The Key Vault SDK shares a refresh only between requests with the same
 * abort signal, and every Envelope attempt has its own (its timeout), so a cold start under
 * load sent one Entra token request per concurrent call (20 decrypts → 20 token requests),
 * enough to get throttled, after which MSAL holds every request back for a minute. The
 * first caller's options (and abort signal) drive the shared request; each caller's attempt
 * is still bounded by its own timeout in the core's retry loop.
 */
export function sharedTokenRequests(credential: TokenCredential): TokenCredential {
  const inFlight = new Map<string, Promise<AccessToken | null>>();
  return {
    getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
      const key = JSON.stringify([
        scopes,
        options?.tenantId ?? null,
        options?.claims ?? null,
        options?.enableCae ?? false,
      ]);
      let pending = inFlight.get(key);
      if (!pending) {
        pending = credential.getToken(scopes, options).finally(() => inFlight.delete(key));
        inFlight.set(key, pending);
      }
      return pending;
    },
  };
}
