import { type ErrorCode, ProviderError, type RetryTarget } from "@envelope/core";

/** What an AWS SDK error looks like, as far as classification needs. */
interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $fault?: "client" | "server";
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

/**
 * What remains of an AWS SDK (or network) error once the request and response are
 * dropped. It is the `cause` of every ProviderError this package throws for a KMS answer.
 *
 * The raw SDK error is never kept: its (non-enumerable) `$response` holds the HTTP request,
 * whose headers carry `Authorization` (the access key id) and `x-amz-security-token` (the
 * session token every role credential has: ECS task role, EC2 instance profile, IRSA), and
 * `util.inspect(err, { showHidden: true })` or `util.format("%o", err)` would print them.
 * This error keeps only the exception name, fault side, HTTP status, request id, socket
 * error code and AWS's message (one line, at most 300 characters, with anything shaped
 * like an access key id or a long secret or token replaced by `[redacted]`).
 *
 * @example
 * catch (e) { if (e.cause instanceof AwsKmsServiceError) log(e.cause.awsError, e.cause.requestId) }
 */
export class AwsKmsServiceError extends Error {
  /** AWS's exception name, e.g. `ThrottlingException`, `AccessDeniedException`, `TimeoutError`. */
  readonly awsError: string;
  /** `client` or `server`, as the SDK reports it. */
  readonly fault: "client" | "server" | undefined;
  readonly httpStatusCode: number | undefined;
  /** The KMS request id (`x-amzn-requestid`), for AWS support and CloudTrail. */
  readonly requestId: string | undefined;
  /** The socket error code (ECONNRESET, ETIMEDOUT, …) of a network failure. */
  readonly code: string | undefined;

  constructor(fields: {
    awsError: string;
    message: string;
    fault?: "client" | "server";
    httpStatusCode?: number;
    requestId?: string;
    code?: string;
  }) {
    super(fields.message);
    this.name = "AwsKmsServiceError";
    this.awsError = fields.awsError;
    this.fault = fields.fault;
    this.httpStatusCode = fields.httpStatusCode;
    this.requestId = fields.requestId;
    this.code = fields.code;
  }
}

/**
 * Rebuilds an AWS SDK error from its safe fields only (see AwsKmsServiceError). Reads
 * plain data properties and nothing else: no getters run, no `$response`, no `cause`.
 */
function sanitizeAwsError(error: unknown): AwsKmsServiceError {
  const e = (typeof error === "object" && error !== null ? error : {}) as AwsLikeError;
  const text = (v: unknown, max: number) =>
    typeof v === "string" && v.length > 0 ? scrub(v, max) : undefined;
  const status = e.$metadata?.httpStatusCode;
  const awsError = text(e.name, 100) ?? "Error";
  const message =
    text(e.message, 300) ?? (typeof error === "string" ? scrub(error, 300) : awsError);
  const fault = e.$fault === "client" || e.$fault === "server" ? e.$fault : undefined;
  const requestId = text(e.$metadata?.requestId, 100);
  const code = text(e.code, 50);
  return new AwsKmsServiceError({
    awsError,
    message: `${awsError}${typeof status === "number" ? ` (HTTP ${status})` : ""}: ${message}`,
    ...(fault ? { fault } : {}),
    ...(typeof status === "number" ? { httpStatusCode: status } : {}),
    ...(requestId ? { requestId } : {}),
    ...(code ? { code } : {}),
  });
}

// AWS access key ids (AKIA… long-term, ASIA… temporary, and the other unique-id prefixes),
// and any run of 40+ base64 characters (a secret access key is 40, a session token
// hundreds): neither belongs in a log line. Key ARNs, key ids and request ids break at
// dashes and stay readable.
const ACCESS_KEY_ID = /\b(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|APKA|ABIA|ACCA)[A-Z0-9]{12,}\b/g;
const LONG_SECRET = /[A-Za-z0-9+/=]{40,}/g;

function scrub(value: string, max: number): string {
  const oneLine = value
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
    .replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ")
    .replace(/\s+/g, " ")
    .trim()
    .replace(ACCESS_KEY_ID, "[redacted]")
    .replace(LONG_SECRET, "[redacted]");
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}

