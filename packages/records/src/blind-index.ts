import { createHash, createHmac, hkdfSync } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { inspect } from "node:util";
import { ConfigError } from "@envelope/core";
import {
  checkKeyFileMode,
  secretCopy,
  secretFromText,
  strictKeyFiles,
} from "@envelope/core/internal";
import { nameProblem, shown } from "./names.js";
import { type Normalizer, normalizeWith } from "./normalize.js";

/** How one field is indexed. */
export interface BlindIndexSpec {
  /** Canonical form applied before hashing (and to lookups). Default: the value as given. */
  normalize?: Normalizer;
  /**
   * Bits of the HMAC kept, a multiple of 8 from 8 to 256. Default 32: a lookup in a
   * table of N rows returns about N / 2^32 unrelated rows (0.02 % at a million rows), which
   * the helpers filter out after decrypting. See README "Blind indexes: what leaks".
   */
  bits?: number;
  /** Column that stores the index. Default `<field>_idx`. */
  column?: string;
}

/** Keyed, truncated HMAC-SHA256 of normalized values; lookups during key rotation via `candidates`. */
export interface BlindIndexer {
  /** The index of `value` under the current key (the first key), as lowercase hex. */
  index(field: string, table: string, value: string, spec?: BlindIndexSpec): string;
  /** The index under every configured key, current first, without duplicates: `WHERE idx = ANY($1)`. */
  candidates(field: string, table: string, value: string, spec?: BlindIndexSpec): string[];
  /** Non-secret ids of the keys (first = current). */
  readonly keyIds: readonly string[];
}

export type BlindIndexKey = Uint8Array | string;

export interface BlindIndexerOptions {
  /**
   * Index keys, first = current, the rest still accepted on lookup while rows are
   * re-indexed. Each is exactly 32 bytes: a Uint8Array of 32 bytes, or a string of exactly
   * 64 hex characters, or canonical base64/base64url (43 characters, or 44 ending in `=`);
   * surrounding whitespace is ignored; anything else is ENVELOPE_BAD_KEY. Generate with
   * `openssl rand -hex 32`. Keep them apart from data keys and KMS keys: a different
   * secret, a different env variable.
   */
  keys: BlindIndexKey | readonly BlindIndexKey[];
}

export const DEFAULT_BLIND_INDEX_BITS = 32;
/** Blind index keys are exactly this many bytes. */
const KEY_BYTES = 32;
const DOMAIN = "envelope:blind-index:v1";

/**
 * Creates a blind indexer. Each (table, field) gets its own HMAC key, derived with
 * HKDF-SHA256 from the root key and the length-prefixed table and field names, so equal
 * values in two columns do not share an index.
 *
 * @example
 * const blindIndex = createBlindIndexer({ keys: process.env.USERS_INDEX_KEYS!.split(",") });
 * const idx = blindIndex.index("email", "users", "Alice@example.com", { normalize: "email" });
 * await pool.query("SELECT * FROM users WHERE email_idx = ANY($1)", [blindIndex.candidates("email", "users", email, { normalize: "email" })]);
 */
