import {
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
} from "node:crypto";
import { type KeyProvider, ProviderError, type WrappedKey } from "@envelope/core";

/**
 * A minimal, independent implementation of the `local-rsa` wrapped-key entry rules of
 * docs/FORMAT.md, used by the vector generator (so the vectors do not depend on the
 * @envelope/local-rsa package they are meant to check):
 *
 * - providerId = "local-rsa"
 * - keyRef = first 32 lowercase hex characters of SHA-256(DER SubjectPublicKeyInfo)
 * - wrapped = RSA-OAEP(SHA-256, MGF1-SHA-256, empty label) of the 32-byte data key
 *
 * @example
 * const provider = referenceRsaProvider([privateKeyPem]);
 */
export function referenceRsaProvider(pems: readonly string[]): KeyProvider {
  const keys = new Map<string, KeyObject>();
  for (const pem of pems) {
    const privateKey = createPrivateKey(pem);
    keys.set(rsaFingerprint(createPublicKey(privateKey)), privateKey);
  }
  const [keyRef, current] = [...keys.entries()][0]!;
  const publicKey = createPublicKey(current);
  return {
    id: "local-rsa",
    keyRef,
    handles: (entry) => entry.providerId === "local-rsa" && keys.has(entry.keyRef),
    async wrap(dataKey): Promise<WrappedKey> {
      const wrapped = publicEncrypt(oaep(publicKey), dataKey);
      return { providerId: "local-rsa", keyRef, wrapped };
    },
    async unwrap(entry): Promise<Uint8Array> {
      const key = keys.get(entry.keyRef);
      if (!key)
        throw new ProviderError(
          "ENVELOPE_KEY_NOT_FOUND",
          `local-rsa key ${entry.keyRef} is not configured.`,
        );
      try {
        return privateDecrypt(oaep(key), entry.wrapped);
      } catch (cause) {
        throw new ProviderError(
          "ENVELOPE_UNWRAP_FAILED",
          `local-rsa could not unwrap under ${entry.keyRef}.`,
          { cause },
        );
      }
    },
  };
}

/** keyRef of an RSA key: first 32 hex characters of SHA-256 over the DER SPKI. */
export function rsaFingerprint(publicKey: KeyObject): string {
  const der = publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("hex").slice(0, 32);
}

function oaep(key: KeyObject) {
  return { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" };
}
