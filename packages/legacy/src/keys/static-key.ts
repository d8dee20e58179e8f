import { statSync } from "node:fs";
import { ConfigError } from "@envelope/core";
import {
  aesKeyFromText,
  checkKeyFileMode,
  secretCopy,
  secretFromFile,
  secretFromInput,
  secretFromText,
  strictKeyFiles,
} from "@envelope/core/internal";

/** Where a legacy secret lives locally. Never logged; error messages name only the source. */
export type LegacyKeySource = { env: string } | { file: string } | { bytes: Uint8Array };

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads a secret from an env var, a file (e.g. a Docker / Kubernetes secret under
 * /run/secrets; the same permission rule as master key files) or given bytes. Env and
 * file contents are returned as read (a file's bytes, an env var's UTF-8); a trailing
 * newline of a file is the caller's to trim.
 */
export function readLocalSecret(source: LegacyKeySource, env: Env = process.env): Buffer {
  // Bytes, as typed; a string given from JavaScript is read as UTF-8, as before.
  if ("bytes" in source) return secretFromInput(source.bytes);
  if ("env" in source) {
    const raw = env[source.env];
    if (!raw)
      throw new ConfigError(
        "ENVELOPE_BAD_KEY",
        `Legacy key: environment variable ${source.env} is not set.`,
        { details: { field: source.env } },
      );
    return secretFromText(raw, "utf8");
  }
  try {
    checkKeyFileMode(source.file, statSync(source.file).mode, {
      provider: "legacy",
      what: "key file",
      strict: strictKeyFiles(undefined, env),
    });
    return secretFromFile(source.file);
  } catch (cause) {
    if (ConfigError.isInstance(cause)) throw cause;
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      `Legacy key: cannot read file ${source.file}. Check the path and permissions.`,
      { cause },
    );
  }
}

/** A human name for a source, for error messages (never its content). */
export function describeSource(source: LegacyKeySource): string {
  if ("bytes" in source) return "the given bytes";
  if ("env" in source) return `environment variable ${source.env}`;
  return `file ${source.file}`;
}

/**
 * Parses a 32-byte AES key given as 64 hex characters, base64 / base64url, or (when
 * `rawBytes`: from a file or bytes, never from an env var) 32 raw bytes.
 */
export function parseAesKey(raw: Buffer, where: string, rawBytes = true): Buffer {
  const key =
    rawBytes && raw.length === 32 ? secretCopy(raw) : aesKeyFromText(raw.toString("utf8"));
  raw.fill(0);
  if (key?.length !== 32) {
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      `Legacy key from ${where} is not a 32-byte key given as 64 hex characters, base64, or 32 raw bytes.`,
    );
  }
  return key;
}

/**
 * Reads a 32-byte AES key from an env var or a file (hex, base64, or 32 raw bytes).
 *
 * @example
 * const key = loadLegacyKey({ file: "/run/secrets/legacy_key" });
 */
export function loadLegacyKey(source: LegacyKeySource, env: Env = process.env): Buffer {
  const raw = readLocalSecret(source, env);
  return parseAesKey(raw, describeSource(source), !("env" in source));
}
