import { performance } from "node:perf_hooks";
import { randomBytesPooled } from "./crypto/random.js";
import { secretCopy } from "./crypto/secret-bytes.js";
import { ConfigError, EnvelopeError, ProviderError } from "./errors.js";
import { DATA_KEY_LENGTH } from "./format/constants.js";
import type { WrappedKey } from "./format/envelope.js";
import { delegatesReadiness } from "./providers/capabilities.js";
import { checkDataKey, checkReturnedEntry, takeDataKey } from "./providers/checks.js";
import type {
  KeyProvider,
  KeyRequest,
  ReadinessDelegation,
  ReadinessTargets,
} from "./providers/types.js";

/**
 * The context every canary is wrapped under. A KMS that binds context (AWS) sees this
 * pair in its audit log, so an operator can tell readiness probes from application traffic.
 */
export const READINESS_CONTEXT = Object.freeze({ "envelope:check": "readiness" });

export interface ReadinessOptions {
  /** Per provider and step (probe, wrap, unwrap), 1 to 2 147 483 647. Default 10 000 ms. */
  timeoutMs?: number;
}

/** The longest timer Node keeps: a larger delay fires after 1 ms. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** What a check runs for a provider: a read first (probe), then the canary's two calls. */
export type ReadinessStep = "probe" | "wrap" | "unwrap";

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
  /**
   * The provider that wrapped and unwrapped the canary in this one's place (hierarchical
   * mode: its master KMS key; `probe` read its key store). Absent when it was this one.
   */
  via?: { provider: string; keyRef: string };
  /** Milliseconds per step that ran. */
  latencyMs: { probe?: number; wrap?: number; unwrap?: number };
  /** Why the status is not `ok`: a stable code, the step and a message (never key material). */
  error?: { code: string; step: ReadinessStep; message: string };
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
 * canary. Each provider gets the call `encrypt` makes to it (GenerateDataKey for the first
 * encrypt key where it has one, wrap for the others), so the permissions checked are the
 * ones traffic needs. A provider that delegates (hierarchical mode) is checked through its
 * master, after its probe, and its older masters as decrypt keys.
 */
export async function checkReadiness(
  encryptors: readonly KeyProvider[],
  decryptors: readonly KeyProvider[],
  options: ReadinessOptions = {},
): Promise<ReadinessReport> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `check: timeoutMs must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS} (got ${String(timeoutMs)}).`,
      { details: { field: "timeoutMs" } },
    );
  }
  // What each delegating provider names, asked once (a throw is reported on its row).
  const delegated = new Map<KeyProvider, ReadinessTargets | Thrown>();
  for (const p of [...encryptors, ...decryptors]) {
    if (delegatesReadiness(p) && !delegated.has(p)) delegated.set(p, targetsOf(p));
  }
  // Each provider once, in order: the encrypt keys, then the decrypt-only ones, then the
  // older masters of delegating providers that are not configured themselves.
  const decryptOnly: KeyProvider[] = [];
  const add = (p: KeyProvider) => {
    if (!encryptors.includes(p) && !decryptOnly.includes(p)) decryptOnly.push(p);
  };
  for (const p of decryptors) add(p);
  for (const targets of delegated.values()) {
    if (!(targets instanceof Thrown)) for (const older of targets.decrypt ?? []) add(older);
  }
  const check = (p: KeyProvider, use: Use) => checkOne(p, use, delegated.get(p), timeoutMs);
  const providers = await Promise.all([
    // The first encrypt key generates the data key (where it can); encrypt wraps it with the rest.
    ...encryptors.map((p, i) => check(p, i === 0 ? "generate" : "wrap")),
    ...decryptOnly.map((p) => check(p, "decrypt")),
  ]);
  return {
    ok: providers.every((p) => p.status !== "failed"),
    checkedAt: new Date().toISOString(),
    providers,
  };
}

/** How a check wraps the canary: as `encrypt` does (its first key generates), or as a decrypt key. */
type Use = "generate" | "wrap" | "decrypt";

/** What a provider's `readinessTargets()` threw. */
class Thrown {
  constructor(readonly error: unknown) {}
}

function targetsOf(provider: KeyProvider & ReadinessDelegation): ReadinessTargets | Thrown {
  try {
    return provider.readinessTargets();
  } catch (error) {
    return new Thrown(error);
  }
}

async function checkOne(
  configured: KeyProvider,
  use: Use,
  targets: ReadinessTargets | Thrown | undefined,
  timeoutMs: number,
): Promise<ProviderReadiness> {
  const role = use === "decrypt" ? "decrypt" : "encrypt";
  const result: ProviderReadiness = {
    provider: configured.id,
    keyRef: configured.keyRef,
    role,
    status: "ok",
    latencyMs: {},
  };
  if (targets instanceof Thrown) return fail(result, "probe", targets.error, "failed");
  // A delegating provider makes its master generate each key it creates (an intermediate
  // key): the master gets the same call here, whatever the provider's place in the list.
  const provider = targets?.master ?? configured;
  if (targets) result.via = { provider: provider.id, keyRef: provider.keyRef };
  const how: Use = targets && use === "wrap" ? "generate" : use;
  if (targets?.probe) {
    const started = performance.now();
    try {
      // A probe that throws at once is reported like one that rejects.
      await withTimeout((async () => targets.probe!())(), timeoutMs, configured);
      result.latencyMs.probe = elapsed(started);
    } catch (error) {
      return fail(result, "probe", error, "failed");
    }
  }
  const request: KeyRequest = { context: READINESS_CONTEXT };
  let canary: Buffer | undefined;
  let entry: WrappedKey;
  const started = performance.now();
  const wrapping = wrapCanary(provider, how, request);
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
  use: Use,
  request: KeyRequest,
): Promise<{ canary: Buffer; entry: WrappedKey }> {
  if (use === "generate" && provider.generateDataKey) {
    const generated = await provider.generateDataKey(request);
    checkDataKey(generated?.dataKey, provider);
    const canary = secretCopy(generated.dataKey);
    generated.dataKey.fill(0);
    try {
      checkReturnedEntry(generated.entry, provider);
    } catch (error) {
      canary.fill(0);
      throw error;
    }
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
  step: ReadinessStep,
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
