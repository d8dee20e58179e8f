import { ConfigError } from "@envelope/core";
import { cbcDecoder } from "./formats/cbc.js";
import { gcmJsonDecoder } from "./formats/gcm-json.js";
import { plaintextDecoder } from "./formats/plaintext.js";
import { type Env, type LegacyKeySource, loadLegacyKey } from "./keys/static-key.js";
import type { LegacyDecoder, LegacyFormat } from "./types.js";

/** The formats `legacyDecoder` builds from a single static key. */
export type StaticKeyFormat = "plaintext" | "aes-256-gcm-json" | "aes-256-cbc";

export interface LegacyOptions {
  /** `plaintext`, `aes-256-gcm-json` or `aes-256-cbc` (other formats have their own constructors). */
  format: LegacyFormat;
  /** Required for the two AES formats. */
  key?: LegacyKeySource;
  /** Reject decrypted aes-256-cbc values that are not valid UTF-8 (default true). */
  requireUtf8?: boolean;
  /** Environment used for `{ env }` keys. Default process.env. */
  env?: Env;
}

/**
 * A decoder for the static-key legacy formats:
 * - `plaintext`: the value itself (text as UTF-8, bytes as is);
 * - `aes-256-gcm-json`: `{"iv":"<hex>","authTag":"<hex>","encrypted":"<hex>"}` under a static key;
 * - `aes-256-cbc`: `<iv>:<ciphertext>` in hex or base64, PKCS#7 padding, static key.
 * Keys are 32 bytes given as 64 hex or base64 characters (or raw in a file). For Fernet,
 * pgcrypto, key-versioned and mixed columns see `fernetDecoder`, `pgcryptoDecoder`,
 * `versionedDecoder` and `mixedDecoder`.
 *
 * @example
 * const from = legacyDecoder({ format: "aes-256-cbc", key: { env: "LEGACY_ENC_KEY" } });
 */
export function legacyDecoder(options: LegacyOptions): LegacyDecoder {
  const format = options.format;
  if (format === "plaintext") return plaintextDecoder();
  if (format !== "aes-256-gcm-json" && format !== "aes-256-cbc") {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Unknown legacy format "${String(format).slice(0, 40)}". Use plaintext, aes-256-gcm-json or aes-256-cbc (or fernetDecoder, pgcryptoDecoder, versionedDecoder, mixedDecoder).`,
      { details: { field: "from" } },
    );
  }
  if (!options.key) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Legacy format ${format} needs its static key: { env: "VAR" } or { file: "/path" }.`,
      { details: { field: "legacyKey" } },
    );
  }
  const key = loadLegacyKey(options.key, options.env);
  try {
    if (format === "aes-256-gcm-json") return gcmJsonDecoder(key);
    return cbcDecoder(key, { requireUtf8: options.requireUtf8 ?? true });
  } finally {
    key.fill(0); // the decoder holds its own copy
  }
}
