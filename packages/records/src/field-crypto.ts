import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import {
  DecryptionError,
  type EncryptionContext,
  type EnvelopeParts,
  encodeContext,
  encodeEnvelope,
  type WrappedKey,
} from "@envelope/core";

// Local copy of the v1 sealing steps of docs/FORMAT.md §5–6 (core keeps them internal).
// Each field is a complete v1 envelope: its own random message id, hence its own HKDF
// key and commitment, under the record's one data key. `envelope.decrypt` opens it.
// A core export `sealWithDataKey(dataKey, entries, plaintext, context)` would remove
// this file.

const HKDF_INFO = Buffer.from("envelope:v1:suite1:key+commitment", "ascii");
const INFO_1 = Buffer.concat([HKDF_INFO, Buffer.of(1)]);
const INFO_2 = Buffer.concat([HKDF_INFO, Buffer.of(2)]);
const NONCE = Buffer.alloc(12);
const TAG_LENGTH = 16;
const MESSAGE_ID_LENGTH = 32;

/** HKDF-SHA256(ikm = data key, salt = message id, info, L = 64): AES key || commitment. */
function deriveKeys(
  dataKey: Uint8Array,
  messageId: Uint8Array,
): { key: Buffer; commitment: Buffer } {
  const prk = createHmac("sha256", messageId).update(dataKey).digest();
  const key = createHmac("sha256", prk).update(INFO_1).digest();
  const commitment = createHmac("sha256", prk).update(key).update(INFO_2).digest();
  prk.fill(0);
  return { key, commitment };
}

/** AAD = version || suite || flags || message id || canonical context (flags = 0). */
function aad(messageId: Uint8Array, context: EncryptionContext): Buffer {
  return Buffer.concat([Buffer.of(1, 1, 0), messageId, encodeContext(context)]);
}

/** Seals one value as a v1 envelope (context not stored) under an existing data key. */
export function sealWithDataKey(
  dataKey: Uint8Array,
  entries: readonly WrappedKey[],
  plaintext: Uint8Array,
  context: EncryptionContext,
): Buffer {
  const messageId = randomBytes(MESSAGE_ID_LENGTH);
  const { key, commitment } = deriveKeys(dataKey, messageId);
  try {
    const cipher = createCipheriv("aes-256-gcm", key, NONCE, { authTagLength: TAG_LENGTH });
    cipher.setAAD(aad(messageId, context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return encodeEnvelope({
      version: 1,
      suite: 1,
      flags: 0,
      messageId,
      commitment,
      entries,
      storedContext: undefined,
      body,
    });
  } finally {
    key.fill(0);
  }
}

/**
 * Opens a parsed v1 envelope with a data key already unwrapped for the same entries:
 * the commitment is checked first (a data key for other entries is refused before any
 * AES), then GCM with the field's context as AAD.
 */
export function openWithDataKey(
  dataKey: Uint8Array,
  parts: EnvelopeParts,
  context: EncryptionContext,
): Buffer {
  const { key, commitment } = deriveKeys(dataKey, parts.messageId);
  try {
    if (!timingSafeEqual(commitment, parts.commitment)) {
      throw new DecryptionError(
        "ENVELOPE_COMMITMENT_MISMATCH",
        "Could not decrypt: the record's data key does not match this value's key commitment. The value was altered or copied from another record.",
      );
    }
    const stored = parts.storedContext ? Buffer.from(parts.storedContext) : undefined;
    const canonical = encodeContext(context);
    if (stored && !stored.equals(canonical)) {
      throw new DecryptionError(
        "ENVELOPE_CONTEXT_MISMATCH",
        "The encryption context of this value does not match its table, column and id. The value was probably copied from another row or column.",
      );
    }
    const additional = Buffer.concat([
      Buffer.of(parts.version, parts.suite, parts.flags),
      parts.messageId,
      canonical,
    ]);
    const split = parts.body.length - TAG_LENGTH;
    const decipher = createDecipheriv("aes-256-gcm", key, NONCE, { authTagLength: TAG_LENGTH });
    decipher.setAAD(additional);
    decipher.setAuthTag(parts.body.subarray(split));
    const head = decipher.update(parts.body.subarray(0, split));
    try {
      return Buffer.concat([head, decipher.final()]);
    } catch (cause) {
      head.fill(0);
      throw new DecryptionError(
        "ENVELOPE_DECRYPT_FAILED",
        "Could not decrypt: authentication failed. The value was moved from another row or column (its table/column/id differ from the ones it was sealed with), or it was altered.",
        { cause },
      );
    }
  } finally {
    key.fill(0);
  }
}
