import { EnvelopeError } from "@envelope/core";
import { printable } from "@envelope/core/internal";

/** The key-reference label given to references past the `maxKeyRefs` limit. */
export const OTHER_KEY_REF = "_other";

/** The code of an error that is not an Envelope error (the audit events use the same). */
export const UNTYPED_ERROR = "ENVELOPE_KMS_ERROR";

// Above core's own cap (200 + a length note), so a reference core already escaped and cut
// for an audit event is not cut a second time.
const KEY_REF_LABEL_LENGTH = 256;
// Error codes are a fixed set of constants; anything else is reported as untyped.
const ERROR_CODE = /^ENVELOPE_[A-Z0-9_]{1,60}$/;

/**
 * Key references as metric labels. An entry's key reference is read from a stored value,
 * which an attacker who can write to the database chooses; every distinct label value is a
 * new time series, so past `max` distinct references the rest share one label,
 * `_other`. The references of the configured keys are kept apart (`trust`): planted
 * references read first cannot take their labels. The references kept are escaped and
 * capped like everywhere else they show.
 */
export class KeyRefLabels {
  private readonly seen = new Set<string>();
  private readonly trusted = new Set<string>();

  constructor(private readonly max: number) {}

  label(keyRef: string): string {
    const safe = printable(String(keyRef), KEY_REF_LABEL_LENGTH);
    if (this.trusted.has(safe) || this.seen.has(safe)) return safe;
    if (this.seen.size >= this.max) return OTHER_KEY_REF;
    this.seen.add(safe);
    return safe;
  }

  /**
   * A reference of a configured key (from the provider, never from a stored value): it
   * always keeps its own label and takes none of the `max` slots. Bounded as well, since
   * a provider's reference changes with each key version it is refreshed to.
   */
  trust(keyRef: string): void {
    if (keyRef !== "" && this.trusted.size < TRUSTED_MAX) {
      this.trusted.add(printable(String(keyRef), KEY_REF_LABEL_LENGTH));
    }
  }
}

// Configured keys and the versions they rotate through in one process's life.
const TRUSTED_MAX = 1000;

/** A key reference as a span attribute: escaped and capped (spans make no time series). */
export function keyRefAttribute(keyRef: string): string {
  return printable(String(keyRef), KEY_REF_LABEL_LENGTH);
}

/** The stable code of an error, never its message (messages can quote vendor responses). */
export function errorCode(error: unknown): string {
  return EnvelopeError.isInstance(error)
    ? codeLabel((error as { code: unknown }).code)
    : UNTYPED_ERROR;
}

/** An error code as a label: one of the `ENVELOPE_*` constants, or the untyped code. */
export function codeLabel(code: unknown): string {
  return typeof code === "string" && ERROR_CODE.test(code) ? code : UNTYPED_ERROR;
}
