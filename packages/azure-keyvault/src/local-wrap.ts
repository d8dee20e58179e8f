import { constants, createPublicKey, type KeyObject, publicEncrypt } from "node:crypto";
import type { KeyVaultKey } from "@azure/keyvault-keys";
import type { WrapAlgorithm } from "./algorithm.js";

/**
 * The public key of an RSA Key Vault key, when this process may wrap with it locally: the
 * key is enabled, inside its validity window, and its key_ops allow wrapKey or encrypt.
 * Undefined otherwise (the wrap then goes to Key Vault).
 */
export function localWrapKey(key: KeyVaultKey, now = new Date()): KeyObject | undefined {
  const jwk = key.key;
  if (!jwk || (key.keyType !== "RSA" && key.keyType !== "RSA-HSM") || !jwk.n || !jwk.e)
    return undefined;
  const ops = key.keyOperations ?? jwk.keyOps;
  if (ops && !ops.includes("wrapKey") && !ops.includes("encrypt")) return undefined;
  const { enabled, notBefore, expiresOn } = key.properties;
  if (enabled === false || (notBefore && now < notBefore) || (expiresOn && now > expiresOn))
    return undefined;
  return createPublicKey({
    key: {
      kty: "RSA",
      n: Buffer.from(jwk.n).toString("base64url"),
      e: Buffer.from(jwk.e).toString("base64url"),
    },
    format: "jwk",
  });
}

/**
 * RSA-OAEP wrap with the public key, byte-compatible with Key Vault's wrapKey: RSA-OAEP-256
 * is OAEP with SHA-256 and MGF1-SHA-256, RSA-OAEP is OAEP with SHA-1; no label.
 */
export function wrapLocally(
  publicKey: KeyObject,
  algorithm: WrapAlgorithm,
  dataKey: Uint8Array,
): Buffer {
  return publicEncrypt(
    {
      key: publicKey,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: algorithm === "RSA-OAEP" ? "sha1" : "sha256",
    },
    dataKey,
  );
}
