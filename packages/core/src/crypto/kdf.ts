import * as nodeCrypto from "node:crypto";
import { createHash, createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import {
  DATA_KEY_LENGTH,
  HKDF_INFO,
  MESSAGE_ID_LENGTH,
  SUITE_AES256GCM_SHA512_COMMIT,
  SUITE3_KDF_INFO,
} from "../format/constants.js";

const INFO = Buffer.from(HKDF_INFO, "ascii");
const INFO_1 = Buffer.concat([INFO, Buffer.of(1)]);
const INFO_2 = Buffer.concat([INFO, Buffer.of(2)]);

/** The per-message AES key and the key commitment, both derived from the data key. */
export interface MessageKeys {
  readonly encryptionKey: Buffer;
  readonly commitment: Buffer;
}

/**
 * The 64 bytes of a value's key and commitment, by its suite: HKDF-SHA256 (suites 0x01
 * and 0x02, §5.1) or the one-step SHA-512 KDF (suite 0x03, §15.2). The first 32 bytes
 * are the AES-256-GCM key of this message, the last 32 the commitment. A different data
 * key yields a different commitment, so a wrapped key that unwraps to another data key is
 * caught before any plaintext is released. Callers pass only suites the decoder accepted.
 */
export function deriveMessageKeys(
  dataKey: Uint8Array,
  messageId: Uint8Array,
  // Required, so a call site cannot silently derive a suite-3 value's keys with HKDF.
  suite: number,
): MessageKeys {
  return suite === SUITE_AES256GCM_SHA512_COMMIT
    ? oneStepSha512(dataKey, messageId)
    : hkdfSha256(dataKey, messageId);
}

// Node 24's OpenSSL runs hkdfSync as one native call in ~4 µs, half the cost of three Hmac
// objects; on Node 20 and 22 hkdfSync is 1.5–3× slower than the Hmac objects (measured side
// by side, docs/PERFORMANCE.md). Bun and Deno report a Node version too: they keep the Hmacs.
const nodeMajor = Number(process.versions.node?.split(".")[0] ?? 0);
const nativeHkdfIsFaster =
  nodeMajor >= 24 && process.versions.bun === undefined && !("Deno" in globalThis);

function hkdfSha256(dataKey: Uint8Array, messageId: Uint8Array): MessageKeys {
  return nativeHkdfIsFaster ? hkdfNative(dataKey, messageId) : hkdfHmacs(dataKey, messageId);
}

function hkdfNative(dataKey: Uint8Array, messageId: Uint8Array): MessageKeys {
  const okm = Buffer.from(hkdfSync("sha256", dataKey, messageId, INFO, 64));
  return { encryptionKey: okm.subarray(0, 32), commitment: okm.subarray(32, 64) };
}

/** HKDF-SHA256 (RFC 5869) written out with node's HMAC; a test checks it against hkdfSync. */
export function hkdfHmacs(dataKey: Uint8Array, messageId: Uint8Array): MessageKeys {
  const prk = createHmac("sha256", messageId).update(dataKey).digest();
  const t1 = createHmac("sha256", prk).update(INFO_1).digest();
  const t2 = createHmac("sha256", prk).update(t1).update(INFO_2).digest();
  prk.fill(0);
  return { encryptionKey: t1, commitment: t2 };
}

// Suite 0x03 input: u32 counter 1 || data key || info || message id = 101 bytes, one
// SHA-512 block. One reused buffer: the derivation is synchronous, so no call can see
// another's bytes, and the data key is zeroed before returning.
const S3_KEY_AT = 4;
const S3_ID_AT = S3_KEY_AT + DATA_KEY_LENGTH + SUITE3_KDF_INFO.length;
const s3Input = Buffer.alloc(S3_ID_AT + MESSAGE_ID_LENGTH);
s3Input.writeUInt32BE(1, 0);
s3Input.write(SUITE3_KDF_INFO, S3_KEY_AT + DATA_KEY_LENGTH, "ascii");

// `crypto.hash` (Node >= 20.12) is one native call; an Hmac or Hash object costs ~1 µs
// more to create and feed, which is most of a derivation.
const oneShot: (data: Buffer) => Buffer =
  typeof nodeCrypto.hash === "function"
    ? (data) => nodeCrypto.hash("sha512", data, "buffer")
    : (data) => createHash("sha512").update(data).digest();

/** NIST SP 800-56C rev. 2 one-step KDF, H = SHA-512, one iteration (FORMAT.md §15.2). */
function oneStepSha512(dataKey: Uint8Array, messageId: Uint8Array): MessageKeys {
  s3Input.set(dataKey, S3_KEY_AT);
  s3Input.set(messageId, S3_ID_AT);
  let okm: Buffer;
  try {
    okm = oneShot(s3Input);
  } finally {
    s3Input.fill(0, S3_KEY_AT, S3_KEY_AT + DATA_KEY_LENGTH);
  }
  // Two views of one 64-byte buffer: zeroing the key leaves the (public) commitment.
  return { encryptionKey: okm.subarray(0, 32), commitment: okm.subarray(32, 64) };
}

/** Constant-time comparison of a derived commitment with the stored one. */
export function commitmentMatches(derived: Uint8Array, stored: Uint8Array): boolean {
  return derived.length === stored.length && timingSafeEqual(derived, stored);
}
