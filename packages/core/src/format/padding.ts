import { ConfigError, DecryptionError } from "../errors.js";
import { FLAG_PADDED, MAX_BODY_LENGTH, PADDING_MARKER } from "./constants.js";

/**
 * A length-padding rule, already validated (see `config/padding.ts`): the padded length
 * is the smallest multiple of `bucket` that is at least `min` and longer than the value.
 */
export interface PadRule {
  readonly bucket: number;
  readonly min: number;
}

/**
 * The GCM plaintext length of a `length`-byte value padded under `rule`: always at least
 * one byte longer than the value (the 0x80 marker), so padding is never ambiguous.
 */
export function paddedLength(length: number, rule: PadRule): number {
  const target = Math.max(length + 1, rule.min);
  const padded = Math.ceil(target / rule.bucket) * rule.bucket;
  if (padded > MAX_BODY_LENGTH) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      "The value padded to its bucket is larger than the 1 GiB single-shot limit. Encrypt it without `pad`, or use the streaming format.",
      { details: { field: "pad" } },
    );
  }
  return padded;
}

/** The bytes appended to a value to reach `padded` bytes: 0x80, then zeros. */
export function paddingTail(length: number, padded: number): Buffer {
  const tail = Buffer.alloc(padded - length);
  tail[0] = PADDING_MARKER;
  return tail;
}

/**
 * The value inside an opened GCM plaintext: unchanged when flags bit 2 is clear, else
 * with its ISO/IEC 7816-4 padding removed (the last non-zero byte must be 0x80; it and
 * everything after it go). Runs only after the GCM tag has verified, so it is no padding
 * oracle: a bad padding can only come from a writer that held the data key.
 * docs/FORMAT.md §2.3 "Decoding", §7 step 7.
 */
export function stripPadding(plaintext: Buffer, flags: number): Buffer {
  if ((flags & FLAG_PADDED) === 0) return plaintext;
  let end = plaintext.length - 1;
  while (end >= 0 && plaintext[end] === 0) end--;
  if (end < 0 || plaintext[end] !== PADDING_MARKER) {
    plaintext.fill(0);
    throw badPadding();
  }
  return plaintext.subarray(0, end);
}

/** `ENVELOPE_BAD_PADDING`: flags bit 2 set, but the plaintext does not end in 0x80 0x00*. */
export function badPadding(): DecryptionError {
  return new DecryptionError(
    "ENVELOPE_BAD_PADDING",
    "Could not decrypt: the value is marked as padded but its padding is malformed, although it authenticated. It was written by a faulty or hostile writer that held the data key; treat it as corrupt and restore it from a trusted source.",
    { details: { field: "padding" } },
  );
}
