import { FORMAT_VERSION, SUITE_AES256GCM_HKDF_SHA256_COMMIT } from "../format/constants.js";

/**
 * Body AAD = version || suite || flags || message id || canonical context. The
 * wrapped-key entries are deliberately absent: rewrap replaces them without touching
 * the body. The suite byte is the value's own (0x01, or 0x02 when signed), so a signed
 * body can never be opened as an unsigned one with its signature stripped.
 */
export function bodyAad(
  flags: number,
  messageId: Uint8Array,
  canonicalContext: Uint8Array,
  suite: number = SUITE_AES256GCM_HKDF_SHA256_COMMIT,
): Buffer {
  const aad = Buffer.allocUnsafe(3 + messageId.length + canonicalContext.length);
  aad[0] = FORMAT_VERSION;
  aad[1] = suite;
  aad[2] = flags;
  aad.set(messageId, 3);
  aad.set(canonicalContext, 3 + messageId.length);
  return aad;
}
