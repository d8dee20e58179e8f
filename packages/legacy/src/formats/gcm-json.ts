import { createDecipheriv } from "node:crypto";
import { asText, notLegacy, wrongKey } from "../errors.js";
import { type KeyInput, keyBytes } from "../keys/key-input.js";
import { tag } from "../tag.js";
import type { LegacyDecoder } from "../types.js";
import { decipherAll } from "./decipher.js";

const FORMAT = "aes-256-gcm-json";
const HEX = /^(?:[0-9a-fA-F]{2})*$/;
const SHAPE = /"(?:iv|authTag|encrypted)"\s*:/;
const isHex = (x: unknown): x is string => typeof x === "string" && HEX.test(x);

/**
 * The shape test: text starting `{` that names one of the fields iv, authTag or encrypted.
 * Not parsed here (cheap on any size), and a value cut short still matches and fails as
 * this format in `decode`, instead of passing for plaintext in a mixed column.
 */
export function looksLikeGcmJson(value: string | Buffer): boolean {
  const text = asText(value).trim();
  return text.startsWith("{") && SHAPE.test(text);
}

/**
 * `{"iv":"<hex>","authTag":"<hex>","encrypted":"<hex>"}` sealed with AES-256-GCM under a
 * static 32-byte key: the usual hand-rolled `createCipheriv("aes-256-gcm", key, iv)`.
 *
 * @example
 * const from = gcmJsonDecoder(loadLegacyKey({ env: "LEGACY_KEY" }));
 */
export function gcmJsonDecoder(key: KeyInput): LegacyDecoder {
  const k = keyBytes(key, 32, FORMAT);
  return tag({
    format: FORMAT,
    matches: looksLikeGcmJson,
    decode: (value: string | Buffer) => decodeGcmJson(k, value),
  });
}

function decodeGcmJson(key: Buffer, value: string | Buffer): Buffer {
  let parsed: { iv?: unknown; authTag?: unknown; encrypted?: unknown };
  try {
    parsed = JSON.parse(asText(value));
  } catch (cause) {
    throw notLegacy(FORMAT, "not JSON", cause);
  }
  if (!parsed || !isHex(parsed.iv) || !isHex(parsed.authTag) || !isHex(parsed.encrypted)) {
    throw notLegacy(FORMAT, "needs hex fields iv, authTag, encrypted");
  }
  const iv = Buffer.from(parsed.iv, "hex");
  const authTag = Buffer.from(parsed.authTag, "hex");
  if (iv.length < 12 || iv.length > 16 || authTag.length !== 16)
    throw notLegacy(FORMAT, "iv must be 12–16 bytes and authTag 16");
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: 16 });
    decipher.setAuthTag(authTag);
    return decipherAll(decipher, Buffer.from(parsed.encrypted, "hex"));
  } catch (cause) {
    throw wrongKey(FORMAT, cause);
  }
}
