import { inspect } from "node:util";
import {
  DecryptCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  type KMSClient,
  ReEncryptCommand,
} from "@aws-sdk/client-kms";
import {
  ConfigError,
  type EncryptionContext,
  type GeneratedDataKey,
  type KeyProvider,
  ProviderError,
  type RetryOptions,
  type RetryTarget,
  type WrappedKey,
  withRetry,
} from "@envelope/core";
import { type AwsCredentials, buildClient, type KmsClientLike } from "./client.js";
import { checkMapping, type KmsContextMapping, mapContext, mappedContextKey } from "./context.js";
import { classifyAwsError } from "./errors.js";
import { type KmsKeyId, parseKeyId, requireKeyId, sameKey } from "./key-ref.js";

/** Provider id written into every envelope entry. */
export const AWS_KMS_PROVIDER_ID = "aws-kms";

/** Key ARNs outside the configured key that this provider may unwrap under. */
export type DiscoveryOption =
  | boolean
  | { readonly accountIds: readonly string[]; readonly partition?: string };

export interface AwsKmsProviderOptions {
  /**
   * The KMS key new data keys are wrapped under: key id, key ARN, alias name
   * (`alias/pii`) or alias ARN. Entries record the key ARN KMS reports.
   */
  keyId: string;
  /**
   * Region for calls when `keyId` is not an ARN (an ARN carries its region; a different
   * `region` is a config error). Default: the SDK's chain (AWS_REGION, profile).
   */
  region?: string;
  /** Endpoint override (VPC endpoint, FIPS endpoint, a test server). */
  endpoint?: string;
  /** Credentials; default: the SDK's default chain (env, profile, SSO, container/instance role). */
  credentials?: AwsCredentials;
  /** An injected client (e.g. a configured `KMSClient`); `region`, `endpoint` and `credentials` are then ignored. */
  client?: KmsClientLike;
  /** Grant tokens sent with every call (permissions from a grant that is not yet consistent). */
  grantTokens?: readonly string[];
  /** Which part of the caller's context becomes the KMS EncryptionContext. Default `"all"`. */
  kmsContext?: KmsContextMapping;
  /** Further key ARNs this provider may unwrap under (keys rotated away from, other regions). */
  decryptKeys?: readonly string[];
  /**
   * Unwrap entries under keys not listed: `true` = any key ARN, `{ accountIds }` = keys
   * in those accounts. Default: off for key ids and ARNs; for an alias, keys in the
   * alias's account and region (the alias may have pointed at them). `false` turns that off.
   */
  discovery?: DiscoveryOption;
  /** Treat related multi-Region keys (same `mrk-` id, other region) as the same key. Default true. */
  mrkAware?: boolean;
  /**
   * Retries and per-attempt timeout (core's withRetry). The client this provider builds
   * has the SDK's own retries off, so `attempts` (default 3) is the total number of
   * requests per operation; with an injected client it is `attempts` × that client's maxAttempts.
   */
  retry?: RetryOptions;
}

/** The AWS KMS key provider; `destroy()` closes the clients it built. */
export interface AwsKmsProvider extends KeyProvider {
  readonly region: string | undefined;
  /** Closes HTTP connections of the clients this provider created (not an injected one). */
  destroy(): void;
}

/**
 * Master keys in AWS KMS: GenerateDataKey for new data keys (one call), Encrypt for
 * extra wraps, Decrypt with the recorded key ARN and the mapped EncryptionContext, and
 * ReEncrypt for rewrap inside KMS (the data key never reaches this process).
 *
 * @example
 * const envelope = new Envelope({
 *   encrypt: awsKmsProvider({ keyId: "arn:aws:kms:eu-west-1:111122223333:alias/pii" }),
 * });
 */