interface Mapping {
  code: ErrorCode;
  problem: string;
  fix: string;
}

const THROTTLED: Mapping = {
  code: "ENVELOPE_KMS_THROTTLED",
  problem: "KMS throttled the request (request quota exceeded)",
  fix: "Retry later, request a higher KMS quota, or enable the unwrap cache / data-key reuse to make fewer calls.",
};
const UNAVAILABLE: Mapping = {
  code: "ENVELOPE_KMS_UNAVAILABLE",
  problem: "KMS is unavailable or the connection failed",
  fix: "Check network access to the KMS endpoint and the AWS Health Dashboard, then retry.",
};
const ACCESS_DENIED: Mapping = {
  code: "ENVELOPE_KMS_ACCESS_DENIED",
  problem: "the AWS credentials were rejected or lack permission",
  fix: "Check the credentials in use (default chain: env, profile, role) and that the key policy / IAM policy allows kms:GenerateDataKey, kms:Encrypt, kms:Decrypt, kms:ReEncrypt* and kms:DescribeKey on this key.",
};

const BY_NAME: Record<string, Mapping> = {
  ThrottlingException: THROTTLED,
  ThrottledException: THROTTLED,
  Throttling: THROTTLED,
  RequestThrottled: THROTTLED,
  RequestThrottledException: THROTTLED,
  TooManyRequestsException: THROTTLED,
  RequestLimitExceeded: THROTTLED,
  // AWS common error (HTTP 408): the service timed out reading the request. Transient.
  RequestTimeout: UNAVAILABLE,
  RequestTimeoutException: UNAVAILABLE,
  AccessDeniedException: {
    ...ACCESS_DENIED,
    fix: 'Check the credentials in use (default chain: env, profile, role), that the key policy / IAM policy allows kms:GenerateDataKey, kms:Encrypt, kms:Decrypt, kms:ReEncrypt* and kms:DescribeKey on this key, and that any kms:EncryptionContext condition in them matches the context sent (envelope.check() sends {"envelope:check": "readiness"}; see the README\'s Permissions).',
  },
  UnrecognizedClientException: ACCESS_DENIED,
  InvalidSignatureException: ACCESS_DENIED,
  IncompleteSignatureException: ACCESS_DENIED,
  MissingAuthenticationTokenException: ACCESS_DENIED,
  InvalidClientTokenId: ACCESS_DENIED,
  ExpiredTokenException: ACCESS_DENIED,
  ExpiredToken: ACCESS_DENIED,
  CredentialsProviderError: {
    ...ACCESS_DENIED,
    problem: "no AWS credentials were found",
    fix: "Provide credentials through the default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance or task role) or pass `credentials`.",
  },
  DisabledException: {
    code: "ENVELOPE_KEY_DISABLED",
    problem: "the KMS key is disabled",
    fix: "Enable the key (aws kms enable-key) or rewrap the data to another key.",
  },
  KMSInvalidStateException: {
    code: "ENVELOPE_KEY_DISABLED",
    problem:
      "the KMS key is not in a usable state (pending deletion, pending import, or unavailable)",
    fix: "If the key is pending deletion, cancel it now (aws kms cancel-key-deletion, then enable-key): once deleted, data under it is lost.",
  },
  KeyUnavailableException: UNAVAILABLE,
  NotFoundException: {
    code: "ENVELOPE_KEY_NOT_FOUND",
    problem: "the KMS key or alias does not exist in this account and region",
    fix: "Check the key ARN / alias and the region; a deleted key cannot be recovered.",
  },
  InvalidArnException: {
    code: "ENVELOPE_KEY_NOT_FOUND",
    problem: "KMS rejected the key ARN",
    fix: "Check the key ARN (partition, region, account, key/ or alias/).",
  },
  InvalidCiphertextException: {
    code: "ENVELOPE_KMS_CONTEXT_MISMATCH",
    problem:
      "KMS rejected the wrapped data key: the encryption context does not match the one used at encrypt, or the wrapped key is corrupted",
    fix: "Pass exactly the context given at encrypt (and the same kmsContext setting); if it matches, the stored value is damaged.",
  },
  IncorrectKeyException: {
    code: "ENVELOPE_UNWRAP_FAILED",
    problem: "the data key was not wrapped under this KMS key",
    fix: "Configure the key ARN recorded in the envelope (envelope.inspect shows it) as a decrypt key.",
  },
  KMSInternalException: UNAVAILABLE,
  DependencyTimeoutException: UNAVAILABLE,
  InternalFailure: UNAVAILABLE,
  ServiceUnavailable: UNAVAILABLE,
  ServiceUnavailableException: UNAVAILABLE,
  TimeoutError: {
    code: "ENVELOPE_KMS_TIMEOUT",
    problem: "the request to KMS timed out",
    fix: "Check network access to the KMS endpoint, or raise retry.timeoutMs.",
  },
};

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

