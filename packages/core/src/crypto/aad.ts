import { FORMAT_VERSION, SUITE_AES256GCM_HKDF_SHA256_COMMIT } from "../format/constants.js";

/**
 * Body AAD = version || suite || flags || message id || canonical context. The
 * wrapped-key entries are deliberately absent: rewrap replaces them without touching
 * the body.
 */
export function bodyAad(
  flags: number,
  messageId: Uint8Array,
  canonicalContext: Uint8Array,
): Buffer {
  const aad = Buffer.allocUnsafe(3 + messageId.length + canonicalContext.length);
  aad[0] = FORMAT_VERSION;
  aad[1] = SUITE_AES256GCM_HKDF_SHA256_COMMIT;
  aad[2] = flags;
  aad.set(messageId, 3);
  aad.set(canonicalContext, 3 + messageId.length);
  return aad;
}
