import { createDecipheriv, createHmac, timingSafeEqual } from "node:crypto";
import { ConfigError } from "@envelope/core";
import { secretCopy } from "@envelope/core/internal";
import { asText, notLegacy, wrongKey } from "../errors.js";
import { tag } from "../tag.js";
import type { LegacyDecoder } from "../types.js";
import { decipherAll } from "./decipher.js";
import { FERNET_KEY_BYTES } from "./fernet-key.js";

const FORMAT = "fernet";
const VERSION = 0x80;
// version (1) + timestamp (8) + IV (16) + at least one AES block (16) + HMAC (32)
const MIN_TOKEN = 73;
/** Tokens above this many characters are refused before decoding (a column value, not a file). */
export const MAX_FERNET_TOKEN_CHARS = 16 * 1024 * 1024;
const TOKEN = /^[A-Za-z0-9_+/-]+={0,2}$/;
const TOKEN_START = /^[A-Za-z0-9_+/-]+={0,2}$|^[A-Za-z0-9_+/-]{4096}$/;

/**
 * The shape test: url-safe base64 text starting `gAAAA` (version 0x80, then the high bytes
 * of a timestamp, zero until the year 2106+). The length is not checked here: a token cut
 * short (a `varchar(n)`, an edit) still matches and so fails as Fernet in `decode`, instead
 * of passing for plaintext in a mixed column.
 */
export function looksLikeFernet(value: string | Buffer): boolean {
  const text = asText(value).trim();
  // The alphabet of the first 4 KiB only: cheap on any size, and a token too long for
  // decode still matches (and fails there) rather than passing for plaintext.
  return text.startsWith("gAAAA") && TOKEN_START.test(text.slice(0, 4096));
}

interface FernetKey {
  signing: Buffer;
  encryption: Buffer;
}

/**
 * Fernet tokens (the spec the `fernet` npm package and Python's `cryptography` follow):
 * `0x80 ‖ timestamp ‖ IV ‖ AES-128-CBC ciphertext ‖ HMAC-SHA256`, url-safe base64. The
 * HMAC is checked in constant time with each key in turn, in MultiFernet order (newest
 * first, as the app listed them); only the key whose HMAC matches decrypts. Timestamps are
 * not checked (no TTL): a migration must read old tokens too.
 *
 * @example
 * const from = fernetDecoder([parseFernetKey(env.FERNET_KEY), parseFernetKey(env.FERNET_KEY_OLD)]);
 */
export function fernetDecoder(keys: readonly Uint8Array[]): LegacyDecoder {
  if (keys.length === 0) {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", "Fernet needs at least one key.", {
      details: { field: "legacyKey" },
    });
  }
  const parsed: FernetKey[] = keys.map((k, i) => {
    if (!(k instanceof Uint8Array) || k.length !== FERNET_KEY_BYTES) {
      throw new ConfigError(
        "ENVELOPE_BAD_KEY",
        `Fernet key #${i + 1} must be 32 bytes (parse it with parseFernetKey or deriveFernetKey).`,
        { details: { field: "legacyKey" } },
      );
    }
    const copy = secretCopy(k);
    return { signing: copy.subarray(0, 16), encryption: copy.subarray(16) };
  });
  return tag({
    format: FORMAT,
    matches: looksLikeFernet,
    decode: (value: string | Buffer) => decodeFernet(parsed, value),
  });
}

function decodeFernet(keys: readonly FernetKey[], value: string | Buffer): Buffer {
  const text = asText(value).trim();
  if (text.length > MAX_FERNET_TOKEN_CHARS) throw notLegacy(FORMAT, "token too long");
  if (!TOKEN.test(text)) throw notLegacy(FORMAT, "not url-safe base64");
  const token = Buffer.from(text, "base64");
  if (token.length < MIN_TOKEN || (token.length - 57) % 16 !== 0)
    throw notLegacy(FORMAT, "wrong length for a Fernet token");
  if (token[0] !== VERSION) throw notLegacy(FORMAT, "version byte is not 0x80");
  const signed = token.subarray(0, token.length - 32);
  const mac = token.subarray(token.length - 32);
  const key = keys.find((k) =>
    timingSafeEqual(createHmac("sha256", k.signing).update(signed).digest(), mac),
  );
  // No key authenticates it: wrong keys or a tampered token. Nothing is decrypted.
  if (!key) throw wrongKey(FORMAT);
  const iv = token.subarray(9, 25);
  const ciphertext = token.subarray(25, token.length - 32);
  try {
    const decipher = createDecipheriv("aes-128-cbc", key.encryption, iv);
    return decipherAll(decipher, ciphertext);
  } catch (cause) {
    // Authentic but badly padded: the writer was broken. Still never the raw value.
    throw wrongKey(FORMAT, cause);
  }
}