export function awsKmsProvider(options: AwsKmsProviderOptions): AwsKmsProvider {
  if (typeof options !== "object" || options === null) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      'aws-kms: options are required, e.g. { keyId: "arn:aws:kms:…" }.',
    );
  }
  const key = requireKeyId(options.keyId, "keyId");
  const kmsContext = checkMapping(options.kmsContext);
  const grantTokens = checkStrings(options.grantTokens, "grantTokens");
  const decryptKeys = checkStrings(options.decryptKeys, "decryptKeys").map((k, i) => {
    const parsed = requireKeyId(k, `decryptKeys[${i}]`);
    if (parsed.kind !== "key-arn") {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `aws-kms: decryptKeys[${i}] must be a key ARN (entries record key ARNs).`,
        {
          details: { field: `decryptKeys[${i}]` },
        },
      );
    }
    return parsed;
  });
  const discovery = checkDiscovery(options.discovery);
  const mrkAware = options.mrkAware ?? true;
  const retry = checkRetry(options.retry);
  if (
    options.region !== undefined &&
    (typeof options.region !== "string" || !/^[a-z0-9-]+$/.test(options.region))
  ) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "aws-kms: region must be an AWS region name such as eu-west-1.",
      {
        details: { field: "region" },
      },
    );
  }
  if (options.region !== undefined && key.region !== undefined && options.region !== key.region) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `aws-kms: region "${options.region}" conflicts with the region of keyId (${key.region}). KMS keys are used in their own region: drop \`region\`, or for a multi-Region key name the replica ARN in ${options.region}.`,
      { details: { field: "region" } },
    );
  }
  const home = key.region ?? options.region;
  const keyRef = key.raw;
  const learned = new Set<string>(); // key ARNs an alias resolved to in this process
  const built = new Map<string, KMSClient>();

  const clientFor = (region: string | undefined): KmsClientLike => {
    if (options.client) return options.client;
    const name = region ?? "";
    let client = built.get(name);
    if (!client) {
      client = buildClient({
        region,
        endpoint: options.endpoint,
        credentials: options.credentials,
        timeoutMs: retry.timeoutMs ?? 10_000,
      });
      built.set(name, client);
    }
    return client;
  };

  const call = <T>(target: RetryTarget, send: (signal: AbortSignal) => Promise<T>): Promise<T> =>
    withRetry(target, send, (error) => classifyAwsError(error, target), retry);

  const tokens = grantTokens.length > 0 ? [...grantTokens] : undefined;
  const kmsArgs = (context: EncryptionContext) => ({
    EncryptionContext: mapContext(context, kmsContext),
    GrantTokens: tokens,
  });

  const keyArns = [...(key.kind === "key-arn" ? [key] : []), ...decryptKeys];

  const isOwn = (ref: KmsKeyId): boolean => {
    if (key.kind === "key-arn") return sameKey(key, ref, mrkAware);
    if (key.kind === "key-id") {
      return (
        ref.resource === `key/${key.resource}` &&
        (home === undefined || ref.region === home || (mrkAware && ref.multiRegion))
      );
    }
    if (learned.has(ref.raw)) return true;
    // An alias may have pointed at other keys before: by default accept its account and region.
    return (
      options.discovery === undefined &&
      (key.partition === undefined || ref.partition === key.partition) &&
      (key.account === undefined || ref.account === key.account) &&
      (home === undefined || ref.region === home)
    );
  };

  const allowed = (ref: KmsKeyId): boolean =>
    isOwn(ref) ||
    decryptKeys.some((k) => sameKey(k, ref, mrkAware)) ||
    discovery === true ||
    (typeof discovery === "object" &&
      discovery.accountIds.includes(ref.account!) &&
      (discovery.partition === undefined || discovery.partition === ref.partition));

  /** The key ARN to name in Decrypt: a related MRK in our home region if one is configured. */
  const decryptTarget = (ref: KmsKeyId): KmsKeyId => {
    if (!mrkAware || !ref.multiRegion || ref.region === home) return ref;
    return keyArns.find((c) => sameKey(c, ref, true) && c.region === home) ?? ref;
  };

  const entryRef = (entry: WrappedKey, operation: string): KmsKeyId => {
    const ref = parseKeyId(entry.keyRef);
    if (ref?.kind !== "key-arn") {
      throw new ProviderError(
        "ENVELOPE_UNWRAP_FAILED",
        `aws-kms ${operation}: the entry's key reference is not a KMS key ARN, so it was not written by this provider. Check which provider wrote it (envelope.inspect).`,
        {
          details: { provider: AWS_KMS_PROVIDER_ID, keyRef: entry.keyRef.slice(0, 200), operation },
        },
      );
    }
    return ref;
  };

  const toEntry = (
    keyId: string | undefined,
    blob: Uint8Array | undefined,
    operation: string,
  ): WrappedKey => {
    const ref = keyId === undefined ? undefined : parseKeyId(keyId);
    if (ref?.kind !== "key-arn" || !(blob instanceof Uint8Array) || blob.length === 0) {
      throw new ProviderError(
        "ENVELOPE_PROVIDER_CONTRACT",
        `aws-kms ${operation} for key "${keyRef}" returned no key ARN or no ciphertext. The endpoint is not behaving like AWS KMS; nothing was written.`,
        { details: { provider: AWS_KMS_PROVIDER_ID, keyRef, operation } },
      );
    }
    if (key.kind === "alias-arn" || key.kind === "alias-name") learned.add(ref.raw);
    return { providerId: AWS_KMS_PROVIDER_ID, keyRef: ref.raw, wrapped: blob };
  };

  const decrypt = async (entry: WrappedKey, context: EncryptionContext): Promise<Uint8Array> => {
    const ref = decryptTarget(entryRef(entry, "Decrypt"));
    const target = { provider: AWS_KMS_PROVIDER_ID, keyRef: ref.raw, operation: "Decrypt" };
    const out = await call(target, (abortSignal) =>
      clientFor(ref.region).send(
        new DecryptCommand({
          CiphertextBlob: entry.wrapped,
          KeyId: ref.raw,
          EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
          ...kmsArgs(context),
        }),
        { abortSignal },
      ),
    );
    // KMS must answer with the key we named; anything else is not KMS behaviour.
    if (out.KeyId !== ref.raw || !(out.Plaintext instanceof Uint8Array)) {
      out.Plaintext?.fill(0);
      throw new ProviderError(
        "ENVELOPE_PROVIDER_CONTRACT",
        `aws-kms Decrypt for key "${ref.raw}" answered for another key or without plaintext. The endpoint is not behaving like AWS KMS.`,
        { details: { provider: AWS_KMS_PROVIDER_ID, keyRef: ref.raw, operation: "Decrypt" } },
      );
    }
    return out.Plaintext;
  };

  const encrypt = async (dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> => {
    const target = { provider: AWS_KMS_PROVIDER_ID, keyRef, operation: "Encrypt" };
    const out = await call(target, (abortSignal) =>
      clientFor(key.region ?? home).send(
        new EncryptCommand({
          KeyId: keyRef,
          Plaintext: dataKey,
          EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
          ...kmsArgs(context),
        }),
        { abortSignal },
      ),
    );
    return toEntry(out.KeyId, out.CiphertextBlob, "Encrypt");
  };

  const provider: AwsKmsProvider & { toJSON(): object; [inspect.custom](): string } = {
    id: AWS_KMS_PROVIDER_ID,
    keyRef,
    region: home,
    handles(entry) {
      if (entry.providerId !== AWS_KMS_PROVIDER_ID) return false;
      const ref = parseKeyId(entry.keyRef);
      return ref?.kind === "key-arn" && allowed(ref);
    },
    async generateDataKey(request): Promise<GeneratedDataKey> {
      const target = { provider: AWS_KMS_PROVIDER_ID, keyRef, operation: "GenerateDataKey" };
      const out = await call(target, (abortSignal) =>
        clientFor(key.region ?? home).send(
          new GenerateDataKeyCommand({
            KeyId: keyRef,
            KeySpec: "AES_256",
            ...kmsArgs(request.context),
          }),
          { abortSignal },
        ),
      );
      try {
        const entry = toEntry(out.KeyId, out.CiphertextBlob, "GenerateDataKey");
        if (!(out.Plaintext instanceof Uint8Array))
          throw contract("GenerateDataKey", "no plaintext data key");
        return { dataKey: out.Plaintext, entry };
      } catch (error) {
        out.Plaintext?.fill(0);
        throw error;
      }
    },
    wrap: (dataKey, request) => encrypt(dataKey, request.context),
    unwrap: (entry, request) => decrypt(entry, request.context),
    async rewrap(entry, request): Promise<WrappedKey> {
      const region = key.region ?? home;
      let source = decryptTarget(entryRef(entry, "ReEncrypt"));
      if (region !== undefined && source.region !== region) {
        if (!(mrkAware && source.multiRegion)) {
          // ReEncrypt works within one region. Across regions (non-MRK) the data key must
          // pass through this process: Decrypt there, Encrypt here.
          const dataKey = await decrypt(entry, request.context);
          try {
            return await encrypt(dataKey, request.context);
          } finally {
            dataKey.fill(0);
          }
        }
        source = {
          ...source,
          region,
          raw: source.raw.replace(`:kms:${source.region}:`, `:kms:${region}:`),
        };
      }
      const target = { provider: AWS_KMS_PROVIDER_ID, keyRef, operation: "ReEncrypt" };
      const context = mapContext(request.context, kmsContext);
      const out = await call(target, (abortSignal) =>
        clientFor(region).send(
          new ReEncryptCommand({
            CiphertextBlob: entry.wrapped,
            SourceKeyId: source.raw,
            SourceEncryptionContext: context,
            DestinationKeyId: keyRef,
            DestinationEncryptionContext: context,
            SourceEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
            DestinationEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
            GrantTokens: tokens,
          }),
          { abortSignal },
        ),
      );
      return toEntry(out.KeyId, out.CiphertextBlob, "ReEncrypt");
    },
    kmsContextKey: (context) => mappedContextKey(context, kmsContext),
    destroy() {
      for (const client of built.values()) client.destroy();
      built.clear();
    },
    toJSON: () => ({
      provider: AWS_KMS_PROVIDER_ID,
      keyRef,
      region: home,
      kmsContext,
      decryptKeys: decryptKeys.map((k) => k.raw),
    }),
    [inspect.custom]: () =>
      `AwsKmsProvider { keyRef: '${keyRef}', region: '${home ?? "(sdk default)"}' }`,
  };
  return provider;

  function contract(operation: string, what: string): ProviderError {
    return new ProviderError(
      "ENVELOPE_PROVIDER_CONTRACT",
      `aws-kms ${operation} for key "${keyRef}" returned ${what}. The endpoint is not behaving like AWS KMS; nothing was written.`,
      { details: { provider: AWS_KMS_PROVIDER_ID, keyRef, operation } },
    );
  }
}

