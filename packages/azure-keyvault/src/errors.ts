import {
  type EnvelopeError,
  type ErrorCode,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  providerError,
  type RetryTarget,
} from "@envelope/core";
import { redactSecrets } from "@envelope/core/internal";

/**
 * What remains of an Azure SDK error once request and response are dropped: the SDK's
 * RestError keeps the request body, and a failed wrapKey request body holds the data key.
 * It is the `cause` of every ProviderError this package throws for a Key Vault answer.
 *
 * @example
 * catch (e) { if (e.cause instanceof AzureKeyVaultServiceError) log(e.cause.requestId, e.cause.innerCode) }
 */
export class AzureKeyVaultServiceError extends Error {
  constructor(
    message: string,
    readonly statusCode: number | undefined,
    readonly code: string | undefined,
    readonly innerCode: string | undefined,
    readonly requestId: string | undefined,
  ) {
    super(message);
    this.name = "AzureKeyVaultServiceError";
  }
}

interface RestLike {
  name?: string;
  message?: string;
  code?: string;
  statusCode?: number;
  details?: { error?: { code?: string; message?: string; innerError?: { code?: string } } };
  response?: { headers?: { get?(name: string): string | undefined } };
}

const NETWORK = new Set([
  "REQUEST_SEND_ERROR",
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "ENOTFOUND",
  "UND_ERR_SOCKET",
]);
const TLS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/;
// AuthenticationRequiredError: @azure/identity's answer when Entra refuses the client
// credentials (e.g. AADSTS7000215, a wrong client secret).
const CREDENTIAL =
  /CredentialUnavailableError|AuthenticationError|AggregateAuthenticationError|AuthenticationRequiredError/;

/**
 * Turns an Azure SDK / identity / network error into a typed ProviderError that names the
 * provider, key and operation and says what to do. Only throttling, 5xx and network
 * failures come out retryable (THROTTLED / UNAVAILABLE).
 */
export function classify(target: RetryTarget): (error: unknown) => EnvelopeError {
  return (error) => {
    const e = (
      typeof error === "object" && error !== null ? error : { message: String(error) }
    ) as RestLike;
    const status = typeof e.statusCode === "number" ? e.statusCode : undefined;
    const code = e.details?.error?.code ?? e.code;
    const inner = e.details?.error?.innerError?.code;
    // Messages from Key Vault or a credential (Entra, a custom TokenCredential) are copied
    // into ours: anything shaped like a token or key in them is masked first.
    const serviceMessage = redactSecrets(e.details?.error?.message ?? e.message ?? "unknown error");
    const requestId = safeHeader(e, "x-ms-request-id");
    const cause = new AzureKeyVaultServiceError(
      status
        ? `Key Vault answered ${status} ${code ?? ""}: ${serviceMessage}`.trim()
        : `${e.name ?? "Error"}: ${serviceMessage}`,
      status,
      code,
      inner,
      requestId,
    );
    // The wait Key Vault asked for on 429 / 5xx; core's withRetry honours it (up to maxDelayMs).
    const retryAfterMs =
      status === 429 || (status !== undefined && status >= 500) ? retryAfter(e) : undefined;
    const fail = (c: ErrorCode, problem: string, fix: string) =>
      providerError(
        c,
        target,
        problem,
        fix,
        cause,
        retryAfterMs === undefined ? undefined : { retryAfterMs },
      );
    const said = status
      ? ` (Key Vault: ${status} ${code ?? ""}${inner ? `/${inner}` : ""}: ${serviceMessage})`
      : "";

    if (status === 429) {
      return fail(
        "ENVELOPE_KMS_THROTTLED",
        `Key Vault throttled the request${said}`,
        "Retry later, spread load across vaults, or let the unwrap cache / data-key reuse / local wrap make fewer calls.",
      );
    }
    if (status !== undefined && status >= 500) {
      return fail(
        "ENVELOPE_KMS_UNAVAILABLE",
        `Key Vault is unavailable${said}`,
        "Check the Azure status page and the network path to the vault; retry later.",
      );
    }
    if (status === 401) {
      return fail(
        "ENVELOPE_KMS_ACCESS_DENIED",
        `Key Vault rejected the bearer token${said}`,
        "Check the credential (tenant, client id/secret, managed identity) and that the token is for https://vault.azure.net (Managed HSM: https://managedhsm.azure.net).",
      );
    }
    if (status === 403 && (inner === "KeyDisabled" || /disabled key/i.test(serviceMessage))) {
      return fail(
        "ENVELOPE_KEY_DISABLED",
        `the key version is disabled${said}`,
        "Re-enable that key version in Key Vault, or rewrap the data under an enabled version before disabling the old one.",
      );
    }
    if (status === 403) {
      return fail(
        "ENVELOPE_KMS_ACCESS_DENIED",
        `Key Vault denied the operation${said}`,
        "Grant the caller the \"Key Vault Crypto User\" role on the key or vault (or an access policy with keys get, wrapKey, unwrapKey), and check the key's permitted operations and the vault's firewall.",
      );
    }
    if (status === 404) {
      return fail(
        "ENVELOPE_KEY_NOT_FOUND",
        `the key or key version does not exist${said}`,
        "Check the key id; a deleted key can be recovered within its retention period (az keyvault key recover).",
      );
    }
    if (status === 400 && target.operation === "unwrap") {
      return fail(
        "ENVELOPE_UNWRAP_FAILED",
        `Key Vault could not unwrap the data key${said}`,
        "The entry was not wrapped by this key version with this algorithm, or it is corrupted.",
      );
    }
    if (status !== undefined) {
      return fail(
        "ENVELOPE_KMS_ERROR",
        `Key Vault refused the request${said}`,
        "See `cause`; check the key id, algorithm and serviceVersion.",
      );
    }
    if (e.name === "AbortError") {
      return fail(
        "ENVELOPE_KMS_TIMEOUT",
        "the request was aborted before Key Vault answered",
        "Check network access to the vault, or raise retry.timeoutMs.",
      );
    }
    // Microsoft Entra throttling or unavailable (429, 5xx, or OAuth `temporarily_unavailable`:
    // "retry the request") is transient, not a credential problem: retried, and said so.
    const entra = CREDENTIAL.test(e.name ?? "") ? entraFailure(error) : undefined;
    if (entra?.held) {
      return fail(
        "ENVELOPE_KMS_THROTTLED",
        "Microsoft Entra ID answered a token request with 429 or 5xx recently, and the credential (MSAL) holds further requests back until its Retry-After passes (60 s by default)",
        "Retry after that; reuse one credential object per process so its token cache is shared.",
      );
    }
    if (entra?.status === 429) {
      return fail(
        "ENVELOPE_KMS_THROTTLED",
        `Microsoft Entra ID throttled the token request (429${entra.code ? ` ${entra.code}` : ""})`,
        "Retry later; reuse one credential object per process so its token cache is shared.",
      );
    }
    if (entra && ((entra.status ?? 0) >= 500 || entra.code === "temporarily_unavailable")) {
      return fail(
        "ENVELOPE_KMS_UNAVAILABLE",
        `Microsoft Entra ID could not issue a token right now (${[entra.status, entra.code].filter(Boolean).join(" ")})`,
        "Retry later; check the Azure status page and the network path to the identity endpoint (AZURE_AUTHORITY_HOST).",
      );
    }
    if (CREDENTIAL.test(e.name ?? "")) {
      return fail(
        "ENVELOPE_KMS_ACCESS_DENIED",
        `no Azure token could be obtained (${e.name}: ${serviceMessage})`,
        "Configure a credential: AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, workload or managed identity, or `az login`; or pass `credential`.",
      );
    }
    if (code && TLS.test(code)) {
      return fail(
        "ENVELOPE_KMS_ERROR",
        `TLS verification of the vault failed (${code})`,
        "Check the vault host name and any TLS-intercepting proxy; for a test server pass its CA through clientOptions.agent.",
      );
    }
    if (code && NETWORK.has(code)) {
      return fail(
        "ENVELOPE_KMS_UNAVAILABLE",
        `the vault could not be reached (${code}: ${serviceMessage})`,
        "Check DNS, firewall / private endpoint and proxy settings; retry later.",
      );
    }
    if (/challenge/i.test(serviceMessage)) {
      return fail(
        "ENVELOPE_KMS_ERROR",
        `the Key Vault authentication challenge was refused (${serviceMessage})`,
        "Check that the key id names a real vault (*.vault.azure.net / *.managedhsm.azure.net).",
      );
    }
    return fail(
      "ENVELOPE_KMS_ERROR",
      `unexpected error (${e.name ?? "Error"}: ${serviceMessage})`,
      "See `cause`.",
    );
  };
}

