import { createDecipheriv } from "node:crypto";
import { DecryptionError } from "@envelope/core";
import { asText, notLegacy } from "../errors.js";
import { type KeyInput, keyBytes } from "../keys/key-input.js";
import { tag } from "../tag.js";
import type { LegacyDecoder } from "../types.js";
import { decipherAll } from "./decipher.js";

const FORMAT = "aes-256-cbc";
// Shape only: a 16-byte IV, a colon, then hex or base64 of any length. A value cut short
// still matches and fails as CBC in decode, instead of passing for plaintext in a mixed column.
const HEX_FORM = /^[0-9a-fA-F]{32}:[0-9a-fA-F]*$/;
const B64_FORM = /^[A-Za-z0-9+/]{22}(?:==)?:[A-Za-z0-9+/]*={0,2}$/;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The shape test: `<iv>:<ciphertext>` in hex (32 hex iv) or base64 (16-byte iv). */
export function looksLikeCbc(value: string | Buffer): boolean {
  const text = asText(value).trim();
  return HEX_FORM.test(text) || B64_FORM.test(text);
}

export interface CbcOptions {
  /**
   * Reject decrypted values that are not valid UTF-8 (default true). CBC has no integrity
   * check: a wrong key passes the padding check about 1 time in 256, and this catches
   * nearly all of those instead of migrating garbage.
   */
  requireUtf8?: boolean;
}

/**
 * `<iv>:<ciphertext>` (hex or base64), AES-256-CBC with PKCS#7 padding under a static
 * 32-byte key: the classic `iv.toString("hex") + ":" + encrypted.toString("hex")`.
 *
 * @example
 * const from = cbcDecoder(loadLegacyKey({ file: "/run/secrets/legacy_key" }));
 */
export function cbcDecoder(key: KeyInput, options: CbcOptions = {}): LegacyDecoder {
  const k = keyBytes(key, 32, FORMAT);
  const requireUtf8 = options.requireUtf8 ?? true;
  return tag({
    format: FORMAT,
    matches: looksLikeCbc,
    decode: (value: string | Buffer) => decodeCbc(k, value, requireUtf8),
  });
}

/**
 * One error for every CBC failure after the shape check: a bad padding and a plaintext
 * that is not UTF-8 must not be told apart (no cause either), or the error is a padding
 * oracle. So the message names every reason, the binary-plaintext one included.
 */
const failed = () =>
  new DecryptionError(
    "ENVELOPE_DECRYPT_FAILED",
    "Could not decrypt a legacy aes-256-cbc value: wrong legacy key, the value was altered, or its plaintext is not UTF-8 text (binary values need cbcDecoder(key, { requireUtf8: false })).",
  );

function decodeCbc(key: Buffer, value: string | Buffer, requireUtf8: boolean): Buffer {
  const parts = asText(value).trim().split(":");
  if (parts.length !== 2) throw notLegacy(FORMAT, "expected <iv>:<ciphertext>");
  const [ivText, ctText] = parts as [string, string];
  const isHex = /^[0-9a-fA-F]{32}$/.test(ivText) && /^(?:[0-9a-fA-F]{32})+$/.test(ctText);
  const iv = Buffer.from(ivText, isHex ? "hex" : "base64");
  const ciphertext = Buffer.from(ctText, isHex ? "hex" : "base64");
  if (iv.length !== 16 || ciphertext.length === 0 || ciphertext.length % 16 !== 0) {
    throw notLegacy(
      FORMAT,
      "iv must be 16 bytes and the ciphertext a multiple of 16 bytes (hex or base64)",
    );
  }
  let plain: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-cbc", key, iv);
    plain = decipherAll(decipher, ciphertext);
  } catch {
    // No cause: a bad padding and a bad UTF-8 plaintext must fail alike (the cause would
    // tell them apart, a padding oracle for whoever sees the error).
    throw failed();
  }
  if (requireUtf8) {
    try {
      strictUtf8.decode(plain);
    } catch {
      plain.fill(0);
      throw failed();
    }
  }
  return plain;
}
