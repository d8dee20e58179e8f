import { FormatError } from "../../errors.js";
import {
  COMMITMENT_LENGTH,
  FLAG_CONTEXT_STORED,
  FLAG_PADDED,
  FLAG_STREAM_KEY,
  FORMAT_VERSION,
  KNOWN_FLAGS,
  MAX_BODY_LENGTH,
  MAX_CONTEXT_BYTES,
  MAX_ENTRIES,
  MAX_KEY_REF_LENGTH,
  MAX_PROVIDER_ID_LENGTH,
  MAX_WRAPPED_KEY_LENGTH,
  MESSAGE_ID_LENGTH,
  PROVIDER_ID_PATTERN,
  SIGNATURE_LENGTH,
  SIGNER_KEY_LENGTH,
  SUITE_AES256GCM_HKDF_SHA256_COMMIT,
  SUITE_AES256GCM_SHA512_COMMIT,
  SUITE_SIGNED_ED25519,
  TAG_LENGTH,
} from "../constants.js";
import type { EnvelopeParts, WrappedKey } from "../envelope.js";
import type { Reader } from "../reader.js";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses the rest of a format-v1 value once `decodeEnvelope` has read its version byte
 * (docs/FORMAT.md §2.1 step 1). Each check below cites its §2.1 step. Throws only
 * `FormatError`; never allocates beyond small strings for provider ids and key references
 * (bounded by the limits), never loops more than MAX_ENTRIES times.
 */
export function decodeV1(r: Reader): EnvelopeParts {
  const version = FORMAT_VERSION;
  // §2.1 step 2: suite 0x01, 0x02 (signed, §14) or 0x03 (one-step SHA-512 KDF, §15).
  const suite = r.u8("suite");
  if (
    suite !== SUITE_AES256GCM_HKDF_SHA256_COMMIT &&
    suite !== SUITE_SIGNED_ED25519 &&
    suite !== SUITE_AES256GCM_SHA512_COMMIT
  ) {
    throw new FormatError(
      "ENVELOPE_UNSUPPORTED_SUITE",
      `Unsupported algorithm suite ${suite}; this library knows suites 1 (AES-256-GCM, HKDF-SHA256, key commitment), 2 (suite 1 signed with Ed25519) and 3 (AES-256-GCM, one-step SHA-512 KDF, key commitment). Upgrade @envelope/core.`,
      { details: { field: "suite", suite } },
    );
  }
  // §2.1 step 3: only the defined flag bits; bits 1 and 2 never together.
  const flags = r.u8("flags");
  if ((flags & ~KNOWN_FLAGS) !== 0) fail("flags", `unknown flag bits 0x${flags.toString(16)}`);
  // A stream key envelope is never padded (§2.3 structure rules).
  const padded = (flags & FLAG_PADDED) !== 0;
  if (padded && (flags & FLAG_STREAM_KEY) !== 0) fail("flags", "bits 1 and 2 both set");
  // §2.1 step 4.
  const messageId = r.bytesOf(MESSAGE_ID_LENGTH, "messageId");
  const commitment = r.bytesOf(COMMITMENT_LENGTH, "commitment");
  // §14.1: suite 0x02 has signer key and signature at fixed offsets 67 and 99, before the
  // entries (their checks are §14.5 step 3, on the decrypt path).
  const signed = suite === SUITE_SIGNED_ED25519;
  const signerKey = signed ? r.bytesOf(SIGNER_KEY_LENGTH, "signerKey") : undefined;
  const signature = signed ? r.bytesOf(SIGNATURE_LENGTH, "signature") : undefined;

  // §2.1 step 5: 1 … 16 entries; step 6 for each (readEntry).
  const count = r.u8("entryCount");
  if (count === 0) fail("entryCount", "no wrapped-key entries");
  if (count > MAX_ENTRIES) fail("entryCount", `${count} entries (limit ${MAX_ENTRIES})`);
  const entries: WrappedKey[] = [];
  for (let i = 0; i < count; i++) entries.push(readEntry(r, i));

  // §2.1 step 7: contextLength 2 … 65535, then the stored context's bytes (parsed later,
  // on the decrypt path: §4.1, §7 step 2).
  let storedContext: Uint8Array | undefined;
  if (flags & FLAG_CONTEXT_STORED) {
    const length = r.u16("contextLength");
    if (length < 2 || length > MAX_CONTEXT_BYTES) fail("contextLength", "out of range");
    storedContext = r.bytesOf(length, "context");
  }

  // §2.1 step 8: at most 1 GiB; not 0 when padded (§2.3).
  const ciphertextLength = r.u32("ciphertextLength");
  if (ciphertextLength > MAX_BODY_LENGTH) {
    throw new FormatError(
      "ENVELOPE_LIMIT_EXCEEDED",
      `Envelope body declares ${ciphertextLength} bytes; single-shot envelopes are limited to 1 GiB. Use the streaming format for larger values.`,
      { details: { field: "ciphertextLength" } },
    );
  }
  // §2.1 step 8 and §2.3 structure rules: padding is at least the 0x80 marker, so a padded
  // value has a non-empty GCM plaintext.
  if (padded && ciphertextLength === 0) fail("ciphertextLength", "0 with flags bit 2 (padded)");
  // §2.1 steps 9 and 10: ciphertext || tag, then nothing more.
  const body = r.bytesOf(ciphertextLength + TAG_LENGTH, "body");
  r.end();
  const parts = { version, suite, flags, messageId, commitment, entries, storedContext, body };
  return signed ? { ...parts, signerKey, signature } : parts;
}

