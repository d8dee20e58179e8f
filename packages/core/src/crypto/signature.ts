import { createHash, type KeyObject, verify } from "node:crypto";
import { DecryptionError } from "../errors.js";
import {
  FORMAT_VERSION,
  MESSAGE_ID_LENGTH,
  OFFSET_COMMITMENT,
  OFFSET_SIGNATURE,
  OFFSET_SIGNER_KEY,
  SIGNATURE_DOMAIN,
  SIGNATURE_LENGTH,
  SIGNER_KEY_LENGTH,
  SUITE_SIGNED_ED25519,
  TAG_LENGTH,
} from "../format/constants.js";
import type { EnvelopeParts } from "../format/envelope.js";
import { isWeakEd25519Key, publicKeyFromRaw } from "./ed25519.js";
import type { SigningKey, TrustedSigners } from "./signing-keys.js";

const DOMAIN = Buffer.from(SIGNATURE_DOMAIN, "ascii");

/** What the signature of a suite 0x02 value depends on, besides the canonical context. */
interface SignedFields {
  readonly flags: number;
  readonly messageId: Uint8Array;
  readonly commitment: Uint8Array;
  readonly signerKey: Uint8Array;
  /** Ciphertext followed by the GCM tag. */
  readonly body: Uint8Array;
}

/**
 * The exact bytes an Ed25519 signature of suite 0x02 covers (docs/FORMAT.md §14.2):
 *
 *   domain (36 ASCII bytes) || 0x01 || 0x02 || flags || messageId || commitment
 *   || signerKey || u16 contextLength || canonicalContext
 *   || u32 ciphertextLength || SHA-256(ciphertext || tag)
 *
 * The wrapped-key entries are absent so rewrap keeps the signature valid; the commitment
 * binds the data key, so an entry that unwraps to another key is still refused. The body
 * goes in as its SHA-256 so signing and verifying never copy a large body (node's sign()
 * needs one buffer, and Ed25519 reads its message twice).
 */
export function signedBytes(fields: SignedFields, canonicalContext: Uint8Array): Buffer {
  // Buffer.alloc, not allocUnsafe: never a slice of node's shared pool, since
  // VerifiedSignatures may keep it.
  const m = Buffer.alloc(DOMAIN.length + 3 + 32 * 3 + 2 + canonicalContext.length + 4 + 32);
  let o = DOMAIN.copy(m, 0);
  m[o++] = FORMAT_VERSION;
  m[o++] = SUITE_SIGNED_ED25519;
  m[o++] = fields.flags;
  m.set(fields.messageId, o);
  o += MESSAGE_ID_LENGTH;
  m.set(fields.commitment, o);
  o += fields.commitment.length;
  m.set(fields.signerKey, o);
  o += SIGNER_KEY_LENGTH;
  o = m.writeUInt16BE(canonicalContext.length, o);
  m.set(canonicalContext, o);
  o += canonicalContext.length;
  o = m.writeUInt32BE(fields.body.length - TAG_LENGTH, o);
  createHash("sha256").update(fields.body).digest().copy(m, o);
  return m;
}

/**
 * Signs a freshly sealed suite 0x02 value in place: its signature slot (offset 99, 64
 * bytes) was written as zeros; the header fields (flags as written) are read at their
 * fixed offsets and the body is the last `bodyLength` bytes.
 */
export function signSealedInPlace(
  out: Buffer,
  signer: SigningKey,
  canonicalContext: Uint8Array,
  bodyLength: number,
): void {
  const fields: SignedFields = {
    flags: out[2]!,
    messageId: out.subarray(OFFSET_COMMITMENT - MESSAGE_ID_LENGTH, OFFSET_COMMITMENT),
    commitment: out.subarray(OFFSET_COMMITMENT, OFFSET_SIGNER_KEY),
    signerKey: out.subarray(OFFSET_SIGNER_KEY, OFFSET_SIGNATURE),
    body: out.subarray(out.length - bodyLength),
  };
  const signature = signer.sign(signedBytes(fields, canonicalContext));
  out.set(signature, OFFSET_SIGNATURE);
}

