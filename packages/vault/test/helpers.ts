import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
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

/**
 * An HTTP proxy in front of `target` (the Vault test server): `answer` may answer a request
 * itself (returning true); everything else is forwarded as it is.
 */
export async function forwardingProxy(
  target: string,
  answer: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const proxy = createServer((req, res) => {
    if (answer(req, res)) return;
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (reply) => {
        res.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(res);
      },
    );
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    async close() {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}