export function createBlindIndexer(options: BlindIndexerOptions): BlindIndexer {
  const list = (Array.isArray(options?.keys) ? options.keys : [options?.keys]) as BlindIndexKey[];
  if (list.length === 0 || list.some((k) => k === undefined || k === null)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "blind index keys: give at least one key (32 random bytes, e.g. `openssl rand -hex 32`).",
      { details: { field: "keys" } },
    );
  }
  const roots = list.map((k, i) => parseKey(k, i));
  const keyIds = roots.map((root) =>
    createHash("sha256").update(`${DOMAIN}:key-id`).update(root).digest("hex").slice(0, 16),
  );
  const twice = keyIds.findIndex((id, i) => keyIds.indexOf(id) !== i);
  if (twice !== -1) {
    for (const root of roots) root.fill(0);
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `blind index keys[${twice}] is the same key as keys[${keyIds.indexOf(keyIds[twice]!)}] (key id ${keyIds[twice]}). List each key once: the current key first, then the older keys still accepted on lookup.`,
      { details: { field: `keys[${twice}]` } },
    );
  }
  const fieldKeys = new Map<string, Buffer[]>();

  const keysFor = (table: string, field: string): Buffer[] => {
    const name = JSON.stringify([table, field]);
    let keys = fieldKeys.get(name);
    if (!keys) {
      const info = Buffer.concat([Buffer.from(DOMAIN, "ascii"), lp(table), lp(field)]);
      keys = roots.map((root) => Buffer.from(hkdfSync("sha256", root, Buffer.alloc(0), info, 32)));
      fieldKeys.set(name, keys);
    }
    return keys;
  };

  const compute = (key: Buffer, value: string, bits: number) =>
    createHmac("sha256", key)
      .update(Buffer.from(value, "utf8"))
      .digest()
      .subarray(0, bits / 8)
      .toString("hex");

  const prepare = (
    field: string,
    table: string,
    value: string,
    spec: BlindIndexSpec | undefined,
  ) => {
    checkName(table, "table");
    checkName(field, "field");
    if (typeof value !== "string") {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `Blind index of "${field}": the value must be a string (got ${value === null ? "null" : typeof value}).`,
        { details: { field } },
      );
    }
    const normalized = normalizeWith(spec?.normalize, value);
    if (!normalized.isWellFormed()) {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `Blind index of "${field}": the value contains an unpaired surrogate.`,
        { details: { field } },
      );
    }
    return { normalized, bits: checkBits(spec?.bits), keys: keysFor(table, field) };
  };

  const indexer: BlindIndexer & { toJSON(): unknown } = {
    keyIds,
    index(field, table, value, spec) {
      const { normalized, bits, keys } = prepare(field, table, value, spec);
      return compute(keys[0]!, normalized, bits);
    },
    candidates(field, table, value, spec) {
      const { normalized, bits, keys } = prepare(field, table, value, spec);
      return [...new Set(keys.map((k) => compute(k, normalized, bits)))];
    },
    toJSON: () => ({ blindIndexKeys: keyIds }),
  };
  Object.defineProperty(indexer, inspect.custom, {
    value: () => `BlindIndexer { keyIds: [${keyIds.map((id) => `'${id}'`).join(", ")}] }`,
  });
  return Object.freeze(indexer);
}

/**
 * Reads blind index keys from an environment variable (comma-separated, current first)
 * or from a file (one key per line, current first; `#` comments allowed), e.g. a
 * Kubernetes secret.
 *
 * @example
 * const blindIndex = createBlindIndexer({ keys: blindIndexKeysFrom({ env: "USERS_INDEX_KEYS" }) });
 */
