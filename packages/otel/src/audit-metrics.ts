import type { AuditEvent, AuditHook } from "@envelope/core";
import type { Attributes } from "@opentelemetry/api";
import type { Instruments } from "./instruments.js";
import { codeLabel, type KeyRefLabels } from "./labels.js";
import { ATTR } from "./names.js";

/**
 * An audit hook that turns each event into one count and one duration. Audit events carry
 * ids, timings and an error code only; this copies the ones that make useful labels and
 * nothing else, so a field added to AuditEvent later does not reach an exporter unseen.
 */
export function auditRecorder(instruments: Instruments, keyRefs: KeyRefLabels): AuditHook {
  return (event: AuditEvent) => {
    const attributes: Attributes = {
      [ATTR.operation]: event.operation,
      [ATTR.provider]: event.provider,
      [ATTR.keyRef]: keyRefs.label(event.keyRef),
      [ATTR.outcome]: event.outcome,
    };
    if (event.outcome === "failure") {
      // The code is re-checked: an AuditEvent is a plain object anyone can build.
      attributes[ATTR.errorType] = codeLabel(event.errorCode);
    }
    // Split warm from cold decrypts (µs vs ms) and fresh from reused data keys.
    if (event.operation === "decrypt") attributes[ATTR.cacheHit] = event.cacheHit === true;
    if (event.operation === "encrypt") {
      attributes[ATTR.dataKeyReused] = event.dataKeyReused === true;
    }
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
