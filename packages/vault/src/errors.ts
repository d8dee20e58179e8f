import {
  type EnvelopeError,
  parseRetryAfter,
  providerError,
  type RetryTarget,
} from "@envelope/core";
import { headersOf } from "./response-headers.js";

/** What the classifier needs to know about the call that failed. */
export interface FailureHint {
  /** decrypt and rewrap failures on bad ciphertext are unwrap failures, not KMS errors. */
  unwrapping: boolean;
  /** A derived key was called with a context: an auth failure then means a context mismatch. */
  derivedWithContext: boolean;
}

const TIMEOUT_CODES = new Set(["ECONNABORTED", "ETIMEDOUT", "ERR_CANCELED", "ESOCKETTIMEDOUT"]);
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "ERR_NETWORK",
  "ERR_BAD_RESPONSE",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
]);
const TLS_CODE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|EPROTO|DEPTH_ZERO/;

/** The non-secret facts of a node-vault / axios failure. */
export interface VaultFailure {
  status?: number;
  code?: string;
  message: string;
}

/**
 * Reads status, error code and Vault's first error message from a node-vault
 * `ApiResponseError` (`response.statusCode`, `response.body.errors`) or an axios error.
 * Never touches `config` / `request`: axios keeps the request body there, which for
 * encrypt holds the data key.
 */
export function describeFailure(error: unknown): VaultFailure {
  const e = (typeof error === "object" && error !== null ? error : {}) as {
    response?: { statusCode?: unknown; status?: unknown; body?: unknown };
    code?: unknown;
    message?: unknown;
  };
  const rawStatus = e.response?.statusCode ?? e.response?.status;
  const status = typeof rawStatus === "number" ? rawStatus : undefined;
  const body = e.response?.body as { errors?: unknown } | undefined;
  const first =
    Array.isArray(body?.errors) && typeof body.errors[0] === "string" ? body.errors[0] : undefined;
  const message = first ?? (typeof e.message === "string" ? e.message : String(error));
  return {
    ...(status !== undefined ? { status } : {}),
    ...(typeof e.code === "string" ? { code: e.code } : {}),
    message: clip(message),
  };
}

/**
 * Maps a Vault failure to a typed ProviderError naming provider, key and operation, with a
 * fix. The cause is a sanitized Error (status, code, Vault's message), never the raw axios
 * error, which carries the request body.
 */
