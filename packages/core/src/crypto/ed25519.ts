import { createPublicKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";

// Ed25519 key handling shared by signing-keys.ts (loading keys) and signature.ts (the
// suite 0x02 signature): its own module so those two do not import each other.

/** A KeyObject for a raw 32-byte Ed25519 public key. */
export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") },
    format: "jwk",
  });
}

/** The raw 32 bytes of an Ed25519 public (or private: its public half) KeyObject. */
export function rawPublicKey(key: KeyObject): Buffer {
  const pub = key.type === "public" ? key : createPublicKey(key);
  const jwk = pub.export({ format: "jwk" });
  return Buffer.from(jwk.x as string, "base64url");
}

/** Signs `message` with an Ed25519 private key (pure Ed25519, RFC 8032). */
export function ed25519Sign(privateKey: KeyObject, message: Uint8Array): Buffer {
  return sign(null, message, privateKey);
}

/** A new Ed25519 key pair for signed mode, as PEM, plus the public key in `ed25519:<hex>` form. */
export interface SigningKeyPair {
  /** PKCS#8 PEM. Secret: give it only to writers (a file mode 0600 / a secret). */
  readonly privateKeyPem: string;
  /** SPKI PEM: what readers list in `trustedSigners`. */
  readonly publicKeyPem: string;
  /** The same public key as `ed25519:` + 64 hex characters (for ENVELOPE_TRUSTED_SIGNERS). */
  readonly publicKey: string;
}

/**
 * Generates an Ed25519 key pair for signed mode (the same as
 * `openssl genpkey -algorithm ed25519`).
 *
 * @example
 * const { privateKeyPem, publicKey } = generateSigningKeyPair();
 * const writer = new Envelope({ encrypt, signing: { key: privateKeyPem } });
 * const reader = new Envelope({ encrypt, trustedSigners: [publicKey] });
 */
export function generateSigningKeyPair(): SigningKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const pair = {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }) as string,
    publicKey: `ed25519:${rawPublicKey(publicKey).toString("hex")}`,
  };
  // The pair holds a private key: never print it by accident.
  Object.defineProperty(pair, "toJSON", {
    value: () => ({ publicKey: pair.publicKey, privateKeyPem: "[redacted]" }),
  });
  Object.defineProperty(pair, Symbol.for("nodejs.util.inspect.custom"), {
    value: () => `SigningKeyPair { publicKey: '${pair.publicKey}', privateKeyPem: [redacted] }`,
  });
  return pair;
}
