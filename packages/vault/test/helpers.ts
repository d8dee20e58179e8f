import { type EnvelopeError, EnvelopeError as EnvelopeErrorClass } from "@envelope/core";
import {
  type VaultTransitOptions,
  type VaultTransitProvider,
  vaultTransitProvider,
} from "@envelope/vault";
import nodeVault from "node-vault";
import {
  startVaultTransitServer,
  type VaultTransitServer,
  type VaultTransitServerOptions,
} from "../../../test/servers/vault-transit.js";

export const CONTEXT = { table: "users", column: "email", id: "42" } as const;

/** A Vault test server, a real node-vault admin client (root token), and a provider factory. */
export interface Harness {
  vault: VaultTransitServer;
  /** Real node-vault client with the root token, for admin calls (create/rotate/config). */
  admin: ReturnType<typeof nodeVault>;
  provider(options?: Partial<VaultTransitOptions>): VaultTransitProvider;
  close(): Promise<void>;
}

export async function harness(
  options: VaultTransitServerOptions = {},
  adminTls: { ca?: string; cert?: string; key?: string } = {},
): Promise<Harness> {
  const vault = await startVaultTransitServer(options);
  const admin = nodeVault({
    endpoint: vault.url,
    token: vault.rootToken,
    debug: () => {},
    requestOptions: adminTls,
  });
  return {
    vault,
    admin,
    provider(overrides = {}) {
      return vaultTransitProvider({
        address: vault.url,
        keyName: "pii",
        auth: { token: vault.rootToken },
        // Fast backoff keeps fault tests quick; the bound (attempts) is what they check.
        retry: { baseDelayMs: 1, maxDelayMs: 5, timeoutMs: 5000 },
        ...overrides,
      });
    },
    close: () => vault.close(),
  };
}

/** The rejection of `promise`, asserted to be an EnvelopeError. */
export async function failure(promise: Promise<unknown>): Promise<EnvelopeError> {
  const error = await promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
  if (!EnvelopeErrorClass.isInstance(error)) throw error;
  return error;
}

export const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));