/**
 * The field names of entry i for `Reader` and `fail`, built once (MAX_ENTRIES of them):
 * every read names its field, and a template string per read cost allocations on every
 * decode.
 */
const ENTRY_FIELDS = Array.from({ length: MAX_ENTRIES }, (_, i) => {
  const at = `entries[${i}]`;
  return {
    providerIdLength: `${at}.providerIdLength`,
    providerId: `${at}.providerId`,
    keyRefLength: `${at}.keyRefLength`,
    keyRef: `${at}.keyRef`,
    wrappedLength: `${at}.wrappedLength`,
    wrapped: `${at}.wrapped`,
  };
});

/**
 * §2.1 step 6 (the entry layout of §2): every length checked before its bytes are read:
 * providerIdLength 1 … 64 and its bytes `[a-z0-9-]` not starting with `-`, keyRefLength
 * 1 … 2048 and valid UTF-8, wrappedLength 1 … 4096.
 */
function readEntry(r: Reader, index: number): WrappedKey {
  const field = ENTRY_FIELDS[index]!;
  const idLength = r.u8(field.providerIdLength);
  if (idLength === 0 || idLength > MAX_PROVIDER_ID_LENGTH) fail(field.providerId, "bad length");
  const id = r.bytesOf(idLength, field.providerId);
  const providerId = Buffer.from(id.buffer, id.byteOffset, id.length).toString("latin1");
  if (!PROVIDER_ID_PATTERN.test(providerId)) fail(field.providerId, "not a valid provider id");

  const refLength = r.u16(field.keyRefLength);
  if (refLength === 0 || refLength > MAX_KEY_REF_LENGTH) fail(field.keyRef, "bad length");
  const refBytes = r.bytesOf(refLength, field.keyRef);
  let keyRef: string;
  try {
    keyRef = utf8.decode(refBytes);
  } catch {
    fail(field.keyRef, "not valid UTF-8");
  }

  const wrappedLength = r.u16(field.wrappedLength);
  if (wrappedLength === 0 || wrappedLength > MAX_WRAPPED_KEY_LENGTH) {
    fail(field.wrapped, "bad length");
  }
  const wrapped = r.bytesOf(wrappedLength, field.wrapped);
  return { providerId, keyRef, wrapped };
}

function fail(field: string, problem: string): never {
  throw new FormatError(
    "ENVELOPE_BAD_FORMAT",
    `Malformed envelope: field "${field}" is invalid (${problem}).`,
    {
      details: { field },
    },
  );
}
