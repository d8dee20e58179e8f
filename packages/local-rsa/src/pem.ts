import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { ConfigError } from "@envelope/core";
import { ALLOWED_MODULUS_LENGTHS } from "./constants.js";

/** A key loaded from PEM: its public half always, its private half when given. */
export interface ParsedKey {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject | undefined;
}

const PRIVATE_LABELS = new Set(["PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY"]);
const PUBLIC_LABELS = new Set(["PUBLIC KEY", "RSA PUBLIC KEY"]);
const NON_RSA_LABELS = new Set(["EC PRIVATE KEY", "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY"]);

const GENERATE_HINT =
  "Create a key with generateKeyPair() from @envelope/local-rsa, or: openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out key.pem";

/**
 * Parses one PEM key (the first PEM block of `pem`) and checks it is an RSA key of an
 * allowed size. `where` names the source in messages ("key file /run/secrets/k.pem");
 * messages never contain PEM content or the passphrase.
 */
export function parsePemKey(pem: Buffer, passphrase: Buffer | undefined, where: string): ParsedKey {
  const label = pemLabel(pem);
  if (label === undefined) {
    throw badKey(
      `${where} is not PEM text (no "-----BEGIN …-----" line). Give a PKCS#8 ("BEGIN PRIVATE KEY"), PKCS#1 ("BEGIN RSA PRIVATE KEY") or SPKI ("BEGIN PUBLIC KEY") PEM. ${GENERATE_HINT}`,
    );
  }
  if (NON_RSA_LABELS.has(label)) {
    throw badKey(
      `${where} holds a "${label}", not an RSA key. local-rsa needs RSA keys. ${GENERATE_HINT}`,
    );
  }
  let parsed: ParsedKey;
  if (PRIVATE_LABELS.has(label)) {
    parsed = parsePrivate(pem, label, passphrase, where);
  } else if (PUBLIC_LABELS.has(label)) {
    parsed = {
      publicKey: wrapParse(() => createPublicKey({ key: pem, format: "pem" }), where),
      privateKey: undefined,
    };
  } else {
    throw badKey(
      `${where} holds a "${label}" PEM block; local-rsa needs a private key (PKCS#8 or PKCS#1) or an SPKI public key ("BEGIN PUBLIC KEY"). For a certificate, extract its key with: openssl x509 -pubkey -noout -in cert.pem`,
    );
  }
  checkRsa(parsed.publicKey, where);
  return parsed;
}

function parsePrivate(
  pem: Buffer,
  label: string,
  passphrase: Buffer | undefined,
  where: string,
): ParsedKey {
  const encrypted = label === "ENCRYPTED PRIVATE KEY" || pem.includes("Proc-Type: 4,ENCRYPTED");
  if (encrypted && passphrase === undefined) {
    throw badKey(
      `${where} is an encrypted private key and no passphrase was given. Set passphrase, passphraseEnv or passphraseFile (in a URI: ?passphrase-env=VAR or ?passphrase-file=/path).`,
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({
      key: pem,
      format: "pem",
      ...(encrypted ? { passphrase } : {}),
    });
  } catch (cause) {
    if (encrypted && isBadDecrypt(cause)) {
      throw badKey(
        `${where}: the passphrase is wrong (the private key could not be decrypted). Check the passphrase source.`,
        cause,
      );
    }
    // About 1 wrong passphrase in 300 decrypts to bytes whose padding happens to check out;
    // the decoder then fails on them, which is a wrong passphrase far more often than damage.
    if (encrypted && !isUnsupportedAlgorithm(cause)) {
      throw badKey(
        `${where}: the passphrase is wrong, or the key file is damaged (the private key decrypted to bytes that are not a key). Check the passphrase source, then the file.`,
        cause,
      );
    }
    throw malformed(where, cause);
  }
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

function checkRsa(key: KeyObject, where: string): void {
  if (key.asymmetricKeyType !== "rsa") {
    throw badKey(
      `${where} is a ${key.asymmetricKeyType ?? "non-asymmetric"} key, not an RSA key (RSA-PSS keys cannot do OAEP). local-rsa needs RSA keys. ${GENERATE_HINT}`,
    );
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (!(ALLOWED_MODULUS_LENGTHS as readonly (number | undefined)[]).includes(bits)) {
    throw badKey(
      `${where} is a ${bits}-bit RSA key; local-rsa accepts ${ALLOWED_MODULUS_LENGTHS.join(", ")}-bit keys only. Generate a new 3072-bit key and rotate to it. ${GENERATE_HINT}`,
    );
  }
}

/**
 * True when the first PEM block is a private key of any type (what must not be readable by
 * group or others); read from the BEGIN line only, before any parsing.
 */
export function holdsPrivateKey(pem: Buffer): boolean {
  const label = pemLabel(pem);
  return label !== undefined && /PRIVATE KEY$/.test(label);
}

/** The label of the first PEM block ("PRIVATE KEY", "PUBLIC KEY", …), read without decoding the body. */
function pemLabel(pem: Buffer): string | undefined {
  const start = pem.indexOf("-----BEGIN ");
  if (start < 0) return undefined;
  const from = start + "-----BEGIN ".length;
  const end = pem.indexOf("-----", from);
  if (end < 0 || end - from > 40) return undefined;
  return pem.subarray(from, end).toString("latin1");
}

function wrapParse(parse: () => KeyObject, where: string): KeyObject {
  try {
    return parse();
  } catch (cause) {
    throw malformed(where, cause);
  }
}

// A wrong passphrase, as each runtime reports it: Node and Bun ERR_OSSL_BAD_DECRYPT; Deno
// ERR_OSSL_EVP_BAD_DECRYPT (PKCS#1) or no code at all, only OpenSSL's "bad decrypt" (PKCS#8).
function isBadDecrypt(cause: unknown): boolean {
  const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown };
  if (code === "ERR_OSSL_BAD_DECRYPT" || code === "ERR_OSSL_EVP_BAD_DECRYPT") return true;
  return code === undefined && typeof message === "string" && /\bbad decrypt$/i.test(message);
}

// Bun (BoringSSL) cannot load some key types at all (RSA-PSS): not a damaged file.
function isUnsupportedAlgorithm(cause: unknown): boolean {
  return (cause as { code?: unknown } | null)?.code === "ERR_OSSL_EVP_UNSUPPORTED_ALGORITHM";
}

function malformed(where: string, cause: unknown): ConfigError {
  if (isUnsupportedAlgorithm(cause)) {
    return badKey(
      `${where} holds a key of an algorithm this runtime's crypto does not support, not an RSA key. local-rsa needs RSA keys. ${GENERATE_HINT}`,
      cause,
    );
  }
  return badKey(
    `${where} is not a valid PEM key (the PEM body could not be decoded; the file may be truncated or mangled). ${GENERATE_HINT}`,
    cause,
  );
}

function badKey(message: string, cause?: unknown): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_KEY",
    `local-rsa: ${message}`,
    cause === undefined ? {} : { cause },
  );
}
