import { ConfigError, EnvelopeError, type ErrorDetails, ProviderError } from "../errors.js";

export interface RetryOptions {
  /** Total attempts including the first. Default 3. */
  attempts?: number;
  /** First backoff delay; doubles each retry, with full jitter. Default 50 ms. */
  baseDelayMs?: number;
  /**
   * Cap on one wait between attempts. Default 2 s. A server's `Retry-After` is honoured up
   * to this cap; when the server asks for longer, the call gives up at once (with
   * `details.retryAfterMs`) instead of retrying before the server said it would answer.
   */
  maxDelayMs?: number;
  /** Per-attempt timeout. Default 10 s. */
  timeoutMs?: number;
}

const RETRY_FIELDS = ["attempts", "baseDelayMs", "maxDelayMs", "timeoutMs"] as const;
/** Most attempts one operation may make: bounds the work (and KMS calls) of one value. */
export const MAX_RETRY_ATTEMPTS = 10;

/**
 * Validates a provider's `retry` option: every provider uses this one check, so the same
 * input is accepted or refused everywhere. `attempts` is an integer 1–10, `timeoutMs` an
 * integer of at least 1, the delays non-negative integers; unknown fields are refused.
 * Throws ConfigError ENVELOPE_BAD_CONFIG naming `provider` and the field.
 *
 * @example
 * const retry = checkRetryOptions(options.retry, "aws-kms"); // {} when undefined
 */
export function checkRetryOptions(value: unknown, provider: string, field = "retry"): RetryOptions {
  if (value === undefined) return {};
  const bad = (where: string, why: string) =>
    new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `${provider}: ${where} ${why} Use ${field}: { attempts?: 1-${MAX_RETRY_ATTEMPTS}, baseDelayMs?, maxDelayMs?, timeoutMs?: >= 1 } (integers, milliseconds).`,
      { details: { field: where } },
    );
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw bad(field, "must be an object.");
  }
  const v = value as Record<string, unknown>;
  for (const [key, n] of Object.entries(v)) {
    if (!(RETRY_FIELDS as readonly string[]).includes(key)) {
      throw bad(`${field}.${key}`, "is not a retry option.");
    }
    if (n === undefined) continue;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
      throw bad(`${field}.${key}`, "must be a non-negative integer.");
    }
  }
  const attempts = v.attempts as number | undefined;
  if (attempts !== undefined && (attempts < 1 || attempts > MAX_RETRY_ATTEMPTS)) {
    throw bad(`${field}.attempts`, `must be from 1 to ${MAX_RETRY_ATTEMPTS}.`);
  }
  if (v.timeoutMs !== undefined && (v.timeoutMs as number) < 1) {
    throw bad(`${field}.timeoutMs`, "must be at least 1.");
  }
  return { ...(v as RetryOptions) };
}

export interface RetryTarget {
  provider: string;
  keyRef: string;
  operation: string;
}

/**
 * The codes that are retried, each with what to do once the retries are spent: a quota
 * problem is not a dead endpoint.
 */
const GAVE_UP_ADVICE: Readonly<Record<string, string>> = {
  ENVELOPE_KMS_THROTTLED:
    "the KMS kept throttling. Retry later, raise the provider's quota, or enable the unwrap cache / data-key reuse to make fewer calls.",
  ENVELOPE_KMS_UNAVAILABLE:
    "the KMS is unavailable or unreachable. Check the endpoint, the network path to it and the service's health, then retry.",
  ENVELOPE_KMS_TIMEOUT:
    "the KMS did not answer in time. Check the endpoint and the network path to it (proxy, VPC endpoint, DNS), or raise the provider's timeoutMs.",
};

const RETRYABLE = new Set(Object.keys(GAVE_UP_ADVICE));

/** Longest single timer Node.js runs: a longer setTimeout fires after 1 ms instead. */
const MAX_TIMER_MS = 2_147_483_647;
/**
 * A Retry-After beyond a year is recorded as a year: past any wait withRetry makes (at most
 * MAX_TIMER_MS, about 24.8 days), so it always means "give up now", and stays a safe integer.
 */
export const MAX_RETRY_AFTER_MS = 365 * 24 * 3600 * 1000;

/**
 * The wait a server asked for in a `Retry-After` header (RFC 9110 §10.2.3), in ms:
 * `delay-seconds` (`1*DIGIT`, e.g. "120") or an `HTTP-date` (IMF-fixdate, the obsolete
 * RFC 850 and asctime forms, and the "… UTC" variant some servers send). A date is measured
 * from the response's own `Date` header when given (so this host's clock skew does not
 * count), otherwise from `now`; a date in the past is 0. Anything else (empty, negative,
 * fractional, garbage, several values) is `undefined`: the caller keeps its own backoff.
 * Values past MAX_RETRY_AFTER_MS are clamped to it.
 *
 * @example
 * parseRetryAfter("2"); // 2000
 * parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", { date: "Wed, 21 Oct 2015 07:27:30 GMT" }); // 30000
 * parseRetryAfter("soon"); // undefined
 */
