import { ConfigError, EnvelopeError, ProviderError } from "../errors.js";

export interface RetryOptions {
  /** Total attempts including the first. Default 3. */
  attempts?: number;
  /** First backoff delay; doubles each retry, with full jitter. Default 50 ms. */
  baseDelayMs?: number;
  /** Cap on one backoff delay. Default 2 s. */
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

/**
 * Runs a provider call with a per-attempt timeout and bounded, jittered exponential
 * backoff. `classify` turns the vendor error into a typed ProviderError; only throttling,
 * unavailability and timeouts are retried. The last error is thrown with the attempt count.
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
  const cap = options.maxDelayMs ?? 2000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  let last: EnvelopeError | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await withTimeout(target, timeoutMs, call);
    } catch (error) {
      last = EnvelopeError.isInstance(error) ? error : classify(error);
      if (!RETRYABLE.has(last.code) || attempt === attempts) break;
      const delay = Math.random() * Math.min(cap, base * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  const final = last!;
  if (!RETRYABLE.has(final.code)) throw final;
  throw new ProviderError(
    final.code,
    `${final.message} Gave up after ${attempts} attempt(s); ${GAVE_UP_ADVICE[final.code]}`,
    { cause: final.cause ?? final, details: { ...final.details, attempts } },
  );
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

/** Builds a ProviderError that names provider, key and operation, with a fix. */
export function providerError(
  code: ConstructorParameters<typeof ProviderError>[0],
  target: RetryTarget,
  problem: string,
  fix: string,
  cause?: unknown,
): ProviderError {
  return new ProviderError(
    code,
    `${target.provider} ${target.operation} for key "${target.keyRef}" failed: ${problem}. ${fix}`,
    {
      cause,
      details: { provider: target.provider, keyRef: target.keyRef, operation: target.operation },
    },
  );
}
