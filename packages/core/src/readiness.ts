import { performance } from "node:perf_hooks";
import { randomBytesPooled } from "./crypto/random.js";
import { secretCopy } from "./crypto/secret-bytes.js";
import { ConfigError, EnvelopeError, ProviderError } from "./errors.js";
import { DATA_KEY_LENGTH } from "./format/constants.js";
import type { WrappedKey } from "./format/envelope.js";
import { checkDataKey, checkReturnedEntry, takeDataKey } from "./providers/checks.js";
import type { KeyProvider, KeyRequest } from "./providers/types.js";

/**
 * The context every canary is wrapped under. A KMS that binds context (AWS) sees this
 * pair in its audit log, so an operator can tell readiness probes from application traffic.
 */
export const READINESS_CONTEXT = Object.freeze({ "envelope:check": "readiness" });

export interface ReadinessOptions {
  /** Per provider and step (wrap, unwrap). Default 10 000 ms. */
  timeoutMs?: number;
}

/**
 * - `ok`: wrapped and unwrapped the canary (or, for an encrypt-only key, wrapped it).
 * - `degraded`: usable for what the config asks but not fully proven: an encrypt-only
 *   `encrypt` key (cannot decrypt by design), or a decrypt-only key whose KMS refused to
 *   wrap the canary, so its unwrap could not be tried. A `decrypt` key that cannot decrypt
 *   (given as a public key only) is `failed`: it is there to read old data.
 * - `failed`: the provider cannot do its job; `error` says why.
 */
export type ReadinessStatus = "ok" | "degraded" | "failed";

export interface ProviderReadiness {
  provider: string;
  keyRef: string;
  /** `encrypt` providers must wrap and unwrap; `decrypt`-only ones are kept to read old data. */
  role: "encrypt" | "decrypt";
  status: ReadinessStatus;
  /** Milliseconds per step that ran. */
  latencyMs: { wrap?: number; unwrap?: number };
  /** Why the status is not `ok`: a stable code, the step and a message (never key material). */
  error?: { code: string; step: "wrap" | "unwrap"; message: string };
}

export interface ReadinessReport {
  /** False when any provider `failed`. */
  ok: boolean;
  checkedAt: string;
  providers: ProviderReadiness[];
}

/**
 * Wraps a fresh random canary data key with each provider and unwraps it again, in
 * parallel across providers. Touches no application data, caches nothing, and zeroes the
 * canary. Encrypt providers use the same call as `encrypt` (GenerateDataKey where the
 * provider has it), so the permissions checked are the ones traffic needs.
 */
export async function checkReadiness(
  encryptors: readonly KeyProvider[],
  decryptors: readonly KeyProvider[],
  options: ReadinessOptions = {},
): Promise<ReadinessReport> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `check: timeoutMs must be a whole number of milliseconds ≥ 1 (got ${String(timeoutMs)}).`,
      { details: { field: "timeoutMs" } },
    );
  }
  const decryptOnly = decryptors.filter((p) => !encryptors.includes(p));
  const providers = await Promise.all([
    ...encryptors.map((p) => checkOne(p, "encrypt", timeoutMs)),
    ...decryptOnly.map((p) => checkOne(p, "decrypt", timeoutMs)),
  ]);
  return {
    ok: providers.every((p) => p.status !== "failed"),
    checkedAt: new Date().toISOString(),
    providers,
  };
}