export function parseRetryAfter(
  value: string | null | undefined,
  options: { date?: string | null; now?: number } = {},
): number | undefined {
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  if (text.length > 64) return undefined;
  const at = parseHttpDate(text);
  if (at === undefined) return undefined;
  const sent = options.date ? parseHttpDate(options.date.trim()) : undefined;
  const from = sent ?? options.now ?? Date.now();
  return Math.min(Math.max(0, at - from), MAX_RETRY_AFTER_MS);
}

const HTTP_DATE = [
  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT (also "UTC", as Go's time.RFC1123 writes)
  /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} (GMT|UTC)$/,
  // rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT
  /^[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/,
  // asctime-date: Sun Nov  6 08:49:37 1994 (UTC, though it says no zone)
  /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/,
];

function parseHttpDate(text: string): number | undefined {
  const form = HTTP_DATE.findIndex((re) => re.test(text));
  if (form < 0) return undefined;
  const ms = Date.parse(form === 2 ? `${text} GMT` : text.replace(/ UTC$/, " GMT"));
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Runs a provider call with a per-attempt timeout and bounded, jittered exponential
 * backoff. `classify` turns the vendor error into a typed ProviderError; only throttling,
 * unavailability and timeouts are retried. The last error is thrown with the attempt count.
 *
 * When the classified error carries the server's requested wait (`details.retryAfterMs`,
 * from `Retry-After`; see parseRetryAfter), the next attempt waits at least that long
 * (plus jitter, never more than `maxDelayMs`). When the server asks for more than
 * `maxDelayMs`, no further attempt is made: retrying earlier than asked is a wasted call
 * that the server refuses again, so the error is thrown at once, saying how long the server
 * asked to wait, with `details.retryAfterMs` for a caller that schedules its own retry.
 *
 * The signal passed to `call` aborts when the attempt times out; pass it to the SDK.
 */
export async function withRetry<T>(
  target: RetryTarget,
  call: (signal: AbortSignal) => Promise<T>,
  classify: (error: unknown) => EnvelopeError,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 3);
  const base = options.baseDelayMs ?? 50;
  const cap = Math.min(options.maxDelayMs ?? 2000, MAX_TIMER_MS);
  const timeoutMs = options.timeoutMs ?? 10_000;
  let last: EnvelopeError | undefined;
  let made = 0;
  let tooLong = false;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    made = attempt;
    try {
      return await withTimeout(target, timeoutMs, call);
    } catch (error) {
      last = EnvelopeError.isInstance(error) ? error : classify(error);
      if (!RETRYABLE.has(last.code) || attempt === attempts) break;
      const backoff = Math.min(cap, base * 2 ** (attempt - 1));
      const asked = retryAfterOf(last);
      if (asked !== undefined && asked > cap) {
        tooLong = true;
        break;
      }
      // At least what the server asked for, spread by jitter so that many clients told the
      // same Retry-After do not all come back in the same instant; never past the cap.
      const delay =
        asked === undefined
          ? Math.random() * backoff
          : asked + Math.random() * Math.min(backoff, cap - asked);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  const final = last!;
  if (!RETRYABLE.has(final.code)) throw final;
  const asked = retryAfterOf(final);
  const waitSaid = asked ? ` The server asked to wait ${seconds(asked)} (Retry-After)` : "";
  const message = tooLong
    ? `${final.message}${waitSaid}, longer than retry.maxDelayMs (${cap} ms), so no further attempt was made: an earlier retry would only be refused again. Gave up after ${made} attempt(s); retry after that wait (details.retryAfterMs), or raise retry.maxDelayMs to let the provider wait that long.`
    : `${final.message}${waitSaid ? `${waitSaid}.` : ""} Gave up after ${made} attempt(s); ${GAVE_UP_ADVICE[final.code]}`;
  throw new ProviderError(final.code, message, {
    cause: final.cause ?? final,
    details: { ...final.details, attempts: made },
  });
}

function retryAfterOf(error: EnvelopeError): number | undefined {
  const ms = error.details.retryAfterMs;
  return typeof ms === "number" && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

async function withTimeout<T>(
  target: RetryTarget,
  timeoutMs: number,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // Reject first: an SDK that honours the signal rejects its own call with an
      // AbortError as soon as abort() runs, and that must not win the race.
      reject(
        new ProviderError(
          "ENVELOPE_KMS_TIMEOUT",
          `${target.provider} ${target.operation} for key "${target.keyRef}" timed out after ${timeoutMs} ms. Check network access to the KMS, or raise the provider's timeoutMs.`,
          {
            details: {
              provider: target.provider,
              keyRef: target.keyRef,
              operation: target.operation,
            },
          },
        ),
      );
      controller.abort();
    }, timeoutMs);
  });
  try {
    return await Promise.race([call(controller.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Builds a ProviderError that names provider, key and operation, with a fix. `extra` adds
 * details, e.g. `{ retryAfterMs }` from the server's Retry-After, which withRetry honours.
 */
export function providerError(
  code: ConstructorParameters<typeof ProviderError>[0],
  target: RetryTarget,
  problem: string,
  fix: string,
  cause?: unknown,
  extra?: ErrorDetails,
): ProviderError {
  return new ProviderError(
    code,
    `${target.provider} ${target.operation} for key "${target.keyRef}" failed: ${problem}. ${fix}`,
    {
      cause,
      details: {
        ...extra,
        provider: target.provider,
        keyRef: target.keyRef,
        operation: target.operation,
      },
    },
  );
}
