/**
 * Shared set-up of the cross-package end-to-end tests: the three protocol test servers
 * (AWS KMS, Azure Key Vault over HTTPS, Vault transit), a key on each, two local RSA keys
 * on disk, and builders of each provider pointed at them. Every provider talks to its
 * server through the real vendor client (@aws-sdk/client-kms, @azure/keyvault-keys,
 * node-vault); nothing here is a stub.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AwsKmsProvider, type AwsKmsProviderOptions, awsKmsProvider } from "@envelope/aws-kms";
import {
  type AzureKeyVaultOptions,
  type AzureKeyVaultProvider,
  azureKeyVaultProvider,
} from "@envelope/azure-keyvault";
import { type EnvelopeError, EnvelopeError as EnvelopeErrorClass } from "@envelope/core";
import { type LocalRsaProvider, localRsaProvider } from "@envelope/local-rsa";
import {
  type VaultTransitOptions,
  type VaultTransitProvider,
  vaultTransitProvider,
} from "@envelope/vault";
import { type AwsKmsTestServer, type KmsKeyInfo, startAwsKmsServer } from "../servers/aws-kms.js";
import {
  type AzureKeyVaultTestServer,
  startAzureKeyVaultServer,
} from "../servers/azure-keyvault.js";
import { startVaultTransitServer, type VaultTransitServer } from "../servers/vault-transit.js";

export const CONTEXT = { table: "users", column: "ssn", id: "42" } as const;

/** The bearer token the Azure test server accepts by default. */
const AZURE_TOKEN = "test-token";
const VAULT_KEY = "pii";
const AZURE_KEY = "pii-master";

/**
 * A TokenCredential (structurally: `@azure/core-auth` is not a root dependency) that hands
 * out the test server's token. Real deployments use DefaultAzureCredential.
 */
export const azureTestCredential = {
  async getToken() {
    return { token: AZURE_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 };
  },
};

/** Retry and timeout settings of every provider here: fast backoff keeps fault tests short. */
export interface Timing {
  attempts: number;
  timeoutMs: number;
}
const DEFAULT_TIMING: Timing = { attempts: 3, timeoutMs: 5_000 };

export interface World {
  aws: AwsKmsTestServer;
  azure: AzureKeyVaultTestServer;
  vault: VaultTransitServer;
  awsKey: KmsKeyInfo;
  /** `https://127.0.0.1:<port>/keys/pii-master` (unversioned). */
  azureKeyId: string;
  /** Paths of two RSA private keys (PKCS#8 PEM) in a temp dir. */
  rsaKeyPaths: [string, string];
  /** Test-only Azure client options: trust the server's CA, skip the vault-domain check. */
  azureClientOptions: { agent: Agent; disableChallengeResourceVerification: true };
  localRsa(which?: 0 | 1): LocalRsaProvider;
  awsKms(options?: Partial<AwsKmsProviderOptions>, timing?: Timing): AwsKmsProvider;
  azureKv(options?: Partial<AzureKeyVaultOptions>, timing?: Timing): AzureKeyVaultProvider;
  /** A Vault transit provider on key `pii`, already `init()`ed (keyRef names the version). */
  vaultTransit(
    options?: Partial<VaultTransitOptions>,
    timing?: Timing,
  ): Promise<VaultTransitProvider>;
  /** Rotates the Vault transit key over the HTTP API (`POST <mount>/keys/<name>/rotate`). */
  rotateVaultKey(): Promise<void>;
  /** Rotates the Azure key over the REST API (`POST /keys/<name>/rotate`). */
  rotateAzureKey(): Promise<void>;
  resetCalls(): void;
  close(): Promise<void>;
}

