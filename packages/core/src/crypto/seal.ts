import {
  FLAG_CONTEXT_STORED,
  FLAG_PADDED,
  MESSAGE_ID_LENGTH,
  SIGNATURE_LENGTH,
  SUITE_AES256GCM_HKDF_SHA256_COMMIT,
  SUITE_AES256GCM_SHA512_COMMIT,
  SUITE_SIGNED_ED25519,
  TAG_LENGTH,
} from "../format/constants.js";
import { encodeEnvelopeWith } from "../format/encode.js";
import { type PadRule, paddedLength, paddingTail } from "../format/padding.js";
import { bodyAad } from "./aad.js";
import { openBody, sealBodyInto } from "./aead.js";
import { deriveMessageKeys } from "./kdf.js";
import type { EncryptionMaterials } from "./materials.js";
import { randomPublicBytes } from "./random.js";
import { signSealedInPlace } from "./signature.js";
import type { SigningKey } from "./signing-keys.js";

/**
 * Seals one value under a data key: fresh message id, derived key, header + body in one
 * buffer. With `signer` the value is suite 0x02, signed in place once the body is written.
 * Otherwise suite 0x03 when the materials or the client (`preferred`) ask for it
 * (docs/FORMAT.md §15), else 0x01.
 * With `pad` the value is padded to its bucket and flags bit 2 is set (docs/FORMAT.md
 * §2.3); callers never pass `pad` for a stream key envelope.
 */
export function seal(
  materials: EncryptionMaterials,
  data: Uint8Array,
  flags: number,
  canonical: Buffer,
  signer?: SigningKey,
  pad?: PadRule,
  preferred: number = SUITE_AES256GCM_HKDF_SHA256_COMMIT,
): Buffer {
  const messageId = randomPublicBytes(MESSAGE_ID_LENGTH);
  const length = pad ? paddedLength(data.length, pad) : data.length;
  const tail = pad ? paddingTail(data.length, length) : undefined;
  if (pad) flags |= FLAG_PADDED;
  // Signed mode wins over suite 0x03: there is no signed variant of it (FORMAT.md §15.4).
  const suite = signer
    ? SUITE_SIGNED_ED25519
    : materials.suite === SUITE_AES256GCM_SHA512_COMMIT ||
        preferred === SUITE_AES256GCM_SHA512_COMMIT
      ? SUITE_AES256GCM_SHA512_COMMIT
      : SUITE_AES256GCM_HKDF_SHA256_COMMIT;
  const keys = deriveMessageKeys(materials.dataKey, messageId, suite);
  try {
    const aad = bodyAad(flags, messageId, canonical, suite);
    const header = {
      version: 1,
      suite,
      flags,
      messageId,
      commitment: keys.commitment,
      entries: materials.entries,
      storedContext: flags & FLAG_CONTEXT_STORED ? canonical : undefined,
      ...(signer
        ? { signerKey: signer.publicKey, signature: new Uint8Array(SIGNATURE_LENGTH) }
        : {}),
    };
    const out = encodeEnvelopeWith(header, length, (out, offset) =>
      sealBodyInto(keys.encryptionKey, data, aad, out, offset, tail),
    );
    if (signer) signSealedInPlace(out, signer, canonical, length + TAG_LENGTH);
    return out;
  } finally {
    keys.encryptionKey.fill(0);
  }
}

/** Opens a body and zeroes the message key afterwards. */
export function openAndZero(key: Buffer, body: Uint8Array, aad: Uint8Array): Buffer {
  try {
    return openBody(key, body, aad);
  } finally {
    key.fill(0);
  }
}

/** Bytes as a latin1 string: a cheap map key for message ids and commitments. */
export function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
}
