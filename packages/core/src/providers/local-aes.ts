import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import { inspect } from "node:util";
import { redactSecrets } from "../config/uri.js";
import { aesKeyUnwrap, aesKeyWrap } from "../crypto/key-wrap.js";
import { aesKeyFromText, secretCopy, secretFromFile } from "../crypto/secret-bytes.js";
import { ConfigError, EnvelopeError, ProviderError } from "../errors.js";
import type { WrappedKey } from "../format/envelope.js";
import { printable } from "../format/printable.js";
import { checkKeyFileMode, strictKeyFiles } from "./key-file.js";
import type { KeyProvider, ProviderFactory } from "./types.js";

const ID = "local-aes";

/** A 256-bit key-wrapping key given as bytes, or as 64 hex / 44 base64 characters. */
export type AesKeyInput = Uint8Array | string;

export interface LocalAesOptions {
  /** One key, or several: the first wraps new data keys, all of them unwrap (rotation). */
  keys: AesKeyInput | readonly AesKeyInput[];
}

/**
 * Local AES-256 master keys (AES Key Wrap, RFC 3394) from an env var, a file or a Docker
 * secret: the setup most hand-rolled encryption starts from, without a KMS. Key reference
 * = a 16-hex-digit fingerprint (SHA-256 of a label and the key), never the key.
 *
 * @example
 * const provider = localAesProvider({ keys: process.env.PII_KEY! }); // 64 hex chars
 */
export function localAesProvider(options: LocalAesOptions): KeyProvider {
  const raw = Array.isArray(options?.keys) ? options.keys : [options?.keys as AesKeyInput];
  if (raw.length === 0 || raw.some((k) => k === undefined)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "local-aes: give at least one key (32 bytes, 64 hex or base64).",
      {
        details: { field: "keys" },
      },
    );
  }
  const keys = new Map<string, Buffer>();
  for (const input of raw) {
    const key = parseKey(input);
    keys.set(fingerprint(key), key);
  }
  const [keyRef, current] = [...keys.entries()][0]!;
  const provider: KeyProvider & { [inspect.custom](): string; toJSON(): object } = {
    id: ID,
    keyRef,
    handles: (entry) => entry.providerId === ID && keys.has(entry.keyRef),
    async wrap(dataKey): Promise<WrappedKey> {
      return { providerId: ID, keyRef, wrapped: aesKeyWrap(current, dataKey) };
    },
    async unwrap(entry): Promise<Uint8Array> {
      const key = keys.get(entry.keyRef);
      if (!key) {
        throw new ProviderError(
          "ENVELOPE_KEY_NOT_FOUND",
          `local-aes key ${printable(entry.keyRef)} is not configured; add it to keys.`,
          {
            details: { provider: ID, keyRef: printable(entry.keyRef) },
          },
        );
      }
      try {
        return aesKeyUnwrap(key, entry.wrapped);
      } catch (cause) {
        throw new ProviderError(
          "ENVELOPE_UNWRAP_FAILED",
          `local-aes could not unwrap the data key under key ${printable(entry.keyRef)}: the wrapped key is corrupted.`,
          { cause, details: { provider: ID, keyRef: printable(entry.keyRef) } },
        );
      }
    },
    toJSON: () => ({ provider: ID, keyRef, keys: [...keys.keys()] }),
    [inspect.custom]: () => `LocalAesProvider { keyRef: '${keyRef}', keys: ${keys.size} }`,
  };
  return provider;
}

/**
 * `local-aes://env/VAR_NAME` (key in an env var) or `local-aes:///path/to/key` (a file
 * holding 32 raw bytes, 64 hex or base64 characters; e.g. a Docker secret). A key file that
 * group or others can access is warned about once (`ENVELOPE_KEY_FILE_PERMISSIONS`) and
 * refused with `ENVELOPE_BAD_KEY` when `ENVELOPE_STRICT_KEY_FILES=1` is in `env`.
 */
export const localAesFactory: ProviderFactory = {
  scheme: ID,
  async fromUri(uri, env = process.env) {
    const key = keyFromUri(uri, env);
    try {
      return localAesProvider({ keys: [key] });
    } finally {
      if (key instanceof Uint8Array) key.fill(0); // the provider holds its own copy
    }
  },
  async fromConfig(config) {
    return localAesProvider(config as unknown as LocalAesOptions);
  },
};

function keyFromUri(uri: string, env: Readonly<Record<string, string | undefined>>): AesKeyInput {
  const rest = uri.slice(`${ID}://`.length);
  // Refuse (without echoing) rather than read "?…" or "#…" as part of a variable name or
  // path: people paste tokens and keys there, and the name ends up in the message.
  if (/[?#]/.test(rest)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "local-aes URIs take no query string or fragment: use local-aes://env/VAR_NAME or local-aes:///absolute/path (percent-encode ? and # in paths).",
    );
  }
  if (rest.startsWith("env/")) {
    const name = rest.slice(4);
    const value = env[name];
    if (!value) {
      // A key pasted where the variable name goes (local-aes://env/<hex>) is not echoed.
      const shown = redactSecrets(name).slice(0, 100);
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `local-aes: environment variable ${shown} is not set. Use local-aes://env/VAR_NAME with the name of a variable that holds the key, never the key itself.`,
        {
          details: { field: shown },
        },
      );
    }
    return value;
  }
  if (rest.startsWith("/")) {
    let bytes: Buffer;
    try {
      const file = decodeURIComponent(rest);
      // Before reading: a refused key never enters memory.
      checkKeyFileMode(file, statSync(file).mode, {
        provider: ID,
        what: "key file",
        strict: strictKeyFiles(undefined, env),
      });
      bytes = secretFromFile(file);
    } catch (error) {
      if (EnvelopeError.isInstance(error)) throw error;
      // The system error names the path (which may be a pasted key): keep its code only.
      const code = (error as NodeJS.ErrnoException)?.code ?? "EIO";
      throw new ConfigError(
        "ENVELOPE_BAD_KEY",
        `local-aes: cannot read key file ${redactSecrets(rest).slice(0, 200)} (${code}). Check the path and permissions; the URI names a file holding the key, never the key itself.`,
        { cause: new Error(`reading the key file failed: ${code}`), details: { code } },
      );
    }
    if (bytes.length === 32) return bytes;
    const text = bytes.toString("utf8");
    bytes.fill(0);
    return text;
  }
  throw new ConfigError(
    "ENVELOPE_BAD_CONFIG",
    "local-aes URIs are local-aes://env/VAR_NAME or local-aes:///absolute/path (never the key itself).",
  );
}

function parseKey(input: AesKeyInput): Buffer {
  let key: Buffer | undefined;
  if (input instanceof Uint8Array) key = secretCopy(input);
  else if (typeof input === "string") key = aesKeyFromText(input);
  if (key?.length !== 32) {
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      "local-aes: a key must be 32 bytes, given raw, as 64 hex characters or as base64. Generate one with: openssl rand -hex 32",
    );
  }
  return key;
}

function fingerprint(key: Uint8Array): string {
  return createHash("sha256")
    .update("envelope:local-aes:fingerprint:")
    .update(key)
    .digest("hex")
    .slice(0, 16);
}
