import { createCipheriv, randomBytes } from "node:crypto";
import { EnvelopeError } from "@envelope/core";

/** The error code a call throws ("no error" / "not typed: …" otherwise). */
export function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return EnvelopeError.isInstance(e) ? e.code : `not typed: ${String(e)}`;
  }
  return "no error";
}

export async function asyncCodeOf(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
  } catch (e) {
    return EnvelopeError.isInstance(e) ? e.code : `not typed: ${String(e)}`;
  }
  return "no error";
}

// The hand-rolled encoders these formats come from, written the way apps write them with
// node:crypto (the library that produced the legacy data), not with the decoders under test.

/** `{"iv","authTag","encrypted"}` as a Sequelize `EncryptedString` type writes it. */
export function handRolledGcmJson(key: Buffer, text: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const encrypted = Buffer.concat([cipher.update(text, "utf8"), cipher.final()]);
  return JSON.stringify({
    iv: iv.toString("hex"),
    authTag: cipher.getAuthTag().toString("hex"),
    encrypted: encrypted.toString("hex"),
  });
}

/** `iv:ciphertext` in hex, AES-256-CBC. */
export function handRolledCbc(key: Buffer, text: string): string {
  const iv = randomBytes(16);
  const cipher = createCipheriv("aes-256-cbc", key, iv);
  return `${iv.toString("hex")}:${Buffer.concat([cipher.update(text, "utf8"), cipher.final()]).toString("hex")}`;
}
