import { createDecipheriv } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { inspect } from "node:util";
import { ConfigError, DecryptionError, FormatError } from "@envelope/core";
import { checkKeyFileMode, strictKeyFiles } from "@envelope/core/internal";

/** The legacy value formats `migrateTable` understands. */
export type LegacyFormat = "plaintext" | "aes-256-gcm-json" | "aes-256-cbc";

/** Where a legacy static key lives. Never logged; error messages name only the source. */
export type LegacyKeySource = { env: string } | { file: string } | { bytes: Uint8Array };

/** Turns one legacy column value into plaintext bytes. */
export interface LegacyDecoder {
  readonly format: LegacyFormat;
  decode(value: string | Buffer): Buffer;
}

export interface LegacyOptions {
  format: LegacyFormat;
  /** Required for the two AES formats. */
  key?: LegacyKeySource;
  /**
   * Reject decrypted values that are not valid UTF-8 (default true for aes-256-cbc). CBC
   * has no integrity check: a wrong key passes the padding check about 1 time in 256,
   * and this catches nearly all of those instead of migrating garbage.
   */
  requireUtf8?: boolean;
  /** Environment used for `{ env }` keys. Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * A decoder for legacy values:
 * - `plaintext`: the value itself (text as UTF-8, bytes as is);
 * - `aes-256-gcm-json`: `{"iv":"<hex>","authTag":"<hex>","encrypted":"<hex>"}` under a static key;
 * - `aes-256-cbc`: `<iv>:<ciphertext>` in hex or base64, PKCS#7 padding, static key.
 * Keys are 32 bytes given as 64 hex or base64 characters (or raw in a file).
 *
 * @example
 * const from = legacyDecoder({ format: "aes-256-cbc", key: { env: "LEGACY_ENC_KEY" } });
 */
export function legacyDecoder(options: LegacyOptions): LegacyDecoder {
  const format = options.format;
  if (format === "plaintext") {
    return tag({
      format,
      decode: (v) => (typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v)),
    });
  }
  if (format !== "aes-256-gcm-json" && format !== "aes-256-cbc") {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Unknown legacy format "${String(format)}". Use plaintext, aes-256-gcm-json or aes-256-cbc.`,
      { details: { field: "from" } },
    );
  }
  if (!options.key) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Legacy format ${format} needs its static key: { env: "VAR" } or { file: "/path" }.`,
      {
        details: { field: "legacyKey" },
      },
    );
  }
  const key = loadLegacyKey(options.key, options.env);
  if (format === "aes-256-gcm-json") return tag({ format, decode: (v) => decodeGcmJson(key, v) });
  const requireUtf8 = options.requireUtf8 ?? true;
  return tag({ format, decode: (v) => decodeCbc(key, v, requireUtf8) });
}

/** Reads a 32-byte key from an env var or a file (hex, base64, or 32 raw bytes). */
export function loadLegacyKey(
  source: LegacyKeySource,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Buffer {
  let raw: Buffer | string | undefined;
  let where: string;
  if ("bytes" in source) {
    raw = Buffer.from(source.bytes);
    where = "the given bytes";
  } else if ("env" in source) {
    where = `environment variable ${source.env}`;
    raw = env[source.env];
    if (!raw)
      throw new ConfigError("ENVELOPE_BAD_KEY", `Legacy key: ${where} is not set.`, {
        details: { field: source.env },
      });
  } else {
    where = `file ${source.file}`;
    try {
      checkKeyFileMode(source.file, statSync(source.file).mode, {
        provider: "legacy",
        what: "key file",
        strict: strictKeyFiles(undefined, env),
      });
      const bytes = readFileSync(source.file);
      raw = bytes.length === 32 ? bytes : bytes.toString("utf8");
    } catch (cause) {
      if (ConfigError.isInstance(cause)) throw cause;
      throw new ConfigError(
        "ENVELOPE_BAD_KEY",
        `Legacy key: cannot read ${where}. Check the path and permissions.`,
        { cause },
      );
    }
  }
  let key: Buffer | undefined;
  if (Buffer.isBuffer(raw)) key = raw;
  else {
    const text = raw.trim();
    if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, "hex");
    else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) key = Buffer.from(text, "base64");
  }
  if (key?.length !== 32) {
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      `Legacy key from ${where} is not a 32-byte key given as 64 hex characters, base64, or 32 raw bytes.`,
    );
  }
  return key;
}

