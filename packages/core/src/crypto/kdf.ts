import { createHmac, timingSafeEqual } from "node:crypto";
import { HKDF_INFO } from "../format/constants.js";

const INFO = Buffer.from(HKDF_INFO, "ascii");
const INFO_1 = Buffer.concat([INFO, Buffer.of(1)]);
const INFO_2 = Buffer.concat([INFO, Buffer.of(2)]);

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
  // HKDF-SHA256 (RFC 5869) written out with node's HMAC: byte-for-byte what
  // hkdfSync("sha256", dataKey, messageId, INFO, 64) returns, but ~30% faster, and this
  // runs once per encrypt. A test checks it against hkdfSync.
  const prk = createHmac("sha256", messageId).update(dataKey).digest();
  const t1 = createHmac("sha256", prk).update(INFO_1).digest();
  const t2 = createHmac("sha256", prk).update(t1).update(INFO_2).digest();
  prk.fill(0);
  return { encryptionKey: t1, commitment: t2 };
}

/** Constant-time comparison of a derived commitment with the stored one. */
export function commitmentMatches(derived: Uint8Array, stored: Uint8Array): boolean {
  return derived.length === stored.length && timingSafeEqual(derived, stored);
}
