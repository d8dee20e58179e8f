import { ConfigError, defineProviderFactory } from "@envelope/core";
import type { AwsCredentials } from "./client.js";
import { parseKeyId } from "./key-ref.js";
import { type AwsKmsProviderOptions, OPTION_FIELDS } from "./options.js";
import { awsKmsProvider } from "./provider.js";

type Env = Readonly<Record<string, string | undefined>>;

const URI_SHAPE =
  "aws-kms://<key ARN or alias ARN>[?endpoint=…&kmsContext=all|none|k1,k2&grantTokens=t1,t2&decryptKeys=arn1,arn2&attempts=3&timeoutMs=5000] (the region comes from the ARN)";

/**
 * `aws-kms://<key-arn-or-alias-arn>[?endpoint=…&kmsContext=all|none|k1,k2&grantTokens=t1,t2&decryptKeys=…&timeoutMs=…&attempts=…]`
 * and `{ provider: "aws-kms", keyId, …AwsKmsProviderOptions }`. The region comes from
 * the ARN. Credentials come from the SDK's default chain (or AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN in the `env` passed to `fromUri`).
 *
 * @example
 * const envelope = await createEnvelope({ encrypt: "aws-kms://arn:aws:kms:eu-west-1:111122223333:alias/pii" });
 */
export const providerFactory = defineProviderFactory({
  scheme: "aws-kms",
  options: OPTION_FIELDS,
  uriOptions: {
    endpoint: "string",
    kmsContext: "kmsContext",
    grantTokens: "list",
    decryptKeys: "list",
    timeoutMs: "integer",
    attempts: "integer",
  },
  uriShape: URI_SHAPE,
  fromUri(location, query, env) {
    const keyId = decodeURIComponent(location);
    const parsed = parseKeyId(keyId);
    if (!parsed || (parsed.kind !== "key-arn" && parsed.kind !== "alias-arn")) {
      throw new ConfigError("ENVELOPE_BAD_CONFIG", `aws-kms URIs are ${URI_SHAPE}.`);
    }
    const { timeoutMs, attempts, ...rest } = query;
    const retry = {
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(attempts !== undefined ? { attempts } : {}),
    };
    const credentials = envCredentials(env);
    return {
      keyId,
      ...rest,
      ...(Object.keys(retry).length > 0 ? { retry } : {}),
      ...(credentials ? { credentials } : {}),
    };
  },
  create: (options) => awsKmsProvider(options as unknown as AwsKmsProviderOptions),
});

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