async function checkOne(
  provider: KeyProvider,
  role: "encrypt" | "decrypt",
  timeoutMs: number,
): Promise<ProviderReadiness> {
  const result: ProviderReadiness = {
    provider: provider.id,
    keyRef: provider.keyRef,
    role,
    status: "ok",
    latencyMs: {},
  };
  const request: KeyRequest = { context: READINESS_CONTEXT };
  let canary: Buffer | undefined;
  let entry: WrappedKey;
  const started = performance.now();
  const wrapping = wrapCanary(provider, role, request);
  try {
    ({ canary, entry } = await withTimeout(wrapping, timeoutMs, provider));
    result.latencyMs.wrap = elapsed(started);
  } catch (error) {
    zeroWhenLate(wrapping, (late) => late.canary);
    // A decrypt-only key may sit behind a role that may only decrypt: not a failure.
    const denied = role === "decrypt" && codeOf(error) === "ENVELOPE_KMS_ACCESS_DENIED";
    return fail(result, "wrap", error, denied ? "degraded" : "failed");
  }
  // A provider that throws at once is reported like one that rejects.
  const unwrapping = (async () => provider.unwrap(entry, request))();
  try {
    const started = performance.now();
    const unwrapped = takeDataKey(await withTimeout(unwrapping, timeoutMs, provider));
    result.latencyMs.unwrap = elapsed(started);
    const same = unwrapped.equals(canary);
    unwrapped.fill(0);
    if (!same) {
      const error = new ProviderError(
        "ENVELOPE_PROVIDER_CONTRACT",
        `${provider.id} unwrapped the readiness canary to a different data key: the provider or its KMS is broken. Do not use it until this is fixed.`,
        { details: { provider: provider.id, keyRef: provider.keyRef, operation: "unwrap" } },
      );
      return fail(result, "unwrap", error, "failed");
    }
    return result;
  } catch (error) {
    zeroWhenLate(unwrapping, (late) => late);
    // An encrypt-only key is fine for encrypting; a key kept to decrypt old data that
    // cannot decrypt (its public half alone) reads nothing: failed.
    const encryptOnly = role === "encrypt" && codeOf(error) === "ENVELOPE_ENCRYPT_ONLY";
    return fail(result, "unwrap", error, encryptOnly ? "degraded" : "failed");
  } finally {
    canary?.fill(0);
  }
}

/** A step given up on (timeout, error): the canary the KMS returns later is zeroed then. */
function zeroWhenLate<T>(step: Promise<T>, canaryOf: (late: T) => unknown): void {
  step.then(
    (late) => {
      const canary = canaryOf(late);
      if (canary instanceof Uint8Array) canary.fill(0);
    },
    () => {},
  );
}

async function wrapCanary(
  provider: KeyProvider,
  role: "encrypt" | "decrypt",
  request: KeyRequest,
): Promise<{ canary: Buffer; entry: WrappedKey }> {
  if (role === "encrypt" && provider.generateDataKey) {
    const generated = await provider.generateDataKey(request);
    checkDataKey(generated?.dataKey, provider);
    const canary = secretCopy(generated.dataKey);
    generated.dataKey.fill(0);
    checkReturnedEntry(generated.entry, provider);
    return { canary, entry: generated.entry };
  }
  const canary = randomBytesPooled(DATA_KEY_LENGTH);
  try {
    const entry = await provider.wrap(canary, request);
    checkReturnedEntry(entry, provider);
    return { canary, entry };
  } catch (error) {
    canary.fill(0);
    throw error;
  }
}

function fail(
  result: ProviderReadiness,
  step: "wrap" | "unwrap",
  error: unknown,
  status: ReadinessStatus,
): ProviderReadiness {
  result.status = status;
  result.error = EnvelopeError.isInstance(error)
    ? { code: error.code, step, message: error.message }
    : {
        code: "ENVELOPE_KMS_ERROR",
        step,
        message: `${result.provider} ${step} threw an untyped error (${error instanceof Error ? error.name : typeof error}); the provider should map it to a typed error.`,
      };
  return result;
}

function withTimeout<T>(promise: Promise<T>, ms: number, provider: KeyProvider): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ProviderError(
            "ENVELOPE_KMS_TIMEOUT",
            `${provider.id} did not answer the readiness check within ${ms} ms. Check the network path to the KMS, or raise timeoutMs.`,
            { details: { provider: provider.id, keyRef: provider.keyRef } },
          ),
        ),
      ms,
    );
    timer.unref?.();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const codeOf = (error: unknown) => (EnvelopeError.isInstance(error) ? error.code : undefined);
const elapsed = (started: number) => Math.round((performance.now() - started) * 100) / 100;
