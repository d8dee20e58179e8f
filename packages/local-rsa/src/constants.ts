import { constants } from "node:crypto";

/** Provider id written into every wrapped-key entry and the URI scheme. */
export const PROVIDER_ID = "local-rsa";

/** RSA modulus sizes accepted for master keys. 3072 is the default for new keys. */
export const ALLOWED_MODULUS_LENGTHS = [2048, 3072, 4096] as const;
export type ModulusLength = (typeof ALLOWED_MODULUS_LENGTHS)[number];
export const DEFAULT_MODULUS_LENGTH: ModulusLength = 3072;

/** RSA-OAEP with SHA-256 for both the hash and MGF1 (node sets MGF1 = oaepHash), no label. */
export const OAEP = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" } as const;

/** Hex characters of the SHA-256 SPKI fingerprint used as the key reference (128 bits). */
export const KEY_REF_HEX_LENGTH = 32;
