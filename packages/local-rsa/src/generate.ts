import { generateKeyPair as generateRsa, randomBytes } from "node:crypto";
import { chmod, mkdir, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { ConfigError } from "@envelope/core";
import { secretFromText } from "@envelope/core/internal";
import {
  ALLOWED_MODULUS_LENGTHS,
  DEFAULT_MODULUS_LENGTH,
  type ModulusLength,
} from "./constants.js";
import { rsaKeyRef } from "./key-ref.js";

const generate = promisify(generateRsa);

export interface GenerateKeyPairOptions {
  /** Directory to write into; created with mode 0700 if missing. */
  dir: string;
  /**
   * File base name: writes `<name>.pem` and `<name>.pub.pem`. Default
   * `envelope-rsa-<yyyymmdd-hhmmss-mmm>-<6 hex>`: the UTC time to the millisecond, then a
   * random suffix, so keys generated in the same second (or by two processes at once) never
   * collide, and names sort by creation time. 39 characters: shorter than the 40 at which
   * error messages and the CLI redact a path segment as a possible key.
   */
  name?: string;
  /** RSA modulus size in bits. Default 3072. */
  modulusLength?: ModulusLength;
  /** Encrypt the private key PEM (PKCS#8, aes-256-cbc) with this passphrase. */
  passphrase?: string;
}

export interface GeneratedKeyPair {
  /** `<dir>/<name>.pem`: the PKCS#8 private key, mode 0600. */
  privateKeyPath: string;
  /** `<dir>/<name>.pub.pem`: the SPKI public key (for encrypt-only services), mode 0644. */
  publicKeyPath: string;
  /** The key reference entries wrapped under this key will carry. */
  keyRef: string;
}

/**
 * Generates an RSA key pair and writes it as PEM files: the private key with mode 0600
 * (encrypted with aes-256-cbc when a passphrase is given) and the public key beside it.
 * Never overwrites an existing file; if the second write fails, the first is removed.
 *
 * @example
 * const { privateKeyPath, keyRef } = await generateKeyPair({ dir: "./keys" });
 * const provider = localRsaProvider({ keys: { path: privateKeyPath } });
 */
export async function generateKeyPair(options: GenerateKeyPairOptions): Promise<GeneratedKeyPair> {
  const { dir, passphrase } = options ?? ({} as GenerateKeyPairOptions);
  const name = options?.name ?? defaultName(new Date());
  const modulusLength = options?.modulusLength ?? DEFAULT_MODULUS_LENGTH;
  if (typeof dir !== "string" || dir === "")
    throw badConfig(
      "generateKeyPair: dir is required (the folder to write the PEM files into).",
      "dir",
    );
  if (
    typeof name !== "string" ||
    !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name) ||
    name.endsWith(".pem")
  ) {
    throw badConfig(
      "generateKeyPair: name must be a plain file base name (letters, digits, . _ -; no slashes, no .pem suffix).",
      "name",
    );
  }
  if (!(ALLOWED_MODULUS_LENGTHS as readonly number[]).includes(modulusLength)) {
    throw badConfig(
      `generateKeyPair: modulusLength must be one of ${ALLOWED_MODULUS_LENGTHS.join(", ")} (default 3072).`,
      "modulusLength",
    );
  }
  if (passphrase !== undefined && (typeof passphrase !== "string" || passphrase === "")) {
    throw badConfig(
      "generateKeyPair: passphrase must be a non-empty string, or left out for an unencrypted key file.",
      "passphrase",
    );
  }
  const { publicKey, privateKey } = await generate("rsa", {
    modulusLength,
    publicExponent: 0x10001,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: passphrase
      ? { type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase }
      : { type: "pkcs8", format: "pem" },
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const privateKeyPath = join(dir, `${name}.pem`);
  const publicKeyPath = join(dir, `${name}.pub.pem`);
  await writeNew(privateKeyPath, privateKey, 0o600);
  try {
    await writeNew(publicKeyPath, publicKey, 0o644);
  } catch (error) {
    await unlink(privateKeyPath).catch(() => undefined);
    throw error;
  }
  return { privateKeyPath, publicKeyPath, keyRef: rsaKeyRef(publicKey) };
}

// "wx" fails if the file exists, so an existing key can never be replaced by accident;
// chmod afterwards because the process umask may have narrowed or the FS ignored `mode`.
async function writeNew(path: string, content: string, mode: number): Promise<void> {
  try {
    // Written from our own bytes, zeroed after: node would encode the string into its
    // shared Buffer pool and leave the private key there.
    const bytes = secretFromText(content, "utf8");
    try {
      await writeFile(path, bytes, { flag: "wx", mode });
    } finally {
      bytes.fill(0);
    }
  } catch (cause) {
    if ((cause as { code?: string })?.code === "EEXIST") {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `local-rsa: ${path} already exists; generateKeyPair never overwrites a key. Choose another name or dir, or move the old file away first.`,
        { cause, details: { field: "name" } },
      );
    }
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `local-rsa: cannot write ${path}. Check that the directory is writable.`,
      {
        cause,
        details: { field: "dir" },
      },
    );
  }
  await chmod(path, mode);
}

// Fixed width, so the alphabetical order is the creation order (a directory source falls
// back to reverse name order when mtimes tie); the random suffix makes names unique even
// within one millisecond (and the file is created exclusively: a clash fails, never
// overwrites). Under 40 characters, so `redactSecrets` shows the name in full: with 8 hex
// (41 characters) `envelope rotate` printed the new and the old key as the same `….pem`.
function defaultName(now: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const date = `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}`;
  const time = `${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  return `envelope-rsa-${date}-${time}-${p(now.getUTCMilliseconds(), 3)}-${randomBytes(3).toString("hex")}`;
}

function badConfig(message: string, field: string): ConfigError {
  return new ConfigError("ENVELOPE_BAD_CONFIG", `local-rsa: ${message}`, { details: { field } });
}
