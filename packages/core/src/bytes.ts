import { constants } from "node:buffer";
import { ConfigError, FormatError } from "./errors.js";
import { MAX_BODY_LENGTH } from "./format/constants.js";

/** Plaintext accepted by encrypt: bytes, or a string (encoded as UTF-8). */
export type PlaintextInput = Uint8Array | string;

export function plaintextBytes(input: PlaintextInput): Uint8Array {
  let bytes: Uint8Array;
  if (typeof input === "string") {
    if (!input.isWellFormed()) {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        "Plaintext string contains an unpaired surrogate; it cannot be encoded as UTF-8.",
      );
    }
    bytes = Buffer.from(input, "utf8");
  } else if (input instanceof Uint8Array) {
    bytes = input;
  } else {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `Plaintext must be a string, Buffer or Uint8Array; got ${input === null ? "null" : typeof input}. Serialize objects first (e.g. JSON.stringify).`,
    );
  }
  if (bytes.length > MAX_BODY_LENGTH) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      "Plaintext is larger than 1 GiB; use the streaming format for large values.",
    );
  }
  return bytes;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function utf8Text(bytes: Uint8Array): string {
  // V8 strings hold at most ~512 Mi characters; say so instead of "not valid UTF-8".
  if (bytes.length > constants.MAX_STRING_LENGTH) {
    throw new FormatError(
      "ENVELOPE_LIMIT_EXCEEDED",
      `The decrypted value is ${bytes.length} bytes, more than a JavaScript string can hold (${constants.MAX_STRING_LENGTH} characters): decrypt it as bytes (omit \`as: "text"\`), or use the streaming API (decryptStream) for values this large.`,
    );
  }
  try {
    return strictUtf8.decode(bytes);
  } catch (cause) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      'The decrypted value is not valid UTF-8 text; decrypt it as bytes (omit `as: "text"`).',
      { cause },
    );
  }
}
