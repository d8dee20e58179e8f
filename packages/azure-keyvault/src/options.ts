import { readFileSync } from "node:fs";
import { Agent } from "node:https";
import type { TokenCredential } from "@azure/core-auth";
import type { CryptographyClientOptions } from "@azure/keyvault-keys";
import { ConfigError, checkRetryOptions, type RetryOptions } from "@envelope/core";
import { checkAlgorithm, type WrapAlgorithm } from "./algorithm.js";
import { isTokenCredential } from "./credential.js";
import { type KeyId, parseKeyId } from "./key-id.js";

/** SDK client options passed through to `@azure/keyvault-keys` (retries are Envelope's; see `retry`). */
export type AzureClientOptions = Omit<CryptographyClientOptions, "retryOptions" | "serviceVersion">;

/** Options of `azureKeyVaultProvider`. */
export interface AzureKeyVaultOptions {
  /**
   * The key: `https://<vault>.vault.azure.net/keys/<name>[/<version>]` (Managed HSM:
   * `<hsm>.managedhsm.azure.net`), or the same as `azure-kv://…`. Without a version, new
   * data keys are wrapped under the latest version (re-read every `keyRefreshMs`).
   */
  keyId: string;
  /** Any TokenCredential. Default: DefaultAzureCredential from `@azure/identity`, loaded on first use. */
  credential?: TokenCredential;
  /**
   * Wrap algorithm for new data keys. Default: RSA-OAEP-256 for RSA keys, A256KW for
   * oct-HSM keys. RSA-OAEP (SHA-1) is allowed for RSA keys; RSA1_5 is not. Unwrap reads
   * the algorithm from the entry, so changing this never strands old data.
   */
  algorithm?: WrapAlgorithm;
  /**
   * Wrap with the cached public key in this process (no network call on encrypt) when the
   * key is RSA, enabled, in its validity window, and its key_ops allow wrapKey or encrypt.
   * Default true. `false` sends every wrap to Key Vault (each wrap then shows in its logs).
   */
  localWrap?: boolean;
  /** How long the current key (version, public key, attributes) is cached, in ms. Default 600000 (10 min). */
  keyRefreshMs?: number;
  /**
   * More keys this provider may unwrap, e.g. the previous key after moving to a new key name.
   * Without a version, any version of that key. Only these hosts ever receive a token.
   */
  decryptKeys?: readonly string[];
  /** @deprecated Use `decryptKeys` (the name every provider uses); same meaning. */
  additionalKeyIds?: readonly string[];
  /**
   * PEM file of the CA that signed the vault's TLS certificate, for a host outside
   * `*.vault.azure.net` (private endpoint, proxy, emulator). Env (read only where keys are
   * built from configuration: URIs, createEnvelope): ENVELOPE_AZURE_KV_CA_FILE.
   */
  caFile?: string;
  /**
   * Accept a bearer challenge whose resource does not match the vault's host: needed for a
   * vault reached under another name (private endpoint DNS name, proxy, emulator). The
   * token is then sent to that host, so only set it for a host you trust. Default false.
   * Env (read only where keys are built from configuration: URIs, createEnvelope):
   * ENVELOPE_AZURE_KV_DISABLE_CHALLENGE_RESOURCE_VERIFICATION=true.
   */
  disableChallengeResourceVerification?: boolean;
  /** Key Vault REST api-version, pinned so an SDK upgrade does not change the wire. Default "7.6". */
  serviceVersion?: string;
  /**
   * Envelope's bounded retry: attempts (default 3, including the first), baseDelayMs (50),
   * maxDelayMs (2000) and per-attempt timeoutMs (10000). The Azure SDK's own retry policy
   * is switched off, so the total number of requests per operation is exactly `attempts`.
   */
  retry?: RetryOptions;
  /**
   * Passed to the Azure SDK clients: proxyOptions, userAgentOptions, agent, tlsOptions,
   * httpClient, additionalPolicies, … For a TEST server only: `agent` with its CA and
   * `disableChallengeResourceVerification: true` — never set that against a real vault.
   */
  clientOptions?: AzureClientOptions;
}

