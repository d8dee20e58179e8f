import { createCipheriv, randomBytes } from "node:crypto";

/**
 * What the hand-rolled apps Envelope takes over store: AES-256-GCM under one static key,
 * as `{"iv","authTag","encrypted"}` hex JSON — written with node:crypto exactly as such
 * an app writes it (not with an Envelope encoder).
 */
export function handRolledGcmJson(key: Buffer, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const encrypted = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return JSON.stringify({
    iv: iv.toString("hex"),
    authTag: cipher.getAuthTag().toString("hex"),
    encrypted: encrypted.toString("hex"),
  });
}
