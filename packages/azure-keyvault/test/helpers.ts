import { Agent } from "node:https";
import type { AccessToken, TokenCredential } from "@azure/core-auth";
import { KeyClient } from "@azure/keyvault-keys";
import {
  type AzureKeyVaultServerOptions,
  type AzureKeyVaultTestServer,
  startAzureKeyVaultServer,
} from "../../../test/servers/azure-keyvault.js";
import {
  type AzureKeyVaultOptions,
  type AzureKeyVaultProvider,
  azureKeyVaultProvider,
} from "../src/index.js";

export const TOKEN = "test-token";

/** A TokenCredential that hands out one fixed token and records the scopes asked for. */
export function staticCredential(token = TOKEN): TokenCredential & { scopes: string[] } {
  const scopes: string[] = [];
  return {
    scopes,
    async getToken(requested: string | string[]): Promise<AccessToken> {
      scopes.push(...(Array.isArray(requested) ? requested : [requested]));
      return { token, expiresOnTimestamp: Date.now() + 3_600_000 };
    },
  };
}

export interface Harness {
  kv: AzureKeyVaultTestServer;
  /** Test-only client options: trust the server's CA, skip the vault-domain check. */
  clientOptions: { agent: Agent; disableChallengeResourceVerification: true };
  /** Real KeyClient for setup (create, rotate, disable, delete keys). */
  admin: KeyClient;
  /** A provider for `keyId` against this server, fast retries. */
  provider(keyId: string, extra?: Partial<AzureKeyVaultOptions>): AzureKeyVaultProvider;
  close(): Promise<void>;
}

export async function startHarness(options: AzureKeyVaultServerOptions = {}): Promise<Harness> {
  const kv = await startAzureKeyVaultServer(options);
  const agent = new Agent({ ca: kv.ca, keepAlive: true });
  const clientOptions = { agent, disableChallengeResourceVerification: true as const };
  const admin = new KeyClient(kv.url, staticCredential(), {
    ...clientOptions,
    serviceVersion: "7.6",
    retryOptions: { maxRetries: 0 },
  });
  return {
    kv,
    clientOptions,
    admin,
    provider: (keyId, extra = {}) =>
      azureKeyVaultProvider({
        keyId,
        credential: staticCredential(),
        clientOptions,
        retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, timeoutMs: 5_000 },
        ...extra,
      }),
    async close() {
      agent.destroy();
      await kv.close();
    },
  };
}