/**
 * The wait a throttled / unavailable answer asked for, in ms, read as the Azure SDK's own
 * throttling policy reads it: `retry-after-ms`, then `x-ms-retry-after-ms` (milliseconds), then
 * `Retry-After` (seconds or an HTTP-date, measured from the answer's `Date`). Unusable values
 * are ignored (the backoff applies).
 */
function retryAfter(e: RestLike): number | undefined {
  for (const name of ["retry-after-ms", "x-ms-retry-after-ms"]) {
    const ms = safeHeader(e, name)?.trim();
    if (ms && /^\d+$/.test(ms)) return Math.min(Number(ms), MAX_RETRY_AFTER_MS);
  }
  return parseRetryAfter(safeHeader(e, "retry-after"), { date: safeHeader(e, "date") });
}

function safeHeader(e: RestLike, name: string): string | undefined {
  try {
    return e.response?.headers?.get?.(name) ?? undefined;
  } catch {
    return undefined;
  }
}

// The token endpoint's answer under an @azure/identity error: MSAL's ServerError (`status`,
// `errorCode`) or identity's AuthenticationError (`statusCode`, `errorResponse.error`).
function entraFailure(
  error: unknown,
): { status?: number; code?: string; held?: boolean } | undefined {
  let e: unknown = error;
  for (let depth = 0; e && typeof e === "object" && depth < 4; depth++) {
    const x = e as {
      status?: unknown;
      statusCode?: unknown;
      errorCode?: unknown;
      errorResponse?: { error?: unknown };
      cause?: unknown;
    };
    const status =
      typeof x.status === "number"
        ? x.status
        : typeof x.statusCode === "number"
          ? x.statusCode
          : undefined;
    const code =
      typeof x.errorCode === "string"
        ? x.errorCode
        : typeof x.errorResponse?.error === "string"
          ? x.errorResponse.error
          : undefined;
    // MSAL holds requests back after Entra answered 429 / 5xx (for its Retry-After, 60 s by
    // default) and meanwhile throws the cached answer: a ServerError whose errorCode is the
    // numeric AADSTS code list and that has no status. That is throttling, not a bad credential.
    if (
      status === undefined &&
      (x as { name?: unknown }).name === "ServerError" &&
      typeof x.errorCode === "string" &&
      /^\d+( \d+)*$/.test(x.errorCode)
    ) {
      return { status: 429, held: true };
    }
    if (status !== undefined || code !== undefined) return { status, code };
    e = x.cause;
  }
  return undefined;
}
