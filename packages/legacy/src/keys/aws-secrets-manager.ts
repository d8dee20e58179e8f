import { ConfigError, ProviderError } from "@envelope/core";
import { secretCopy, secretFromText } from "@envelope/core/internal";

/** The narrow part of a `SecretsManagerClient` this package calls. */
export interface SecretsManagerLike {
  send(command: unknown): Promise<{ SecretString?: string; SecretBinary?: Uint8Array }>;
}

export interface AwsSecretSource {
  /** Secret name or ARN. */
  secretId: string;
  /** Staging label: AWSCURRENT (default), AWSPREVIOUS or a custom label. */
  versionStage?: string;
  /** A version id instead of (or as well as) a stage. */
  versionId?: string;
  /** For a JSON secret string: the field holding the key (e.g. `FERNET_KEY`). */
  field?: string;
  /** Region (default: the SDK's chain, AWS_REGION). */
  region?: string;
  /** Endpoint override (default: the SDK's, incl. AWS_ENDPOINT_URL_SECRETS_MANAGER). */
  endpoint?: string;
  /** Your own client (credentials, retries, proxies); the SDK default chain otherwise. */
  client?: SecretsManagerLike;
}

type SdkModule = {
  SecretsManagerClient: new (config: Record<string, unknown>) => SecretsManagerLike;
  GetSecretValueCommand: new (input: Record<string, unknown>) => unknown;
};

async function sdk(): Promise<SdkModule> {
  try {
    return (await import("@aws-sdk/client-secrets-manager")) as unknown as SdkModule;
  } catch (cause) {
    throw new ConfigError(
      "ENVELOPE_PROVIDER_NOT_INSTALLED",
      "Reading a legacy key from AWS Secrets Manager needs @aws-sdk/client-secrets-manager: npm install @aws-sdk/client-secrets-manager",
      { cause },
    );
  }
}

/** A name for the source in messages: secret id and stage, never the value. */
export const describeAwsSecret = (s: AwsSecretSource) =>
  `AWS Secrets Manager secret ${s.secretId.slice(0, 200)} (${s.versionId ? `version ${s.versionId.slice(0, 64)}` : (s.versionStage ?? "AWSCURRENT")})`;

/**
 * Reads one version of a secret with GetSecretValue (permission
 * `secretsmanager:GetSecretValue`, plus `kms:Decrypt` on a customer-managed key).
 * Returns the secret's bytes: SecretBinary as is, SecretString as UTF-8, or one field of a
 * JSON SecretString.
 */
export async function readAwsSecret(source: AwsSecretSource): Promise<Buffer> {
  const where = describeAwsSecret(source);
  const { SecretsManagerClient, GetSecretValueCommand } = await sdk();
  const client =
    source.client ??
    new SecretsManagerClient({
      ...(source.region ? { region: source.region } : {}),
      ...(source.endpoint ? { endpoint: source.endpoint } : {}),
    });
  let out: { SecretString?: string; SecretBinary?: Uint8Array };
  try {
    out = await client.send(
      new GetSecretValueCommand({
        SecretId: source.secretId,
        ...(source.versionStage ? { VersionStage: source.versionStage } : {}),
        ...(source.versionId ? { VersionId: source.versionId } : {}),
      }),
    );
  } catch (error) {
    throw mapAwsError(error, where);
  }
  if (out.SecretBinary) {
    if (source.field)
      throw new ConfigError(
        "ENVELOPE_BAD_KEY",
        `${where} is binary; it has no field "${source.field}".`,
      );
    return secretCopy(out.SecretBinary);
  }
  if (typeof out.SecretString !== "string")
    throw new ConfigError("ENVELOPE_BAD_KEY", `${where} has no value.`);
  return source.field
    ? jsonField(out.SecretString, source.field, where)
    : secretFromText(out.SecretString, "utf8");
}

/** One string field of a JSON object secret (Secrets Manager's key/value secrets). */
export function jsonField(text: string, field: string, where: string): Buffer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      `${where} is not a JSON object, so it has no field "${field}".`,
    );
  }
  const value = (parsed as Record<string, unknown> | null)?.[field];
  if (typeof value !== "string" || value.length === 0)
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      `${where} has no non-empty string field "${field}".`,
      {
        details: { field },
      },
    );
  return secretFromText(value, "utf8");
}

const CODES: Record<
  string,
  | "ENVELOPE_KEY_NOT_FOUND"
  | "ENVELOPE_KMS_ACCESS_DENIED"
  | "ENVELOPE_KMS_THROTTLED"
  | "ENVELOPE_KEY_DISABLED"
> = {
  ResourceNotFoundException: "ENVELOPE_KEY_NOT_FOUND",
  AccessDeniedException: "ENVELOPE_KMS_ACCESS_DENIED",
  UnrecognizedClientException: "ENVELOPE_KMS_ACCESS_DENIED",
  InvalidSignatureException: "ENVELOPE_KMS_ACCESS_DENIED",
  ExpiredTokenException: "ENVELOPE_KMS_ACCESS_DENIED",
  ThrottlingException: "ENVELOPE_KMS_THROTTLED",
  InvalidRequestException: "ENVELOPE_KEY_DISABLED",
};

const ADVICE: Record<string, string> = {
  ENVELOPE_KEY_NOT_FOUND: "Check the secret id, region and version stage.",
  ENVELOPE_KMS_ACCESS_DENIED:
    "Check the credentials and that the policy allows secretsmanager:GetSecretValue (and kms:Decrypt on its key).",
  ENVELOPE_KMS_THROTTLED: "Try again later.",
  ENVELOPE_KEY_DISABLED:
    "The secret is marked for deletion: restore it (RestoreSecret) to read it.",
  ENVELOPE_KMS_UNAVAILABLE: "Check the region, endpoint and network; try again.",
};

/** A typed error from safe fields only (the SDK error carries request metadata). */
function mapAwsError(error: unknown, where: string): ProviderError {
  const e = error as { name?: unknown; $metadata?: { httpStatusCode?: number } };
  const name = typeof e?.name === "string" ? e.name.slice(0, 100) : "Error";
  const status = e?.$metadata?.httpStatusCode;
  // No HTTP status: the request never got an answer (refused, reset, DNS, timeout).
  const code =
    CODES[name] ??
    (status === undefined || status >= 500 ? "ENVELOPE_KMS_UNAVAILABLE" : "ENVELOPE_KMS_ERROR");
  const cause = Object.assign(new Error(name), { name, ...(status ? { status } : {}) });
  return new ProviderError(
    code,
    `Could not read the legacy key from ${where}: ${name}. ${ADVICE[code] ?? "See the cause."}`,
    { cause, details: { provider: "aws-secrets-manager", ...(status ? { status } : {}) } },
  );
}
