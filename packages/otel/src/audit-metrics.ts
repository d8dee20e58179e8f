import type { AuditEvent, AuditHook } from "@envelope/core";
import type { Attributes } from "@opentelemetry/api";
import { AttributeCache } from "./attribute-cache.js";
import type { Instruments } from "./instruments.js";
import { codeLabel, type KeyRefLabels } from "./labels.js";
import { ATTR } from "./names.js";

/**
 * An audit hook that turns each event into one count and one duration. Audit events carry
 * ids, timings and an error code only; this copies the ones that make useful labels and
 * nothing else, so a field added to AuditEvent later does not reach an exporter unseen.
 */
export function auditRecorder(instruments: Instruments, keyRefs: KeyRefLabels): AuditHook {
  const cache = new AttributeCache();
  return (event: AuditEvent) => {
    const { operation, provider, keyRef, outcome } = event;
    const failed = outcome === "failure";
    // Split warm from cold decrypts (µs vs ms) and fresh from reused data keys.
    const flag =
      operation === "decrypt"
        ? event.cacheHit === true
        : operation === "encrypt"
          ? event.dataKeyReused === true
          : undefined;
    const code = failed ? event.errorCode : undefined;
    const key = `${operation}\u0000${provider}\u0000${keyRef}\u0000${outcome}\u0000${code}\u0000${flag}`;
    const attributes = cache.get(key, () => {
      const built: Attributes = {
        [ATTR.operation]: operation,
        [ATTR.provider]: provider,
        [ATTR.keyRef]: keyRefs.label(keyRef),
        [ATTR.outcome]: outcome,
      };
      // The code is re-checked: an AuditEvent is a plain object anyone can build.
      if (failed) built[ATTR.errorType] = codeLabel(code);
      if (operation === "decrypt") built[ATTR.cacheHit] = flag;
      if (operation === "encrypt") built[ATTR.dataKeyReused] = flag;
      return built;
    });
    instruments.operations.add(1, attributes);
    instruments.operationDuration.record(Math.max(0, event.durationMs) / 1000, attributes);
  };
}

/**
 * Chains the caller's own audit hook (if any) before the recorder; a throw in one does not
 * keep the other from running (core ignores hook errors, but only around the whole hook).
 */
export function chainAudit(first: AuditHook | undefined, second: AuditHook): AuditHook {
  if (!first) return second;
  return (event) => {
    try {
      first(event);
    } finally {
      second(event);
    }
  };
}