export function classifyVaultError(
  error: unknown,
  target: RetryTarget,
  hint: FailureHint,
): EnvelopeError {
  const f = describeFailure(error);
  const cause = Object.assign(new Error(`Vault ${f.status ?? f.code ?? "error"}: ${f.message}`), {
    status: f.status,
    code: f.code,
  });
  // The wait Vault asked for on 429 / 5xx (a rate-limit quota sends Retry-After when the
  // quota config enables rate-limit response headers); core's withRetry honours it.
  const asked =
    f.status === 429 || (f.status !== undefined && f.status >= 500)
      ? parseRetryAfter(headersOf(error).retryAfter, { date: headersOf(error).date })
      : undefined;
  const say = (code: Parameters<typeof providerError>[0], problem: string, fix: string) =>
    providerError(
      code,
      target,
      problem,
      fix,
      cause,
      asked === undefined ? undefined : { retryAfterMs: asked },
    );
  const msg = f.message;

  if (f.status === undefined) {
    if ((f.code && TIMEOUT_CODES.has(f.code)) || /timeout/i.test(msg)) {
      return say(
        "ENVELOPE_KMS_TIMEOUT",
        `no answer from Vault in time (${msg})`,
        "Check network access to Vault, or raise timeoutMs.",
      );
    }
    if ((f.code && TLS_CODE.test(f.code)) || /certificate|self.signed|TLS|SSL/i.test(msg)) {
      return say(
        "ENVELOPE_KMS_ERROR",
        `TLS handshake with Vault failed (${f.code ?? msg})`,
        "Pass the CA that signed Vault's certificate as tls.ca (or VAULT_CACERT), and tls.cert/tls.key if Vault requires client certificates.",
      );
    }
    if ((f.code && NETWORK_CODES.has(f.code)) || /socket hang up|network|ECONN/i.test(msg)) {
      return say(
        "ENVELOPE_KMS_UNAVAILABLE",
        `cannot reach Vault (${f.code ?? msg})`,
        "Check the Vault address and that Vault is running and reachable.",
      );
    }
    return say(
      "ENVELOPE_KMS_ERROR",
      `unexpected failure (${msg})`,
      "See `cause`; check the Vault address and options.",
    );
  }
  if (f.status === 412 && /X-Vault-Request/i.test(msg)) {
    // A Vault Agent / Vault Proxy listener with require_request_header: not an outage.
    return say(
      "ENVELOPE_KMS_ERROR",
      `a Vault Agent or Vault Proxy in front of Vault requires the X-Vault-Request header (${msg})`,
      "This package sends X-Vault-Request: true on every request; if you inject your own client, make it send requestOptions.headers as given.",
    );
  }
  switch (f.status) {
    case 429:
      return say(
        "ENVELOPE_KMS_THROTTLED",
        `Vault rate limit quota exceeded (${msg})`,
        "Raise the rate-limit quota for this path, or enable the unwrap cache / data-key reuse.",
      );
    case 403:
    case 401:
      return say(
        "ENVELOPE_KMS_ACCESS_DENIED",
        `Vault denied the request (${msg})`,
        "Check the token or AppRole credentials (expired or revoked?) and that its policy grants update on the transit paths listed in the @envelope/vault README.",
      );
    case 404:
      return say(
        "ENVELOPE_KEY_NOT_FOUND",
        `Vault has no such key or transit mount (${msg || "not found"})`,
        "Check the mount path, key name and namespace, and create the key: vault write -f <mount>/keys/<name>.",
      );
    case 412:
    case 500:
    case 502:
    case 503:
    case 504:
      return say(
        "ENVELOPE_KMS_UNAVAILABLE",
        /sealed/i.test(msg) ? "Vault is sealed" : `Vault answered ${f.status} (${msg})`,
        /sealed/i.test(msg)
          ? "Unseal Vault (vault operator unseal) or point at an unsealed node."
          : "Retry later; check Vault's health and logs.",
      );
  }
  if (f.status === 400) {
    if (
      /encryption key not found|^key not found|policy not found|no existing key named/i.test(msg)
    ) {
      return say(
        "ENVELOPE_KEY_NOT_FOUND",
        `the transit key does not exist (${msg})`,
        "Create it (vault write -f <mount>/keys/<name>) or fix the key name, mount and namespace.",
      );
    }
    if (/disallowed by policy \(too old\)/.test(msg)) {
      return say(
        "ENVELOPE_KEY_DISABLED",
        "the key version that wrapped this data key is below the key's min_decryption_version",
        "Lower min_decryption_version on the key to reopen old data (impossible for versions removed by trim, below min_available_version), or restore the value from a rewrapped copy. Rewrap values before raising it.",
      );
    }
    if (/version is too new/.test(msg)) {
      // The wrapped key names a version this Vault does not have: the value is fine, this Vault is behind.
      return say(
        "ENVELOPE_KEY_NOT_FOUND",
        `this Vault has no such version of the key; its latest version is older than the one that wrapped this data key (${msg})`,
        "This Vault was restored from an older snapshot, is a replica that is behind, or is another cluster or namespace with the same key name: point at the Vault that wrapped the value. The value itself is not damaged; do not discard it.",
      );
    }
    if (/missing 'context' for key derivation/.test(msg)) {
      return say(
        "ENVELOPE_KMS_ERROR",
        "the key is derived and needs a context",
        "Set derived: true (or let the provider read the key) and a context mapping other than none.",
      );
    }
    if (hint.unwrapping) {
      if (hint.derivedWithContext && /message authentication failed/.test(msg)) {
        return say(
          "ENVELOPE_KMS_CONTEXT_MISMATCH",
          "Vault could not decrypt the data key with this encryption context",
          "Pass the same context (the mapped fields) that was given at encrypt.",
        );
      }
      return say(
        "ENVELOPE_UNWRAP_FAILED",
        `Vault rejected the wrapped data key (${msg})`,
        "The entry is corrupted or not from this key; restore the value from a backup.",
      );
    }
  }
  return say(
    "ENVELOPE_KMS_ERROR",
    `Vault answered ${f.status} (${msg})`,
    "See `cause` and Vault's audit log.",
  );
}

function clip(text: string): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length > 300 ? `${oneLine.slice(0, 300)}…` : oneLine;
}