function checkStrings(value: unknown, field: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && v.length > 0)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `aws-kms: ${field} must be an array of non-empty strings.`,
      {
        details: { field },
      },
    );
  }
  return [...value];
}

function checkDiscovery(value: unknown): DiscoveryOption | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  const v = value as { accountIds?: unknown; partition?: unknown };
  if (
    typeof value === "object" &&
    value !== null &&
    Array.isArray(v.accountIds) &&
    v.accountIds.length > 0 &&
    v.accountIds.every((a) => typeof a === "string" && /^\d{12}$/.test(a)) &&
    (v.partition === undefined || typeof v.partition === "string")
  ) {
    return value as DiscoveryOption;
  }
  throw new ConfigError(
    "ENVELOPE_BAD_CONFIG",
    'aws-kms: discovery must be true, false, or { accountIds: ["111122223333"], partition?: "aws" }.',
    { details: { field: "discovery" } },
  );
}

function checkRetry(value: unknown): RetryOptions {
  if (value === undefined) return {};
  const fields = ["attempts", "baseDelayMs", "maxDelayMs", "timeoutMs"] as const;
  const v = value as Record<string, unknown>;
  const ok =
    typeof value === "object" &&
    value !== null &&
    Object.keys(v).every((k) => (fields as readonly string[]).includes(k)) &&
    fields.every(
      (f) =>
        v[f] === undefined ||
        (typeof v[f] === "number" && Number.isFinite(v[f]) && (v[f] as number) >= 0),
    ) &&
    (v.attempts === undefined ||
      (Number.isInteger(v.attempts) &&
        (v.attempts as number) >= 1 &&
        (v.attempts as number) <= 10)) &&
    (v.timeoutMs === undefined || (v.timeoutMs as number) >= 1);
  if (!ok) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "aws-kms: retry must be { attempts?: 1-10, baseDelayMs?, maxDelayMs?, timeoutMs?: >= 1 } (numbers of milliseconds).",
      { details: { field: "retry" } },
    );
  }
  return value as RetryOptions;
}
