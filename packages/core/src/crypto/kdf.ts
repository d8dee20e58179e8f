import { hkdfSync, timingSafeEqual } from "node:crypto";
import { COMMITMENT_LENGTH, DATA_KEY_LENGTH, HKDF_INFO } from "../format/constants.js";

const INFO = Buffer.from(HKDF_INFO, "ascii");

/** The per-message AES key and the key commitment, both derived from the data key. */
export interface MessageKeys {
  readonly encryptionKey: Buffer;
  readonly commitment: Buffer;
}

/**
 * One HKDF-SHA256 call (salt = message id, info = HKDF_INFO, 64 bytes out): the first
 * 32 bytes are the AES-256-GCM key for this message, the last 32 the commitment. A
 * different data key yields a different commitment, so a wrapped key that unwraps to
 * another data key is caught before any plaintext is released.
 */
export function deriveMessageKeys(dataKey: Uint8Array, messageId: Uint8Array): MessageKeys {
  const okm = Buffer.from(hkdfSync("sha256", dataKey, messageId, INFO, DATA_KEY_LENGTH + COMMITMENT_LENGTH));
  return {
    encryptionKey: okm.subarray(0, DATA_KEY_LENGTH),
    commitment: okm.subarray(DATA_KEY_LENGTH),
  };
}

/** Constant-time comparison of a derived commitment with the stored one. */
export function commitmentMatches(derived: Uint8Array, stored: Uint8Array): boolean {
  return derived.length === stored.length && timingSafeEqual(derived, stored);
}
