import { EnvelopeError, type ErrorCode } from "./errors.js";
import { printable } from "./format/printable.js";

/** One audited operation. Carries ids and timings only, never key material or data. */
export interface AuditEvent {
  readonly operation: "encrypt" | "decrypt" | "rewrap" | "unwrap" | "wrap";
  readonly provider: string;
  readonly keyRef: string;
  /** decrypt / unwrap: whether the data key came from the unwrap cache (or a shared flight). */
  readonly cacheHit?: boolean;
  /** encrypt: whether a data key was reused (opt-in data-key reuse). */
  readonly dataKeyReused?: boolean;
  /**
   * rewrap: true when every new entry was made by a KMS's native rewrap (no data key was
   * wrapped here). Each such entry was then unwrapped once here to check it against the
   * key commitment, so the data key did reach this process for that check. False when a
   * data key was wrapped here, or when every entry was already under its target key.
   */
  readonly native?: boolean;
  readonly durationMs: number;
  readonly outcome: "success" | "failure";
  readonly errorCode?: ErrorCode;
}

/**
 * Receives audit events. Called synchronously; errors thrown by the hook are ignored so
 * that auditing can never corrupt an encrypt or decrypt.
 *
 * @example
 * createEnvelope({ encrypt: "local-rsa:///run/secrets/key.pem", onAudit: (e) => logger.info(e) })
 */
export type AuditHook = (event: AuditEvent) => void;

export function emit(hook: AuditHook | undefined, event: AuditEvent): void {
  if (!hook) return;
  try {
    hook(Object.freeze(event));
  } catch {
    // An audit sink failure must not change the result of a cryptographic operation.
  }
}

/**
 * Builds one audit event; the error, if any, contributes only its code. Fields are set one
 * by one rather than spread: object spread here cost several µs per event (more than a
 * warm decrypt), and every operation builds one while a hook is set.
 */
export function auditEvent(
  operation: AuditEvent["operation"],
  provider: string,
  keyRef: string,
  started: number,
  extra: Partial<AuditEvent>,
  error?: unknown,
): AuditEvent {
  const failed = error !== undefined;
  const event: { -readonly [K in keyof AuditEvent]: AuditEvent[K] } = {
    operation,
    // Both may come from a stored value (an entry's provider id and key reference).
    provider: printable(provider),
    keyRef: printable(keyRef),
    durationMs: performance.now() - started,
    outcome: failed ? "failure" : "success",
  };
  if (extra.cacheHit !== undefined) event.cacheHit = extra.cacheHit;
  if (extra.dataKeyReused !== undefined) event.dataKeyReused = extra.dataKeyReused;
  if (extra.native !== undefined) event.native = extra.native;
  if (failed) {
    event.errorCode = EnvelopeError.isInstance(error) ? error.code : "ENVELOPE_KMS_ERROR";
  }
  return event;
}

/** Who an audit event names: a provider's id and its current key reference. */
interface Audited {
  readonly id: string;
  readonly keyRef: string;
}

/**
 * Times operations for one client's audit hook. Without a hook nothing is measured, so
 * the fast paths pay no `performance.now()` call.
 */
export class Auditor {
  constructor(private readonly hook: AuditHook | undefined) {}

  /** A start time for `event`, or 0 when no one listens. */
  start(): number {
    return this.hook ? performance.now() : 0;
  }

  /** One event for an operation that began at `started` (see `start`). */
  event(
    operation: AuditEvent["operation"],
    provider: Audited | undefined,
    started: number,
    extra: Partial<AuditEvent>,
    error?: unknown,
    keyRef = provider?.keyRef ?? "none",
  ): void {
    if (!this.hook) return;
    emit(this.hook, auditEvent(operation, provider?.id ?? "none", keyRef, started, extra, error));
  }

  /** Runs one provider call and reports it, success or failure; rethrows what it threw. */
  timed<T>(
    operation: AuditEvent["operation"],
    provider: Audited,
    call: () => Promise<T>,
    extra: Partial<AuditEvent> = {},
    keyRef = provider.keyRef,
  ): Promise<T> {
    // Without a hook the call is returned as is: no async frame (a promise and a
    // microtask) around every KMS call.
    if (!this.hook) {
      try {
        return call();
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#timed(operation, provider, call, extra, keyRef);
  }

  async #timed<T>(
    operation: AuditEvent["operation"],
    provider: Audited,
    call: () => Promise<T>,
    extra: Partial<AuditEvent>,
    keyRef: string,
  ): Promise<T> {
    const started = this.start();
    try {
      const result = await call();
      this.event(operation, provider, started, extra, undefined, keyRef);
      return result;
    } catch (error) {
      this.event(operation, provider, started, extra, error, keyRef);
      throw error;
    }
  }
}