export interface ResolvedOptions {
  keyId: KeyId;
  credential: TokenCredential | undefined;
  algorithm: WrapAlgorithm | undefined;
  localWrap: boolean;
  keyRefreshMs: number;
  additional: KeyId[];
  serviceVersion: string;
  retry: RetryOptions;
  clientOptions: AzureClientOptions;
}

export const OPTION_FIELDS = [
  "keyId",
  "credential",
  "algorithm",
  "localWrap",
  "keyRefreshMs",
  "decryptKeys",
  "caFile",
  "disableChallengeResourceVerification",
  "serviceVersion",
  "retry",
  "clientOptions",
] as const;

const bad = (field: string, message: string) =>
  new ConfigError("ENVELOPE_BAD_CONFIG", `azure-kv: ${field} ${message}`, { details: { field } });

/** Validates options up front; every error names the field and the fix. */
export function resolveOptions(options: AzureKeyVaultOptions): ResolvedOptions {
  if (typeof options !== "object" || options === null) {
    throw bad(
      "options",
      'must be an object, e.g. { keyId: "https://<vault>.vault.azure.net/keys/<name>" }.',
    );
  }
  const keyId = parseKeyId(options.keyId);
  if (options.credential !== undefined && !isTokenCredential(options.credential)) {
    throw bad(
      "credential",
      "must be a TokenCredential (an object with getToken), e.g. new DefaultAzureCredential().",
    );
  }
  if (options.localWrap !== undefined && typeof options.localWrap !== "boolean")
    throw bad("localWrap", "must be true or false.");
  const keyRefreshMs = options.keyRefreshMs ?? 600_000;
  if (!Number.isSafeInteger(keyRefreshMs) || keyRefreshMs < 0) {
    throw bad("keyRefreshMs", "must be a non-negative integer of milliseconds (e.g. 600000).");
  }
  if (options.additionalKeyIds !== undefined && options.decryptKeys !== undefined) {
    throw bad("decryptKeys", "and its deprecated alias additionalKeyIds: give one, not both.");
  }
  const extra = options.decryptKeys ?? options.additionalKeyIds;
  if (extra !== undefined && !Array.isArray(extra)) {
    throw bad("decryptKeys", "must be an array of key ids.");
  }
  const additional = (extra ?? []).map((id, i) => parseKeyId(id, `decryptKeys[${i}]`));
  const serviceVersion = options.serviceVersion ?? "7.6";
  if (typeof serviceVersion !== "string" || !/^[0-9][0-9.a-z-]*$/.test(serviceVersion)) {
    throw bad("serviceVersion", 'must be a Key Vault api-version such as "7.6".');
  }
  const retry = checkRetryOptions(options.retry, "azure-kv");
  const clientOptions = options.clientOptions ?? {};
  if (typeof clientOptions !== "object" || clientOptions === null)
    throw bad("clientOptions", "must be an object.");
  if ("retryOptions" in clientOptions || "serviceVersion" in clientOptions) {
    throw bad(
      "clientOptions",
      "must not set retryOptions or serviceVersion: use the provider's retry and serviceVersion options (the SDK's own retries are off so the total stays bounded).",
    );
  }
  if (
    options.disableChallengeResourceVerification !== undefined &&
    typeof options.disableChallengeResourceVerification !== "boolean"
  ) {
    throw bad("disableChallengeResourceVerification", "must be true or false.");
  }
  return {
    keyId,
    credential: options.credential,
    algorithm: checkAlgorithm(options.algorithm),
    localWrap: options.localWrap ?? true,
    keyRefreshMs,
    additional,
    serviceVersion,
    retry,
    clientOptions: {
      ...clientOptions,
      ...(options.caFile !== undefined ? { agent: caAgent(options.caFile) } : {}),
      ...(options.disableChallengeResourceVerification
        ? { disableChallengeResourceVerification: true }
        : {}),
    },
  };
}

// An HTTPS agent that trusts the CA in `file` (and the system CAs, which Node keeps).
function caAgent(file: unknown): Agent {
  if (typeof file !== "string" || file.length === 0) throw bad("caFile", "must be a file path.");
  let ca: Buffer;
  try {
    ca = readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException)?.code ?? "EIO";
    throw bad("caFile", `cannot be read (${code}): check the path and permissions.`);
  }
  return new Agent({ ca, keepAlive: true });
}
