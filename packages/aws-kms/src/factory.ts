import { ConfigError, type ProviderFactory } from "@envelope/core";
import type { AwsCredentials } from "./client.js";
import { parseKeyId } from "./key-ref.js";
import { type AwsKmsProviderOptions, awsKmsProvider } from "./provider.js";

const SCHEME = "aws-kms";
const OPTION_FIELDS = [
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

type Env = Readonly<Record<string, string | undefined>>;

/**
 * `aws-kms://<key-arn-or-alias-arn>[?endpoint=…&kmsContext=all|none|k1,k2&grantTokens=t1,t2&timeoutMs=…&attempts=…]`
 * and `{ provider: "aws-kms", keyId, …AwsKmsProviderOptions }`. The region comes from
 * the ARN. Credentials come from the SDK's default chain (or AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN in the `env` passed to `fromUri`).
 *
 * @example
 * const envelope = await createEnvelope({ encrypt: "aws-kms://arn:aws:kms:eu-west-1:111122223333:alias/pii" });
 */
export const providerFactory: ProviderFactory = {
  scheme: SCHEME,
  async fromUri(uri, env = process.env) {
    if (typeof uri !== "string" || !uri.startsWith(`${SCHEME}://`)) {
      throw badUri();
    }
    const [arn = "", query = ""] = uri.slice(SCHEME.length + 3).split("?", 2);
    const keyId = decodeURIComponent(arn);
    const parsed = parseKeyId(keyId);
    if (!parsed || (parsed.kind !== "key-arn" && parsed.kind !== "alias-arn")) throw badUri();
    const options: AwsKmsProviderOptions = { keyId };
    for (const [name, value] of new URLSearchParams(query)) {
      switch (name) {
        case "endpoint":
          options.endpoint = value;
          break;
        case "kmsContext":
          options.kmsContext = value === "all" || value === "none" ? value : list(value);
          break;
        case "grantTokens":
          options.grantTokens = list(value);
          break;
        case "decryptKeys":
          options.decryptKeys = list(value);
          break;
        case "timeoutMs":
        case "attempts":
          options.retry = { ...options.retry, [name]: number(name, value) };
          break;
        default:
          throw new ConfigError(
            "ENVELOPE_BAD_CONFIG",
            `aws-kms: unknown URI option "${name}". Known: endpoint, kmsContext, grantTokens, decryptKeys, timeoutMs, attempts.`,
            { details: { field: name } },
          );
      }
    }
    const credentials = envCredentials(env);
    if (credentials) options.credentials = credentials;
    return awsKmsProvider(options);
  },
  async fromConfig(config) {
    const { provider: _scheme, ...rest } = config;
    for (const field of Object.keys(rest)) {
      if (!(OPTION_FIELDS as readonly string[]).includes(field)) {
        throw new ConfigError(
          "ENVELOPE_BAD_CONFIG",
          `aws-kms: unknown option "${field}". Known options: ${OPTION_FIELDS.join(", ")}.`,
          { details: { field } },
        );
      }
    }
    return awsKmsProvider(rest as unknown as AwsKmsProviderOptions);
  },
};

// Only when the caller passed its own env: process.env is what the SDK's chain reads anyway.
function envCredentials(env: Env): AwsCredentials | undefined {
  if (env === process.env) return undefined;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return undefined;
  return {
    accessKeyId,
    secretAccessKey,
    ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
  };
}

function list(value: string): string[] {
  return value
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

function number(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `aws-kms: URI option ${name} must be a positive integer.`,
      {
        details: { field: name },
      },
    );
  }
  return n;
}

function badUri(): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_CONFIG",
    "aws-kms URIs are aws-kms://<key ARN or alias ARN>, e.g. aws-kms://arn:aws:kms:eu-west-1:111122223333:alias/pii (the region comes from the ARN).",
  );
}
