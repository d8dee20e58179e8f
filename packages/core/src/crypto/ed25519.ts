import { createPublicKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";

// Ed25519 key handling shared by signing-keys.ts (loading keys) and signature.ts (the
// suite 0x02 signature): its own module so those two do not import each other.

// The y coordinates (little-endian, sign bit cleared) of the points of small order (1, 2,
// 4, 8), with the non-canonical spellings y = p and y = p + 1 of 0 and 1: a "public key"
// there lets one signature verify for many messages. The list libsodium refuses.
const SMALL_ORDER_Y = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map((hex) => Buffer.from(hex, "hex"));

/**
 * Whether 32 bytes are an Ed25519 public key no honest signer has: a point of small order
 * (whatever its sign bit), or a non-canonical encoding (y ≥ 2^255 − 19). OpenSSL 3.0
 * (Node 20) verifies signatures under such keys, OpenSSL 3.5 (Node 24) does not: Envelope
 * refuses them itself, so every runtime gives the same answer (FORMAT.md §14.5.1).
 */
export function isWeakEd25519Key(raw: Uint8Array): boolean {
  if (raw.length !== 32) return true;
  const y = Buffer.from(raw);
  y[31] = y[31]! & 0x7f;
  if (SMALL_ORDER_Y.some((weak) => weak.equals(y))) return true;
  // Non-canonical: y ≥ p = 2^255 − 19, i.e. ffff…ff7f in bytes 1–31 and byte 0 ≥ 0xed.
  if (y[31] !== 0x7f || y[0]! < 0xed) return false;
  for (let i = 1; i < 31; i++) if (y[i] !== 0xff) return false;
  return true;
}

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