/** Starts the three servers in parallel and creates one key on each. */
export async function startWorld(): Promise<World> {
  const [aws, azure, vault] = await Promise.all([
    startAwsKmsServer(),
    startAzureKeyVaultServer(),
    startVaultTransitServer(),
  ]);
  const agent = new Agent({ ca: azure.ca, keepAlive: true });
  const azureClientOptions = { agent, disableChallengeResourceVerification: true as const };
  const dir = mkdtempSync(join(tmpdir(), "envelope-e2e-"));
  const rsaKeyPaths = [0, 1].map((i) => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const path = join(dir, `rsa-${i}.pem`);
    writeFileSync(path, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    return path;
  }) as [string, string];

  const awsKey = aws.createKey({ region: "eu-west-1" });
  await azureRest(azure, agent, "POST", `/keys/${AZURE_KEY}/create`, {
    kty: "RSA",
    key_size: 2048,
  });
  await vaultRest(vault, "POST", `transit/keys/${VAULT_KEY}`, {});

  const made: { destroy(): void }[] = [];
  const retry = (t: Timing) => ({ ...t, baseDelayMs: 1, maxDelayMs: 5 });
  const world: World = {
    aws,
    azure,
    vault,
    awsKey,
    azureKeyId: `${azure.url}/keys/${AZURE_KEY}`,
    rsaKeyPaths,
    azureClientOptions,
    localRsa: (which = 0) => localRsaProvider({ keys: { path: rsaKeyPaths[which] } }),
    awsKms(options = {}, timing = DEFAULT_TIMING) {
      const provider = awsKmsProvider({
        keyId: awsKey.arn,
        endpoint: aws.url,
        credentials: aws.credentials,
        retry: retry(timing),
        ...options,
      });
      made.push(provider);
      return provider;
    },
    azureKv(options = {}, timing = DEFAULT_TIMING) {
      return azureKeyVaultProvider({
        keyId: world.azureKeyId,
        credential: azureTestCredential,
        clientOptions: azureClientOptions,
        retry: retry(timing),
        ...options,
      });
    },
    async vaultTransit(options = {}, timing = DEFAULT_TIMING) {
      const provider = vaultTransitProvider({
        address: vault.url,
        keyName: VAULT_KEY,
        auth: { token: vault.rootToken, renew: false },
        retry: { attempts: timing.attempts, baseDelayMs: 1, maxDelayMs: 5 },
        timeoutMs: timing.timeoutMs,
        ...options,
      });
      await provider.init();
      return provider;
    },
    rotateVaultKey: () => vaultRest(vault, "POST", `transit/keys/${VAULT_KEY}/rotate`, {}),
    rotateAzureKey: () => azureRest(azure, agent, "POST", `/keys/${AZURE_KEY}/rotate`),
    resetCalls() {
      aws.resetCalls();
      azure.resetCalls();
      vault.resetCalls();
    },
    async close() {
      for (const p of made) p.destroy();
      agent.destroy();
      await Promise.allSettled([aws.close(), azure.close(), vault.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return world;
}

/** Admin call to the Vault test server with the root token (plain fetch: the HTTP API). */
async function vaultRest(
  vault: VaultTransitServer,
  method: string,
  path: string,
  body: object,
): Promise<void> {
  const response = await fetch(`${vault.url}/v1/${path}`, {
    method,
    headers: { "X-Vault-Token": vault.rootToken, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`vault ${method} ${path}: HTTP ${response.status}`);
}

/** Admin call to the Key Vault test server (HTTPS with its CA, bearer token, api-version). */
function azureRest(
  kv: AzureKeyVaultTestServer,
  agent: Agent,
  method: string,
  path: string,
  body?: object,
): Promise<void> {
  const url = new URL(`${kv.url}${path}?api-version=7.6`);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent,
        headers: { Authorization: `Bearer ${AZURE_TOKEN}`, "Content-Type": "application/json" },
      },
      (res) => {
        res.resume();
        res.on("end", () =>
          (res.statusCode ?? 500) < 300
            ? resolve()
            : reject(new Error(`key vault ${method} ${path}: HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on("error", reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
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

/** A copy of the bytes as a Buffer, for byte-for-byte comparisons. */
export const bytes = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.length);