/**
 * The signed-mode checks of decrypt, run after the context is resolved and BEFORE any
 * key is unwrapped or looked up in a cache:
 * - with `trusted` (signed mode): a suite 0x01 value is `ENVELOPE_UNSIGNED`; a signer not
 *   in `trusted` is `ENVELOPE_UNTRUSTED_SIGNER`;
 * - any suite 0x02 value, in either mode: the signature must verify under the key it
 *   names, else `ENVELOPE_BAD_SIGNATURE`. Without `trusted` that proves only integrity
 *   (anyone can sign with a key of their own), not who wrote the value.
 */
export function checkSignature(
  parts: EnvelopeParts,
  canonicalContext: Uint8Array,
  trusted: TrustedSigners | undefined,
  verified?: VerifiedSignatures,
): void {
  if (parts.suite !== SUITE_SIGNED_ED25519) {
    if (trusted) {
      throw new DecryptionError(
        "ENVELOPE_UNSIGNED",
        "This client only accepts signed values (trustedSigners is set), and this value is not signed. It was written by a writer without a signing key, or before signed mode: re-encrypt it with a signing writer.",
      );
    }
    return;
  }
  const signerKey = parts.signerKey!;
  let key: KeyObject | undefined;
  if (trusted) {
    key = trusted.find(signerKey);
    if (!key) {
      throw new DecryptionError(
        "ENVELOPE_UNTRUSTED_SIGNER",
        "This value is signed by a key that is not in this client's trustedSigners. Add that writer's public key if the writer is legitimate; otherwise the value was forged.",
        { details: { signer: `ed25519:${Buffer.from(signerKey).toString("hex")}` } },
      );
    }
  }
  let ok = false;
  try {
    const message = signedBytes(parts as SignedFields, canonicalContext);
    if (verified?.has(parts.signature!, message)) return;
    // A small-order or non-canonical signer key is refused on every runtime (§14.5.1).
    if (isWeakEd25519Key(signerKey)) throw new RangeError("weak Ed25519 signer key");
    key ??= publicKeyFromRaw(signerKey);
    ok =
      parts.signature!.length === SIGNATURE_LENGTH && verify(null, message, key, parts.signature!);
    if (ok) verified?.add(parts.signature!, message);
  } catch {
    // A signer key that is not a valid Ed25519 point fails like a bad signature.
    ok = false;
  }
  if (!ok) {
    throw new DecryptionError(
      "ENVELOPE_BAD_SIGNATURE",
      "Could not decrypt: the value's signature does not verify (its header, context or body was altered, or the wrong context was given). Check the context; otherwise restore the value from a backup.",
    );
  }
}

/**
 * Signatures already verified by this client, so a value read again (a hot row) skips the
 * Ed25519 verification, which costs far more than the rest of a warm decrypt. Each entry
 * maps a signature to the exact signed bytes (which include the signer key) it verified
 * against; a hit needs both to be byte-equal, and verification of that pair is
 * deterministic. Bounded (oldest dropped first); holds nothing secret.
 */
export class VerifiedSignatures {
  readonly #seen = new Map<string, Buffer>();

  constructor(private readonly max = 1024) {}

  has(signature: Uint8Array, message: Buffer): boolean {
    return this.#seen.get(latin1Key(signature))?.equals(message) === true;
  }

  add(signature: Uint8Array, message: Buffer): void {
    const key = latin1Key(signature);
    this.#seen.delete(key);
    if (this.#seen.size >= this.max) this.#seen.delete(this.#seen.keys().next().value!);
    this.#seen.set(key, message);
  }

  clear(): void {
    this.#seen.clear();
  }
}

function latin1Key(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
}
