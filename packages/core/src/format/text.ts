import { constants } from "node:buffer";
import { FormatError } from "../errors.js";
import { MAX_BODY_LENGTH, TEXT_PREFIX } from "./constants.js";

const BASE64URL = /^[A-Za-z0-9_-]*$/;
// Header and entries are bounded well below 128 KiB; anything longer than that plus the
// largest body cannot be an envelope, so refuse it before decoding.
const MAX_TEXT_LENGTH = TEXT_PREFIX.length + Math.ceil(((MAX_BODY_LENGTH + 256 * 1024) * 4) / 3);

/** Text form for text columns: `ev1:` + unpadded base64url of the binary form. */
export function toText(binary: Uint8Array): string {
  // A JavaScript string holds at most ~512 Mi characters: about 384 MiB of envelope.
  if (Math.ceil((binary.length * 4) / 3) + TEXT_PREFIX.length > constants.MAX_STRING_LENGTH) {
    throw new FormatError(
      "ENVELOPE_LIMIT_EXCEEDED",
      `An envelope of ${binary.length} bytes is too large for the text form (a JavaScript string holds at most ${constants.MAX_STRING_LENGTH} characters, about 384 MiB of envelope). Use the binary form (output: "binary"), or the streaming API for values this large.`,
      { details: { field: "textForm" } },
    );
  }
  return (
    TEXT_PREFIX + Buffer.from(binary.buffer, binary.byteOffset, binary.length).toString("base64url")
  );
}

/** True when a string looks like the text form (cheap prefix check, no decoding). */
export function isTextForm(value: string): boolean {
  return value.startsWith(TEXT_PREFIX);
}

/**
 * The first bytes of a text value, at most `maxBytes` (rounded down to whole base64
 * groups), decoded without checking the rest of the string: for a look at the header only
 * (decryptMany's grouping), so a large value is not decoded in full twice. Not a decoder:
 * the value is still decoded by `fromText` before it is used. Undefined without the prefix.
 */
export function textHead(text: string, maxBytes: number): Buffer | undefined {
  if (!text.startsWith(TEXT_PREFIX)) return undefined;
  const chars = Math.floor(maxBytes / 3) * 4;
  return Buffer.from(text.slice(TEXT_PREFIX.length, TEXT_PREFIX.length + chars), "base64url");
}

/**
 * Strict decoder (docs/FORMAT.md §9): exact prefix, base64url alphabet, no padding,
 * canonical trailing bits. The bytes then go to the binary decoder (§2.1).
 */
export function fromText(text: string): Buffer {
  // §9 "Prefix": exactly `ev1:`, case-sensitive.
  if (!text.startsWith(TEXT_PREFIX)) {
    throw new FormatError(
      "ENVELOPE_BAD_FORMAT",
      `Not an Envelope text value: it must start with "${TEXT_PREFIX}". Was this column ever encrypted? Reading legacy plaintext needs the explicit migration mode.`,
      { details: { field: "textPrefix" } },
    );
  }
  // §9 "Length": the whole string's limit, after the prefix and before decoding.
  if (text.length > MAX_TEXT_LENGTH) {
    throw new FormatError(
      "ENVELOPE_LIMIT_EXCEEDED",
      "Envelope text value is larger than the 1 GiB limit.",
    );
  }
  const payload = text.slice(TEXT_PREFIX.length);
  // §9 "Alphabet" and "Length": base64url only (no `=`, whitespace, `+`, `/`); never 1 mod 4.
  if (payload.length % 4 === 1 || !BASE64URL.test(payload)) {
    throw new FormatError(
      "ENVELOPE_BAD_FORMAT",
      "Malformed envelope text: the part after the prefix must be unpadded base64url (A–Z a–z 0–9 - _).",
      { details: { field: "textPayload" } },
    );
  }
  const bytes = Buffer.from(payload, "base64url");
  // §9 "Canonical": reject non-canonical encodings (stray bits in the last character) so
  // one envelope has exactly one text form. Only the final partial group can carry stray
  // bits: check it alone rather than re-encode the whole value (a second copy of 1 GiB).
  const partial = payload.length % 4;
  const tailBytes = partial === 0 ? 0 : partial - 1;
  if (
    tailBytes > 0 &&
    bytes.subarray(bytes.length - tailBytes).toString("base64url") !== payload.slice(-partial)
  ) {
    throw new FormatError(
      "ENVELOPE_BAD_FORMAT",
      "Malformed envelope text: non-canonical base64url.",
      {
        details: { field: "textPayload" },
      },
    );
  }
  return bytes;
}
