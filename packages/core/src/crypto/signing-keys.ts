import { createPrivateKey, createPublicKey, KeyObject } from "node:crypto";
import { statSync } from "node:fs";
import { inspect } from "node:util";
import { ConfigError } from "../errors.js";
import { SIGNER_KEY_LENGTH } from "../format/constants.js";
import { checkKeyFileMode, strictKeyFiles } from "../providers/key-file.js";
import { ed25519Sign, isWeakEd25519Key, publicKeyFromRaw, rawPublicKey } from "./ed25519.js";
import { secretFromFile } from "./secret-bytes.js";

type Env = Readonly<Record<string, string | undefined>>;

/**
 * A writer's Ed25519 signing key: a private `KeyObject`, an unencrypted PKCS#8 PEM string
 * (`openssl genpkey -algorithm ed25519`), `ed25519:///absolute/path/signer.pem` (a PEM
 * file, e.g. a Docker/Kubernetes secret) or `ed25519://env/VAR_NAME` (PEM in an env var).
 */
export type SigningKeyInput = KeyObject | string;

/**
 * A reader's trusted writer key: a public `KeyObject`, an SPKI PEM string, the raw 32
 * bytes, `ed25519:<64 hex characters>` (what `generateSigningKeyPair().publicKey` prints),
 * or `ed25519:///absolute/path/signer.pub.pem`.
 */
export type TrustedSignerInput = KeyObject | string | Uint8Array;

/** Signed mode for a writer: every value it seals is suite 0x02, signed with `key`. */
export interface SigningOptions {
  /** The writer's Ed25519 private key. */
  readonly key: SigningKeyInput;
}

const PEM = "-----BEGIN";
const SHAPES =
  "Use a PEM string, ed25519:///absolute/path/key.pem, or ed25519://env/VAR_NAME (signing key), or ed25519:<64 hex> (trusted signer).";

/** A loaded signing key. Prints and serializes as its public key only. */
export class SigningKey {
  readonly #key: KeyObject;
  /** The raw 32-byte Ed25519 public key written into every value this key signs. */
  readonly publicKey: Buffer;

  constructor(key: KeyObject) {
    this.#key = key;
    this.publicKey = rawPublicKey(key);
  }

  sign(message: Uint8Array): Buffer {
    return ed25519Sign(this.#key, message);
  }

  /** `ed25519:<hex of the public key>`: the form readers put in trustedSigners. */
  get id(): string {
    return `ed25519:${this.publicKey.toString("hex")}`;
  }

  toJSON(): { type: "ed25519"; publicKey: string } {
    return { type: "ed25519", publicKey: this.id };
  }

  [inspect.custom](): string {
    return `SigningKey { publicKey: '${this.id}' }`;
  }
}

/** The pinned writer keys of a reader in signed mode, looked up by their raw bytes. */
export class TrustedSigners {
  readonly #keys = new Map<string, KeyObject>();

  constructor(keys: readonly KeyObject[]) {
    for (const key of keys) this.#keys.set(rawPublicKey(key).toString("hex"), key);
  }

  /** The key object for a raw public key, if trusted (public keys: no secret compared). */
  find(raw: Uint8Array): KeyObject | undefined {
    return this.#keys.get(Buffer.from(raw).toString("hex"));
  }

