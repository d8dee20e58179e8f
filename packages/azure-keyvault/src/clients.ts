import type { TokenCredential } from "@azure/core-auth";
import {
  CryptographyClient,
  type CryptographyClientOptions,
  KeyClient,
  type KeyVaultKey,
} from "@azure/keyvault-keys";
import { formatKeyId, type KeyId } from "./key-id.js";

const MAX_CRYPTO_CLIENTS = 64;

/**
 * The Azure SDK clients of one provider: a KeyClient per vault (to read the current key) and
 * a CryptographyClient per key version (to wrap / unwrap remotely), created on demand.
 */
export class AzureClients {
  readonly #keyClients = new Map<string, KeyClient>();
  readonly #cryptoClients = new Map<string, CryptographyClient>();

  constructor(
    private readonly credential: TokenCredential,
    private readonly options: CryptographyClientOptions,
  ) {}

  keyClient(vaultUrl: string): KeyClient {
    let client = this.#keyClients.get(vaultUrl);
    if (!client) {
      client = new KeyClient(vaultUrl, this.credential, { ...this.options });
      this.#keyClients.set(vaultUrl, client);
    }
    return client;
  }

  /**
   * A remote-only CryptographyClient for one key version. It is built from a KeyVaultKey
   * that carries no key material on purpose: given a bare id, the SDK would first GET the
   * key (an extra call needing keys/get) and then wrap RSA-OAEP locally on its own; this
   * way every operation is one Key Vault request, and Key Vault itself enforces the key's
   * enabled state, validity and permitted operations.
   */
  crypto(id: KeyId & { version: string }): CryptographyClient {
    const kid = formatKeyId(id);
    let client = this.#cryptoClients.get(kid);
    if (!client) {
      const remoteOnly: KeyVaultKey = {
        id: kid,
        name: id.name,
        properties: { id: kid, name: id.name, vaultUrl: id.vaultUrl, version: id.version },
      };
      client = new CryptographyClient(remoteOnly, this.credential, { ...this.options });
      if (this.#cryptoClients.size >= MAX_CRYPTO_CLIENTS) {
        this.#cryptoClients.delete(this.#cryptoClients.keys().next().value!);
      }
      this.#cryptoClients.set(kid, client);
    }
    return client;
  }
}
