import { ConfigError, checkRetryOptions, type RetryOptions } from "@envelope/core";
import type { AwsCredentials, KmsClientLike } from "./client.js";
import { checkMapping, type KmsContextMapping } from "./context.js";
import { type KmsKeyId, requireKeyId } from "./key-ref.js";

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

/** Option fields of `{ provider: "aws-kms", … }` config objects. */
export const OPTION_FIELDS = [
  "keyId",
  "region",
  "endpoint",
  "credentials",
  "client",
  "grantTokens",
  "kmsContext",
  "decryptKeys",
  "discovery",
  "mrkAware",
  "retry",
] as const;

/** Options checked once, up front; every error names the field and the fix. */
export interface ResolvedAwsOptions {
  key: KmsKeyId;
  /** The region calls go to: the ARN's, else `region`, else the SDK chain's (undefined). */
  home: string | undefined;
  kmsContext: KmsContextMapping;
  grantTokens: string[];
  decryptKeys: KmsKeyId[];
  discovery: DiscoveryOption | undefined;
  mrkAware: boolean;
  retry: RetryOptions;
}

export function resolveOptions(options: AwsKmsProviderOptions): ResolvedAwsOptions {
  if (typeof options !== "object" || options === null) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      'aws-kms: options are required, e.g. { keyId: "arn:aws:kms:…" }.',
    );
  }
  const key = requireKeyId(options.keyId, "keyId");
  const decryptKeys = checkStrings(options.decryptKeys, "decryptKeys").map((k, i) => {
    const parsed = requireKeyId(k, `decryptKeys[${i}]`);
    if (parsed.kind !== "key-arn") {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `aws-kms: decryptKeys[${i}] must be a key ARN (entries record key ARNs).`,
        { details: { field: `decryptKeys[${i}]` } },
      );
    }
    return parsed;
  });
  if (
    options.region !== undefined &&
    (typeof options.region !== "string" || !/^[a-z0-9-]+$/.test(options.region))
  ) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "aws-kms: region must be an AWS region name such as eu-west-1.",
      { details: { field: "region" } },
    );
  }
  if (options.region !== undefined && key.region !== undefined && options.region !== key.region) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `aws-kms: region "${options.region}" conflicts with the region of keyId (${key.region}). KMS keys are used in their own region: drop \`region\`, or for a multi-Region key name the replica ARN in ${options.region}.`,
      { details: { field: "region" } },
    );
  }
  return {
    key,
    home: key.region ?? options.region,
    kmsContext: checkMapping(options.kmsContext),
    grantTokens: checkGrantTokens(options.grantTokens),
    decryptKeys,
    discovery: checkDiscovery(options.discovery),
    mrkAware: options.mrkAware ?? true,
    retry: checkRetryOptions(options.retry, "aws-kms"),
  };
}

function checkStrings(value: unknown, field: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && v.length > 0)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `aws-kms: ${field} must be an array of non-empty strings.`,
      { details: { field } },
    );
  }
  return [...value];
}

// KMS's limits on GrantTokens (API reference): at most 10 tokens, each 1 to 8192 characters.
// Past them every call fails with ValidationException, so they are refused here.
const MAX_GRANT_TOKENS = 10;
const MAX_GRANT_TOKEN_LENGTH = 8192;

function checkGrantTokens(value: unknown): string[] {
  const tokens = checkStrings(value, "grantTokens");
  if (tokens.length > MAX_GRANT_TOKENS || tokens.some((t) => t.length > MAX_GRANT_TOKEN_LENGTH)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `aws-kms: grantTokens takes at most ${MAX_GRANT_TOKENS} tokens of at most ${MAX_GRANT_TOKEN_LENGTH} characters each (KMS refuses more on every call); pass only the tokens of grants that are not yet eventually consistent.`,
      { details: { field: "grantTokens" } },
    );
  }
  return tokens;
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
