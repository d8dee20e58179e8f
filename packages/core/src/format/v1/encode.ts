import { ConfigError, FormatError } from "../../errors.js";
import {
  COMMITMENT_LENGTH,
  FLAG_CONTEXT_STORED,
  FLAG_PADDED,
  FLAG_STREAM_KEY,
  FORMAT_VERSION,
  MAX_BODY_LENGTH,
  MAX_CONTEXT_BYTES,
  MESSAGE_ID_LENGTH,
  SIGNATURE_LENGTH,
  SIGNER_KEY_LENGTH,
  SUITE_AES256GCM_HKDF_SHA256_COMMIT,
  SUITE_AES256GCM_SHA512_COMMIT,
  SUITE_SIGNED_ED25519,
  TAG_LENGTH,
} from "../constants.js";
import type { EnvelopeParts } from "../envelope.js";
import { Writer } from "../reader.js";
import { checkEntry, checkEntryCount } from "../validate.js";

/**
 * Serializes an envelope to its binary form (see docs/FORMAT.md). Inputs come from our
 * own code paths, but entries may come from a provider: their limits are checked here too.
 */
export function encodeEnvelope(parts: EnvelopeParts): Buffer {
  if (!(parts?.body instanceof Uint8Array) || parts.body.length < TAG_LENGTH) {
    throw badPart("body", `a Uint8Array of at least ${TAG_LENGTH} bytes (ciphertext and tag)`);
  }
  return encodeEnvelopeWith(parts, parts.body.length - TAG_LENGTH, (out, offset) => {
    out.set(parts.body, offset);
  });
}

/**
 * Serializes the header and lets `writeBody` fill ciphertext and tag in place, so a
 * large value is written once into its final buffer instead of being copied behind the
 * header afterwards.
 */
export function encodeEnvelopeWith(
  header: Omit<EnvelopeParts, "body">,
  ciphertextLength: number,
  writeBody: (out: Buffer, offset: number) => void,
): Buffer {
  // Every length is checked before a field is written: a wrong one is a typed error,
  // never a RangeError from the buffer writes below.
  fixedBytes(header.messageId, MESSAGE_ID_LENGTH, "messageId");
  fixedBytes(header.commitment, COMMITMENT_LENGTH, "commitment");
  if (!Array.isArray(header.entries)) throw badPart("entries", "an array of wrapped keys");
  checkEntryCount(header.entries.length);
  const ids = header.entries.map((e) => checkEntry(e));
  if (
    header.storedContext !== undefined &&
    (!(header.storedContext instanceof Uint8Array) ||
      header.storedContext.length < 2 ||
      header.storedContext.length > MAX_CONTEXT_BYTES)
  ) {
    throw badPart("storedContext", `a canonical context of 2 to ${MAX_CONTEXT_BYTES} bytes`);
  }
  if (!Number.isSafeInteger(ciphertextLength) || ciphertextLength < 0) {
    throw badPart("body", "ciphertext and tag");
  }
  if (ciphertextLength > MAX_BODY_LENGTH) {
    throw new FormatError(
      "ENVELOPE_LIMIT_EXCEEDED",
      "Envelope body is larger than the 1 GiB single-shot limit. Use the streaming format for larger values.",
      { details: { field: "ciphertextLength" } },
    );
  }
  // The decoder's structural rules for bit 2 (FORMAT.md §2.3), so no encoder output is
  // refused on read.
  const padded = (header.flags & FLAG_PADDED) !== 0;
  if (padded && (header.flags & FLAG_STREAM_KEY) !== 0) {
    throw badPart("flags", "without bit 2 (padded) on a stream key envelope (bit 1)");
  }
  if (padded && ciphertextLength === 0) {
    throw badPart("body", "at least 1 byte of ciphertext when flags bit 2 (padded) is set");
  }
  const bodyLength = ciphertextLength + TAG_LENGTH;
  // Suite 0x02 carries signer key and signature; they are copied as given (rewrap keeps
  // them byte for byte; a fresh seal fills the signature in afterwards, see crypto/seal.ts).
  const signed = header.suite === SUITE_SIGNED_ED25519;
  if (
    signed &&
    (header.signerKey?.length !== SIGNER_KEY_LENGTH ||
      header.signature?.length !== SIGNATURE_LENGTH)
  ) {
    throw new Error(
      "encodeEnvelope: suite 2 needs a 32-byte signer key and 64-byte signature (bug)",
    );
  }
  let size = 3 + MESSAGE_ID_LENGTH + COMMITMENT_LENGTH + 1 + 4 + bodyLength;
  if (signed) size += SIGNER_KEY_LENGTH + SIGNATURE_LENGTH;
  for (const { id, ref, wrapped } of ids)
    size += 1 + id.length + 2 + ref.length + 2 + wrapped.length;
  const stored = header.storedContext;
  if (stored) size += 2 + stored.length;

  const w = new Writer(size);
  w.u8(FORMAT_VERSION);
  // Suite 0x03 (§15) is kept as given, so a rewrap of a suite 0x03 value stays one; any
  // other unsigned value is suite 0x01.
  w.u8(
    signed
      ? SUITE_SIGNED_ED25519
      : header.suite === SUITE_AES256GCM_SHA512_COMMIT
        ? SUITE_AES256GCM_SHA512_COMMIT
        : SUITE_AES256GCM_HKDF_SHA256_COMMIT,
  );
  // Bit 0 follows the stored context; bits 1 (purpose) and 2 (padded) are carried as
  // given, so a rewrap keeps them: they are in the body's AAD (and, for suite 2, in the
  // signed bytes).
  w.u8((stored ? FLAG_CONTEXT_STORED : 0) | (header.flags & (FLAG_STREAM_KEY | FLAG_PADDED)));
  w.put(header.messageId);
  w.put(header.commitment);
  if (signed) {
    w.put(header.signerKey!);
    w.put(header.signature!);
  }
  w.u8(ids.length);
  for (const { id, ref, wrapped } of ids) {
    w.u8(id.length);
    w.put(id);
    w.u16(ref.length);
    w.put(ref);
    w.u16(wrapped.length);
    w.put(wrapped);
  }
  if (stored) {
    w.u16(stored.length);
    w.put(stored);
  }
  w.u32(ciphertextLength);
  writeBody(w.bytes, w.skip(bodyLength));
  return w.finish();
}

function fixedBytes(value: unknown, length: number, field: string): void {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw badPart(field, `exactly ${length} bytes`);
  }
}

function badPart(field: string, expected: string): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `encodeEnvelope: "${field}" must be ${expected}. Pass the parts decodeEnvelope returned, changing only the entries.`,
    { details: { field } },
  );
}