/**
 * Turns an AWS SDK (or network) error into a typed ProviderError that names the
 * provider, the key ARN and the operation and says what to do. Its `cause` is an
 * AwsKmsServiceError rebuilt from the SDK error's safe fields, never the SDK error itself
 * (whose `$response` holds the signed request headers, session token included). Retryable codes (throttled, unavailable, timeout) are retried by core's
 * withRetry.
 *
 * @example
 * classifyAwsError(err, { provider: "aws-kms", keyRef: arn, operation: "Decrypt" }).code
 */
export function classifyAwsError(error: unknown, target: RetryTarget): ProviderError {
  const e = (typeof error === "object" && error !== null ? error : {}) as AwsLikeError;
  const name = e.name ?? "Error";
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 200 && status < 300) {
    // A success status whose body the SDK could not read (truncated or not JSON): the
    // endpoint answered, but not as KMS does. The SDK error is dropped whole: its message
    // may quote the body, and that body carries the data key (GenerateDataKey, Decrypt).
    return new ProviderError(
      "ENVELOPE_PROVIDER_CONTRACT",
      `${target.provider} ${target.operation} for key "${target.keyRef}" got HTTP ${status} with a body that is not KMS's JSON (a proxy or TLS-inspecting middlebox that rewrites or truncates answers?). The endpoint is not behaving like AWS KMS; nothing was written.`,
      {
        details: {
          provider: target.provider,
          keyRef: target.keyRef,
          operation: target.operation,
          httpStatus: status,
        },
      },
    );
  }
  // The SDK names connection failures "TimeoutError" (so it may retry them); the socket
  // error code says what really happened.
  const netCode = String(e.code ?? "");
  let mapping = NETWORK_CODES.has(netCode)
    ? netCode === "ETIMEDOUT"
      ? BY_NAME.TimeoutError
      : UNAVAILABLE
    : BY_NAME[name];
  if (!mapping) {
    // By status, as the SDK's own retry strategy (switched off here) decides: 429 is
    // throttling, 408 and 5xx are transient, whatever the body (a proxy's page, no body).
    if (status === 429) mapping = THROTTLED;
    else if (status !== undefined && (status >= 500 || status === 408)) mapping = UNAVAILABLE;
    else if (status === undefined && isSocketError(error)) {
      mapping = UNAVAILABLE;
    } else {
      mapping = {
        code: "ENVELOPE_KMS_ERROR",
        problem: "KMS rejected the request",
        fix: "See `cause` for the AWS error; check the key type (symmetric ENCRYPT_DECRYPT) and the options.",
      };
    }
  }
  const aws =
    status !== undefined ? `${name}, HTTP ${status}` : netCode ? `${name} ${netCode}` : name;
  return new ProviderError(
    mapping.code,
    `${target.provider} ${target.operation} for key "${target.keyRef}" failed: ${mapping.problem} (AWS: ${aws}). ${mapping.fix}`,
    {
      cause: sanitizeAwsError(error),
      details: {
        provider: target.provider,
        keyRef: target.keyRef,
        operation: target.operation,
        awsError: name,
        ...(status !== undefined ? { httpStatus: status } : {}),
      },
    },
  );
}

function isSocketError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : "";
  return /socket hang up|ECONNRESET|ECONNREFUSED|EPIPE|network/i.test(message);
}
