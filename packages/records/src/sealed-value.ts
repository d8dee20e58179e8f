import { decodeEnvelope, fromText, isTextForm } from "@envelope/core";

/**
 * True when `value` is a well-formed envelope as the ORM integrations store it: the `ev1:`
 * text form or the binary form, decoded by core's strict decoder (a prefix alone is not
 * enough: `"ev1:plaintext"` is refused). Says nothing of the context it is bound to.
 */
export function isWellFormedSealed(value: unknown): boolean {
  try {
    if (typeof value === "string") {
      if (!isTextForm(value)) return false;
      decodeEnvelope(fromText(value));
      return true;
    }
    if (value instanceof Uint8Array) {
      decodeEnvelope(value);
      return true;
    }
  } catch {
    // A FormatError: not an envelope.
  }
  return false;
}
