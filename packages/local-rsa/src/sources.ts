import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "@envelope/core";
import {
  checkKeyFileMode,
  secretCopy,
  secretFromFile,
  secretFromInput,
  secretFromText,
} from "@envelope/core/internal";
import { PROVIDER_ID } from "./constants.js";
import { holdsPrivateKey, type ParsedKey, parsePemKey } from "./pem.js";

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Where one RSA key (or, for a directory, several) comes from. Give exactly one of
 * `pem`, `path` or `env`, and at most one passphrase source.
 */
export interface RsaKeySource {
  /** PEM text: PKCS#8 private (optionally encrypted), PKCS#1 private, or SPKI public. */
  pem?: string | Uint8Array;
  /** A PEM file (e.g. `/run/secrets/enc_key.pem`); a directory loads every `*.pem` in it, newest first. */
  path?: string;
  /** NAME of an environment variable holding PEM text (literal `\n` escapes accepted). */
  env?: string;
  /** Passphrase of an encrypted private key. */
  passphrase?: string | Uint8Array;
  /** NAME of an environment variable holding the passphrase. */
  passphraseEnv?: string;
  /** A file holding the passphrase (trailing newlines are ignored). */
  passphraseFile?: string;
}

/** One loaded key and a human label of where it came from (never its content). */
export interface LoadedKey extends ParsedKey {
  readonly where: string;
}

/**
 * Loads every source in order; a directory contributes its keys newest file first. A
 * private key or passphrase file that group or others can access is warned about once, or
 * refused when `strict` (see checkKeyFileMode in core).
 */
export function loadSources(
  sources: readonly RsaKeySource[],
  env: Env,
  strict = false,
): LoadedKey[] {
  return sources.flatMap((source, i) => loadSource(source, `keys[${i}]`, env, strict));
}

function loadSource(source: RsaKeySource, field: string, env: Env, strict: boolean): LoadedKey[] {
  if (typeof source !== "object" || source === null) {
    throw badConfig(
      `${field} must be an object such as { path: "/run/secrets/enc_key.pem" }.`,
      field,
    );
  }
  const given = (["pem", "path", "env"] as const).filter((k) => source[k] !== undefined);
  if (given.length !== 1) {
    throw badConfig(
      `${field} must give exactly one of pem, path or env (got ${given.length === 0 ? "none" : given.join(" and ")}).`,
      field,
    );
  }
  const passphrase = readPassphrase(source, field, env, strict);
  try {
    if (source.pem !== undefined) {
      if (typeof source.pem !== "string" && !(source.pem instanceof Uint8Array)) {
        throw badConfig(`${field}.pem must be PEM text (a string or bytes).`, `${field}.pem`);
      }
      return [load(secretFromInput(source.pem), passphrase, `${field}.pem`)];
    }
    if (source.path !== undefined) return loadPath(source.path, passphrase, field, strict);
    return [loadEnv(source.env, passphrase, field, env)];
  } finally {
    passphrase?.fill(0);
  }
}

function loadEnv(
  name: unknown,
  passphrase: Buffer | undefined,
  field: string,
  env: Env,
): LoadedKey {
  if (typeof name !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw badConfig(
      `${field}.env must be the NAME of an environment variable (e.g. "ENVELOPE_RSA_KEY"), not the PEM itself; pass PEM text as pem.`,
      `${field}.env`,
    );
  }
  const value = env[name];
  if (value === undefined || value.trim() === "") {
    throw badConfig(
      `environment variable ${name} (${field}.env) is not set or empty. Put the PEM key in it.`,
      `${field}.env`,
    );
  }
  // Env files and CI secret UIs often flatten newlines to a literal "\n".
  return load(
    secretFromText(value.replace(/\\n/g, "\n"), "utf8"),
    passphrase,
    `environment variable ${name}`,
  );
}

function loadPath(
  path: unknown,
  passphrase: Buffer | undefined,
  field: string,
  strict: boolean,
): LoadedKey[] {
  if (typeof path !== "string" || path === "") {
    throw badConfig(`${field}.path must be a file or directory path.`, `${field}.path`);
  }
  const stat = statOrThrow(path, `key path ${path}`);
  if (!stat.isDirectory()) return [loadFile(path, stat.mode, passphrase, strict)];
  let names: string[];
  try {
    names = readdirSync(path);
  } catch (cause) {
    throw unreadable(`key directory ${path}`, cause);
  }
  // Kubernetes secret volumes hold "..data" style entries; only visible *.pem files count.
  const files = names
    .filter((name) => name.endsWith(".pem") && !name.startsWith("."))
    .map((name) => ({
      file: join(path, name),
      name,
      stat: statOrThrow(join(path, name), `key file ${join(path, name)}`),
    }))
    .filter((f) => f.stat.isFile())
    // Newest first, to the second: files written together (a Kubernetes Secret update, a
    // copied folder) tie and fall back to reverse name order, so timestamped names still
    // put the newest first.
    .sort(
      (a, b) =>
        seconds(b.stat.mtimeMs) - seconds(a.stat.mtimeMs) ||
        (a.name < b.name ? 1 : a.name > b.name ? -1 : 0),
    );
  if (files.length === 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_KEY",
      `local-rsa: key directory ${path} holds no *.pem files. Put the PEM keys there, or point at a file.`,
      {
        details: { field: `${field}.path` },
      },
    );
  }
  return files.map((f) => loadFile(f.file, f.stat.mode, passphrase, strict));
}