function decodeGcmJson(key: Buffer, value: string | Buffer): Buffer {
  let parsed: { iv?: unknown; authTag?: unknown; encrypted?: unknown };
  try {
    parsed = JSON.parse(typeof value === "string" ? value : value.toString("utf8"));
  } catch (cause) {
    throw notLegacy("aes-256-gcm-json", "not JSON", cause);
  }
  const hex = (x: unknown) => typeof x === "string" && /^([0-9a-fA-F]{2})*$/.test(x);
  if (!parsed || !hex(parsed.iv) || !hex(parsed.authTag) || !hex(parsed.encrypted)) {
    throw notLegacy("aes-256-gcm-json", "needs hex fields iv, authTag, encrypted");
  }
  const iv = Buffer.from(parsed.iv as string, "hex");
  const authTag = Buffer.from(parsed.authTag as string, "hex");
  if (iv.length < 12 || iv.length > 16 || authTag.length !== 16)
    throw notLegacy("aes-256-gcm-json", "iv must be 12–16 bytes and authTag 16");
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: 16 });
    decipher.setAuthTag(authTag);
    return Buffer.concat([
      decipher.update(Buffer.from(parsed.encrypted as string, "hex")),
      decipher.final(),
    ]);
  } catch (cause) {
    throw wrongKey("aes-256-gcm-json", cause);
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function decodeCbc(key: Buffer, value: string | Buffer, requireUtf8: boolean): Buffer {
  const text = (typeof value === "string" ? value : value.toString("utf8")).trim();
  const parts = text.split(":");
  if (parts.length !== 2) throw notLegacy("aes-256-cbc", "expected <iv>:<ciphertext>");
  const [ivText, ctText] = parts as [string, string];
  const isHex = /^[0-9a-fA-F]{32}$/.test(ivText) && /^([0-9a-fA-F]{32})+$/.test(ctText);
  const iv = Buffer.from(ivText, isHex ? "hex" : "base64");
  const ciphertext = Buffer.from(ctText, isHex ? "hex" : "base64");
  if (iv.length !== 16 || ciphertext.length === 0 || ciphertext.length % 16 !== 0) {
    throw notLegacy(
      "aes-256-cbc",
      "iv must be 16 bytes and the ciphertext a multiple of 16 bytes (hex or base64)",
    );
  }
  let plain: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-cbc", key, iv);
    plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (cause) {
    throw wrongKey("aes-256-cbc", cause);
  }
  if (requireUtf8) {
    try {
      strictUtf8.decode(plain);
    } catch (cause) {
      plain.fill(0);
      throw wrongKey("aes-256-cbc", cause);
    }
  }
  return plain;
}

function notLegacy(format: LegacyFormat, problem: string, cause?: unknown): FormatError {
  return new FormatError(
    "ENVELOPE_BAD_FORMAT",
    `Value is not in the legacy ${format} format: ${problem}.`,
    {
      cause,
      details: { field: "legacyValue" },
    },
  );
}

function wrongKey(format: LegacyFormat, cause: unknown): DecryptionError {
  return new DecryptionError(
    "ENVELOPE_DECRYPT_FAILED",
    `Could not decrypt a legacy ${format} value: wrong legacy key, or the value was altered.`,
    { cause },
  );
}

function tag(decoder: LegacyDecoder): LegacyDecoder {
  return Object.assign(decoder, {
    toJSON: () => ({ format: decoder.format }),
    [inspect.custom]: () => `LegacyDecoder(${decoder.format})`,
  });
}