export function blindIndexKeysFrom(
  source:
    | { env: string; environment?: Readonly<Record<string, string | undefined>> }
    | { file: string },
): string[] {
  let text: string | undefined;
  let where: string;
  if ("file" in source) {
    where = `file ${shown(source.file)}`;
    try {
      // The file holds secrets: warn (or, with ENVELOPE_STRICT_KEY_FILES=1, refuse) when
      // group or others can read it, as the key providers do.
      checkKeyFileMode(source.file, statSync(source.file).mode, {
        provider: "blind-index",
        what: "key file",
        strict: strictKeyFiles(undefined, process.env),
      });
      text = readFileSync(source.file, "utf8");
    } catch (cause) {
      if (ConfigError.isInstance(cause)) throw cause;
      // ENVELOPE_BAD_KEY, as docs/ERRORS.md says of a key file that cannot be read.
      throw new ConfigError(
        "ENVELOPE_BAD_KEY",
        `Could not read blind index keys from ${where}: check the path and permissions.`,
        { cause, details: { field: "file" } },
      );
    }
  } else {
    where = `env ${shown(source.env)}`;
    text = (source.environment ?? process.env)[source.env];
  }
  const keys = (text ?? "")
    .split(/[\n,]/)
    .map((line) => line.replace(/#.*/, "").trim())
    .filter((line) => line.length > 0);
  if (keys.length === 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `No blind index keys in ${where}. Generate one with \`openssl rand -hex 32\`.`,
      { details: { field: "keys" } },
    );
  }
  return keys;
}

/**
 * A blind index key: exactly 32 bytes, given as bytes or as one of three text encodings
 * (surrounding whitespace ignored):
 * - hex: exactly 64 characters `0-9a-f` (either case), as `openssl rand -hex 32` prints;
 * - base64 (`+/`) or base64url (`-_`): exactly 43 characters, or 44 ending in one `=`, in
 *   canonical form (the unused low bits of the last character are zero), as
 *   `openssl rand -base64 32` or Node's `toString("base64" | "base64url")` print. One
 *   alphabet per key.
 * Anything else is refused with ENVELOPE_BAD_KEY; the message never shows the key.
 */
function parseKey(key: BlindIndexKey, i: number): Buffer {
  const refuse = (problem: string) =>
    new ConfigError(
      "ENVELOPE_BAD_KEY",
      `blind index keys[${i}] ${problem}. A key is exactly 32 bytes: bytes, 64 hex characters, or canonical base64/base64url (43 characters, or 44 ending in "="). Generate one with \`openssl rand -hex 32\`.`,
      { details: { field: `keys[${i}]` } },
    );
  if (key instanceof Uint8Array) {
    if (key.length !== KEY_BYTES) throw refuse(`has ${key.length} bytes, not ${KEY_BYTES}`);
    return secretCopy(key);
  }
  if (typeof key !== "string") throw refuse(`is a ${typeof key}, not bytes or a string`);
  const text = key.trim();
  if (text.length === 64 && /^[0-9a-fA-F]{64}$/.test(text)) return secretFromText(text, "hex");
  const unpadded = text.length === 44 && text.endsWith("=") ? text.slice(0, 43) : text;
  if (unpadded.length !== 43 || !/^[A-Za-z0-9+/_-]{43}$/.test(unpadded)) {
    throw refuse(
      `is not 64 hex characters nor 43/44 base64 characters (got ${text.length} characters${describeWrongText(text)})`,
    );
  }
  if (/[+/]/.test(unpadded) && /[-_]/.test(unpadded)) {
    throw refuse("mixes the base64 (+/) and base64url (-_) alphabets");
  }
  // node's base64 decoder reads both alphabets.
  const bytes = secretFromText(unpadded.replaceAll("+", "-").replaceAll("/", "_"), "base64");
  // Node decodes leniently: 43 characters carry 258 bits, and the 2 spare bits of the last
  // character must be zero, or several strings would name one key.
  if (
    bytes.length !== KEY_BYTES ||
    bytes.toString("base64url") !== unpadded.replaceAll("+", "-").replaceAll("/", "_")
  ) {
    bytes.fill(0);
    throw refuse("is not canonical base64 (the last character has non-zero unused bits)");
  }
  return bytes;
}

/** True when `bits` is a usable `BlindIndexSpec.bits` (undefined: the default). */
export function validBits(bits: unknown): boolean {
  const b = bits ?? DEFAULT_BLIND_INDEX_BITS;
  return typeof b === "number" && Number.isInteger(b) && b >= 8 && b <= 256 && b % 8 === 0;
}

/**
 * What a key string that is neither 64 hex nor 43/44 base64 characters looks like, by its
 * length and alphabet only (never its content): "64 characters" alone reads as hex to
 * someone who pasted 48 bytes of base64.
 */
function describeWrongText(text: string): string {
  const n = text.length;
  if (n === 0) return "";
  if (/^[0-9a-fA-F]+$/.test(text) && n % 2 === 0) {
    const base64 = n % 4 !== 1 ? `, or ${Math.floor((n * 6) / 8)} as base64` : "";
    return `: ${n / 2} bytes as hex${base64}; a key is 32 bytes`;
  }
  const body = text.replace(/=+$/, "");
  if (/^[A-Za-z0-9+/_-]+$/.test(body) && n - body.length <= 2 && body.length % 4 !== 1) {
    return `: ${Math.floor((body.length * 6) / 8)} bytes as base64; a key is 32 bytes`;
  }
  return ", neither hex nor base64";
}

function checkBits(bits: number | undefined): number {
  const b = bits ?? DEFAULT_BLIND_INDEX_BITS;
  if (!validBits(bits)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `blind index bits must be a multiple of 8 from 8 to 256 (got ${String(bits)}); the default is ${DEFAULT_BLIND_INDEX_BITS}.`,
      { details: { field: "bits" } },
    );
  }
  return b;
}

function checkName(name: string, what: string): void {
  const problem = nameProblem(name);
  if (problem) {
    throw new ConfigError("ENVELOPE_BAD_INPUT", `Blind index: the ${what} name ${problem}.`, {
      details: { field: what },
    });
  }
}

/** u16 length prefix + UTF-8: unambiguous concatenation of table and field names. */
function lp(text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  const out = Buffer.allocUnsafe(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}
