import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { ConfigError } from "@envelope/core";
import { KEY_REF_HEX_LENGTH } from "./constants.js";

/**
 * The key reference of an RSA key: the first 32 lowercase hex characters of SHA-256 over
 * the DER SubjectPublicKeyInfo of its public key. Public, stable across PEM encodings
 * (PKCS#1 / PKCS#8, encrypted or not), and the same for a private key and its public key.
 *
 * @param publicKey A KeyObject (public or private), PEM text, or DER SPKI bytes.
 * @example
 * const ref = rsaKeyRef(readFileSync("/run/secrets/enc_key.pub.pem", "utf8"));
 * // e.g. "3f1c9a0d5b7e2c4f8a6d1e0b9c3a7f52"
 */
export function rsaKeyRef(publicKey: KeyObject | string | Uint8Array): string {
  return fingerprint(toPublicKey(publicKey));
}

/** The fingerprint of an already-public KeyObject. */
export function fingerprint(publicKey: KeyObject): string {
  const der = publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("hex").slice(0, KEY_REF_HEX_LENGTH);
}

function toPublicKey(input: KeyObject | string | Uint8Array): KeyObject {
  try {
    if (typeof input === "string") return createPublicKey({ key: input, format: "pem" });
    if (input instanceof Uint8Array) {
      const bytes = Buffer.from(input.buffer, input.byteOffset, input.length);
      const pem = bytes.subarray(0, 64).includes("-----BEGIN");
      return pem
        ? createPublicKey({ key: bytes, format: "pem" })
        : createPublicKey({ key: bytes, format: "der", type: "spki" });
    }
    if (input && typeof input === "object" && "type" in input) {
      if (input.type === "public") return input;
      if (input.type === "private") return createPublicKey(input);
    }
  } catch (cause) {
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      "local-rsa: rsaKeyRef needs an RSA public key (SPKI PEM or DER), an unencrypted private key PEM, or a KeyObject. For an encrypted private key, load it with crypto.createPrivateKey({ key, passphrase }) first.",
      { cause },
    );
  }
  throw new ConfigError(
    "ENVELOPE_BAD_KEY",
    "local-rsa: rsaKeyRef needs a KeyObject, PEM text or DER SPKI bytes (a secret key has no fingerprint here).",
  );
}
