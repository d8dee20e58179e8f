// THE APP BEFORE ENVELOPE — kept as it is found in the wild, to be taken over. Do not copy.
//
// AES-256-GCM under one static key from an env var, stored as {"iv","authTag","encrypted"}
// hex JSON, with the classic "if decrypt fails, return the raw value" fallback for rows
// written before encryption was added. That fallback is why Envelope never does it: it
// serves ciphertext or tampered data as if it were the value, silently.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { DataTypes, type Model } from "sequelize";

export function encrypt(key: Buffer, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const encrypted = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return JSON.stringify({
    iv: iv.toString("hex"),
    authTag: cipher.getAuthTag().toString("hex"),
    encrypted: encrypted.toString("hex"),
  });
}

export function decrypt(key: Buffer, stored: string): string {
  try {
    const { iv, authTag, encrypted } = JSON.parse(stored);
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "hex"));
    decipher.setAuthTag(Buffer.from(authTag, "hex"));
    return Buffer.concat([
      decipher.update(Buffer.from(encrypted, "hex")),
      decipher.final(),
    ]).toString("utf8");
  } catch {
    return stored; // not encrypted yet (old rows)
  }
}

/** The app's `EncryptedString` attribute type: encrypts in the setter, decrypts in the getter. */
export function EncryptedString(field: string, key: Buffer) {
  return {
    type: DataTypes.TEXT,
    get(this: Model) {
      const raw = this.getDataValue(field) as string | null;
      return raw == null ? raw : decrypt(key, raw);
    },
    set(this: Model, value: string | null) {
      this.setDataValue(field, value == null ? value : encrypt(key, value));
    },
  };
}