  /** The trusted keys as `ed25519:<hex>`. */
  ids(): string[] {
    return [...this.#keys.keys()].map((hex) => `ed25519:${hex}`);
  }

  toJSON(): string[] {
    return this.ids();
  }
}

/** Loads a writer's signing key; a ConfigError naming `field` (never the key) if it is not one. */
export function loadSigningKey(input: unknown, field: string, env: Env = process.env): SigningKey {
  if (input instanceof SigningKey) return input; // already loaded (createEnvelope)
  let key: KeyObject;
  if (input instanceof KeyObject) {
    key = input;
  } else if (typeof input === "string") {
    const pem = pemFrom(input, field, env, "signing");
    try {
      key = createPrivateKey(pem);
    } catch (cause) {
      const hint = pem.includes("PUBLIC KEY")
        ? "it is a public key; a writer needs the private key (readers get the public one)"
        : "it is not an unencrypted PKCS#8 PEM private key";
      throw bad(field, `${hint}.`, errorName(cause));
    }
  } else {
    throw bad(field, "give a private KeyObject, a PEM string, or an ed25519:/// URI.");
  }
  if (key.type !== "private")
    throw bad(field, "it is a public key; a writer needs the Ed25519 private key.");
  if (key.asymmetricKeyType !== "ed25519")
    throw bad(field, `it is a ${key.asymmetricKeyType} key; signed mode needs an Ed25519 key.`);
  return new SigningKey(key);
}

/** Loads a reader's trusted writer keys; refuses an empty list and private keys. */
export function loadTrustedSigners(
  inputs: unknown,
  field = "trustedSigners",
  env: Env = process.env,
): TrustedSigners {
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw bad(
      field,
      "give a non-empty array of Ed25519 public keys, or leave it unset to read unsigned values too.",
    );
  }
  return new TrustedSigners(inputs.map((input, i) => loadPublicKey(input, `${field}[${i}]`, env)));
}

function loadPublicKey(input: unknown, field: string, env: Env): KeyObject {
  let key: KeyObject;
  if (input instanceof KeyObject) {
    key = input;
  } else if (input instanceof Uint8Array) {
    if (input.length !== SIGNER_KEY_LENGTH)
      throw bad(field, `raw Ed25519 public keys are 32 bytes, got ${input.length}.`);
    key = rawKey(input, field);
  } else if (typeof input === "string") {
    const hex = /^ed25519:([0-9a-fA-F]{64})$/.exec(input.trim());
    if (hex) {
      key = rawKey(Buffer.from(hex[1]!, "hex"), field);
    } else {
      const pem = pemFrom(input, field, env, "trusted");
      if (/PRIVATE KEY/.test(pem)) {
        throw bad(
          field,
          "it is a private key. Readers get the writer's PUBLIC key (openssl pkey -in signer.pem -pubout); keep the private key on the writer only.",
        );
      }
      try {
        key = createPublicKey(pem);
      } catch (cause) {
        throw bad(field, "it is not an SPKI PEM public key.", errorName(cause));
      }
    }
  } else {
    throw bad(field, "give a public KeyObject, a PEM string, 32 raw bytes, or ed25519:<hex>.");
  }
  if (key.type !== "public") {
    throw bad(
      field,
      "it is a private key; give the writer's public key (keep the private key on the writer).",
    );
  }
  if (key.asymmetricKeyType !== "ed25519")
    throw bad(field, `it is a ${key.asymmetricKeyType} key; signed mode needs Ed25519 keys.`);
  if (isWeakEd25519Key(rawPublicKey(key))) {
    throw bad(
      field,
      "it is a small-order or non-canonical Ed25519 point, which no key pair has and under which a forged signature can verify: use the public key of the writer's real key pair.",
    );
  }
  return key;
}

function rawKey(raw: Uint8Array, field: string): KeyObject {
  try {
    return publicKeyFromRaw(raw);
  } catch (cause) {
    throw bad(field, "not a valid Ed25519 public key.", errorName(cause));
  }
}

/** The PEM text behind a key string: inline PEM, a file, or an env var. Never echoes a key. */
function pemFrom(input: string, field: string, env: Env, kind: "signing" | "trusted"): string {
  const text = input.trim();
  if (text.startsWith(PEM)) return text;
  if (text.startsWith("ed25519:///")) {
    let path: string;
    try {
      path = decodeURIComponent(text.slice("ed25519://".length));
    } catch {
      throw bad(field, "the URI path has a broken %-escape.");
    }
    if (path.includes("?") || path.includes("#"))
      throw bad(field, "no query or fragment allowed in the URI.");
    let bytes: Buffer;
    try {
      // A signing key file is as secret as a private key; trusted-signer files are public.
      if (kind === "signing") {
        checkKeyFileMode(path, statSync(path).mode, {
          provider: "signing",
          what: "private key file",
          strict: strictKeyFiles(undefined, env),
        });
      }
      bytes = secretFromFile(path);
    } catch (cause) {
      if (ConfigError.isInstance(cause)) throw cause;
      throw bad(field, `cannot read the key file ${shown(path)}.`, errorName(cause));
    }
    try {
      const pem = bytes.toString("utf8").trim();
      if (!pem.startsWith(PEM)) throw bad(field, `the key file ${shown(path)} is not PEM.`);
      return pem;
    } finally {
      bytes.fill(0);
    }
  }
  if (text.startsWith("ed25519://env/")) {
    const name = text.slice("ed25519://env/".length);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw bad(
        field,
        "after ed25519://env/ comes an environment variable name (letters, digits, _).",
      );
    const value = env[name]?.trim();
    if (!value) throw bad(field, `environment variable ${name} is not set.`);
    if (!value.startsWith(PEM))
      throw bad(field, `environment variable ${name} does not hold a PEM key.`);
    return value;
  }
  // Anything else may be a key pasted in the wrong shape: never echo it.
  throw bad(
    field,
    kind === "signing"
      ? "the value (not shown) is not a PEM key or an ed25519:/// URI."
      : "the value (not shown) is not ed25519:<64 hex>, a PEM public key, or an ed25519:/// URI.",
  );
}

function shown(path: string): string {
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}

/** Keeps only the error's name/code as a cause: OpenSSL messages may quote input. */
function errorName(cause: unknown): { cause: Error } {
  const code = (cause as { code?: unknown })?.code;
  return { cause: new Error(typeof code === "string" ? code : "invalid key") };
}

function bad(field: string, problem: string, options: { cause?: Error } = {}): ConfigError {
  return new ConfigError("ENVELOPE_BAD_CONFIG", `${field}: ${problem} ${SHAPES}`, {
    ...options,
    details: { field },
  });
}
