import { ConfigError } from "@envelope/core";
import nodeVault from "node-vault";

/** Per-request options this package passes to the client (node-vault `requestOptions`). */
export interface VaultRequestOptions {
  headers: Record<string, string>;
  /** Per-request timeout in ms (axios `timeout`): closes the socket of a hung call. */
  timeout: number;
}

/**
 * The narrow part of a node-vault client this package calls: generic read and write on a
 * path under `/v1/`. Inject your own (a configured node-vault instance, or a fake) as
 * `options.client`. Methods resolve with Vault's JSON body and reject on non-2xx.
 */
export interface VaultClient {
  read(path: string, requestOptions?: VaultRequestOptions): Promise<unknown>;
  write(path: string, data: unknown, requestOptions?: VaultRequestOptions): Promise<unknown>;
}

/** TLS settings for HTTPS to Vault. */
export interface VaultTlsOptions {
  /** PEM CA bundle that signed Vault's certificate (VAULT_CACERT). */
  ca?: string | Buffer | readonly (string | Buffer)[];
  /** PEM client certificate for mTLS (VAULT_CLIENT_CERT). */
  cert?: string | Buffer;
  /** PEM client key for mTLS (VAULT_CLIENT_KEY). */
  key?: string | Buffer;
  /** Passphrase of `key`. */
  passphrase?: string;
  /**
   * Verify Vault's certificate. Default true. `false` is for tests only: it lets anyone on
   * the network read data keys. (VAULT_SKIP_VERIFY is deliberately not honoured.)
   */
  rejectUnauthorized?: boolean;
}

/**
 * A node-vault client for `address` with TLS options, no token of its own (this package
 * sends `X-Vault-Token` per request) and node-vault's debug logger switched off, because
 * `DEBUG=node-vault` would print request bodies, which hold data keys.
 *
 * @example
 * const client = createNodeVaultClient("https://vault.internal:8200", { ca: readFileSync("ca.pem") });
 * const provider = vaultTransitProvider({ client, keyName: "pii", auth: { token } });
 */
export function createNodeVaultClient(address: string, tls: VaultTlsOptions = {}): VaultClient {
  if (!/^https?:\/\/[^/]+/.test(address)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `vault-transit: address "${address}" must be http(s)://host:port.`,
      {
        details: { field: "address" },
      },
    );
  }
  const requestOptions: Record<string, unknown> = {
    // Always explicit, so VAULT_SKIP_VERIFY in the environment cannot turn verification off.
    strictSSL: tls.rejectUnauthorized !== false,
  };
  if (tls.ca !== undefined) requestOptions.ca = tls.ca;
  if (tls.cert !== undefined) requestOptions.cert = tls.cert;
  if (tls.key !== undefined) requestOptions.key = tls.key;
  if (tls.passphrase !== undefined) requestOptions.passphrase = tls.passphrase;
  const client = nodeVault({
    apiVersion: "v1",
    endpoint: address.replace(/\/+$/, ""),
    requestOptions,
    debug: () => {},
  } as nodeVault.VaultOptions);
  // node-vault falls back to VAULT_TOKEN / VAULT_NAMESPACE from the environment; this
  // package decides both explicitly, per request.
  const mutable = client as unknown as { token: string; namespace: string | undefined };
  mutable.token = "";
  mutable.namespace = undefined;
  return client as unknown as VaultClient;
}
