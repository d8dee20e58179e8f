import { pbkdf2Sync } from "node:crypto";
import { ConfigError } from "@envelope/core";
import { secretFromInput, secretFromText } from "@envelope/core/internal";

/** Bytes in a Fernet key: a 16-byte HMAC-SHA256 signing key, then a 16-byte AES-128 key. */
export const FERNET_KEY_BYTES = 32;

/**
 * Parses a Fernet key: url-safe base64 of 32 bytes (44 characters with its `=`), as
 * `Fernet.generate_key()` and the `fernet` npm package make them. Standard base64 and a
 * missing `=` are accepted too.
 *
 * @example
 * const key = parseFernetKey(process.env.FERNET_KEY!);
 */
export function parseFernetKey(text: string | Uint8Array, where = "the given key"): Buffer {
  const s = (
    typeof text === "string"
      ? text
      : Buffer.from(text.buffer, text.byteOffset, text.length).toString("utf8")
  ).trim();
  const key = /^[A-Za-z0-9+/_-]{43}=?$/.test(s) ? secretFromText(s, "base64") : undefined;
  if (key?.length !== FERNET_KEY_BYTES) {
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      `Fernet key from ${where} is not 32 bytes in url-safe base64 (44 characters, as Fernet.generate_key() prints).`,
      { details: { field: "fernetKey" } },
    );
  }
  return key;
}

/** How a Django-style app turns SECRET_KEY + a salt into its Fernet key. */
export interface Pbkdf2FernetOptions {
  /** The password (e.g. Django's SECRET_KEY), as UTF-8 text or bytes. */
  secret: string | Uint8Array;
  /** The salt (e.g. settings.ENCRYPTION_SALT). */
  salt: string | Uint8Array;
  /** How a string `salt` is turned into bytes. Default `utf8` (Python's `.encode()`). */
  saltEncoding?: "utf8" | "hex" | "base64";
  /** PBKDF2 iterations, exactly as the app used (Django snippets use 100,000 or 480,000). */
  iterations: number;
  /**
   * How the app turned the 32 derived bytes into the Fernet key:
   * - `raw` (default): `urlsafe_b64encode(kdf.derive(secret))`, the derived bytes are the key;
   * - `hex`: `urlsafe_b64encode(kdf.derive(secret).hex()[:32].encode())`, the first 32
   *   lowercase hex characters of the derived bytes, as ASCII, are the key.
   */
  output?: "raw" | "hex";
}

/**
 * Derives a Fernet key with PBKDF2-HMAC-SHA256, the Django pattern:
 * `Fernet(urlsafe_b64encode(PBKDF2HMAC(SHA256(), length=32, salt=SALT, iterations=N).derive(SECRET_KEY)))`.
 *
 * @example
 * const key = deriveFernetKey({ secret: env.SECRET_KEY, salt: env.ENCRYPTION_SALT, iterations: 100_000 });
 */
export function deriveFernetKey(options: Pbkdf2FernetOptions): Buffer {
  const { iterations } = options;
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 100_000_000) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "PBKDF2 iterations must be a positive integer: the exact count the application used.",
      { details: { field: "iterations" } },
    );
  }
  const secret = secretFromInput(options.secret);
  const salt =
    typeof options.salt === "string"
      ? Buffer.from(options.salt, options.saltEncoding ?? "utf8")
      : Buffer.from(options.salt);
  if (secret.length === 0 || salt.length === 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      "PBKDF2 Fernet key: the secret and the salt must both be non-empty.",
      { details: { field: secret.length === 0 ? "secret" : "salt" } },
    );
  }
  const derived = pbkdf2Sync(secret, salt, iterations, FERNET_KEY_BYTES, "sha256");
  secret.fill(0);
  const output = options.output ?? "raw";
  if (output === "raw") return derived;
  if (output !== "hex") {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", 'PBKDF2 output must be "raw" or "hex".', {
      details: { field: "output" },
    });
  }
  const key = secretFromText(derived.toString("hex").slice(0, FERNET_KEY_BYTES), "utf8");
  derived.fill(0);
  return key;
}