const seconds = (ms: number) => Math.floor(ms / 1000);

function loadFile(
  file: string,
  mode: number,
  passphrase: Buffer | undefined,
  strict: boolean,
): LoadedKey {
  let bytes: Buffer;
  try {
    bytes = secretFromFile(file);
  } catch (cause) {
    throw unreadable(`key file ${file}`, cause);
  }
  // Public keys may be world-readable; a private key is checked before it is parsed.
  if (holdsPrivateKey(bytes)) {
    try {
      checkKeyFileMode(file, mode, { provider: PROVIDER_ID, what: "private key file", strict });
    } catch (error) {
      bytes.fill(0);
      throw error;
    }
  }
  return load(bytes, passphrase, `key file ${file}`);
}

/** Parses and then zeroes `bytes` (always a copy this module made). */
function load(bytes: Buffer, passphrase: Buffer | undefined, where: string): LoadedKey {
  try {
    return { ...parsePemKey(bytes, passphrase, where), where };
  } finally {
    bytes.fill(0);
  }
}

function readPassphrase(
  source: RsaKeySource,
  field: string,
  env: Env,
  strict: boolean,
): Buffer | undefined {
  const given = (["passphrase", "passphraseEnv", "passphraseFile"] as const).filter(
    (k) => source[k] !== undefined,
  );
  if (given.length > 1) {
    throw badConfig(
      `${field}: give at most one of passphrase, passphraseEnv, passphraseFile (got ${given.join(" and ")}).`,
      field,
    );
  }
  if (source.passphrase !== undefined) {
    if (typeof source.passphrase !== "string" && !(source.passphrase instanceof Uint8Array)) {
      throw badConfig(`${field}.passphrase must be a string or bytes.`, `${field}.passphrase`);
    }
    return secretFromInput(source.passphrase);
  }
  if (source.passphraseEnv !== undefined) {
    const name = source.passphraseEnv;
    const value = typeof name === "string" ? env[name] : undefined;
    if (value === undefined || value === "") {
      throw badConfig(
        `environment variable ${String(name)} (${field}.passphraseEnv) is not set or empty. Put the key's passphrase in it.`,
        `${field}.passphraseEnv`,
      );
    }
    return secretFromText(value, "utf8");
  }
  if (source.passphraseFile !== undefined) {
    const file = source.passphraseFile;
    const mode = statOrThrow(String(file), `passphrase file ${String(file)}`).mode;
    checkKeyFileMode(String(file), mode, {
      provider: PROVIDER_ID,
      what: "passphrase file",
      strict,
    });
    let bytes: Buffer;
    try {
      bytes = secretFromFile(String(file));
    } catch (cause) {
      throw unreadable(`passphrase file ${String(file)}`, cause);
    }
    // `echo secret > file` and most secret mounts end with a newline that is not part of it.
    let end = bytes.length;
    while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--;
    const passphrase = secretCopy(bytes.subarray(0, end));
    bytes.fill(0);
    if (passphrase.length === 0)
      throw badConfig(`passphrase file ${String(file)} is empty.`, `${field}.passphraseFile`);
    return passphrase;
  }
  return undefined;
}

function statOrThrow(path: string, what: string) {
  try {
    return statSync(path);
  } catch (cause) {
    throw unreadable(what, cause);
  }
}

function unreadable(what: string, cause: unknown): ConfigError {
  const code = (cause as { code?: string })?.code;
  const why =
    code === "ENOENT"
      ? "does not exist"
      : code === "EACCES"
        ? "is not readable by this process"
        : "cannot be read";
  return new ConfigError(
    "ENVELOPE_BAD_KEY",
    `local-rsa: ${what} ${why}. Check the path and its permissions (the process user must be able to read it).`,
    {
      cause,
    },
  );
}

function badConfig(message: string, field: string): ConfigError {
  return new ConfigError("ENVELOPE_BAD_CONFIG", `local-rsa: ${message}`, { details: { field } });
}
