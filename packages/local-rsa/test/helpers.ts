import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PemPair {
  privatePem: string;
  publicPem: string;
}

/** A fresh RSA key pair as PEM (2048-bit by default: fast enough for tests). */
export function rsaPem(modulusLength = 2048, passphrase?: string): PemPair {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength });
  return {
    privatePem: passphrase
      ? privateKey
          .export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase })
          .toString()
      : privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** A temp directory removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "envelope-local-rsa-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The PEM body (base64 lines) of a key, for "never appears in output" checks. */
export function pemBody(pem: string): string[] {
  return pem
    .split("\n")
    .filter((line) => line.length > 20 && !line.startsWith("-----"))
    .slice(0, 3);
}

export const ctx = { table: "users", column: "email", id: "42" };
