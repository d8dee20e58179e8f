import type { Envelope } from "../client.js";
import { ConfigError } from "../errors.js";
import { padFromEnv } from "./padding.js";
import { createEnvelope } from "./parse.js";
import type { EnvelopeConfig } from "./schema.js";
import { suiteFromEnv } from "./suite.js";

type Env = Readonly<Record<string, string | undefined>>;

/** Every variable `envelopeFromEnv` reads. Documented in the README. */
export const ENV_VARS = {
  ENVELOPE_ENCRYPT_KEYS:
    "key URI(s) that seal new values, comma- or space-separated (several = multi-wrap)",
  ENVELOPE_DECRYPT_KEYS: "extra key URI(s) allowed to decrypt (old keys, previous provider)",
  ENVELOPE_CACHE: "`off` disables the unwrap cache",
  ENVELOPE_CACHE_MAX_ENTRIES: "unwrap cache size (default 1000)",
  ENVELOPE_CACHE_TTL_MS: "unwrap cache TTL in ms (default 300000)",
  ENVELOPE_STORE_CONTEXT: "`true` stores the context in each envelope",
  ENVELOPE_DATA_KEY_REUSE_MAX_MESSAGES: "turns on data-key reuse: messages per data key",
  ENVELOPE_DATA_KEY_REUSE_MAX_BYTES: "data-key reuse: plaintext bytes per data key",
  ENVELOPE_DATA_KEY_REUSE_MAX_AGE_MS: "data-key reuse: age limit in ms",
  ENVELOPE_SIGNING_KEY:
    "writers: Ed25519 private key that signs every value (PEM, ed25519:///path.pem or ed25519://env/VAR)",
  ENVELOPE_TRUSTED_SIGNERS:
    "readers: signed mode; trusted writer public keys (ed25519:<hex> or ed25519:///path.pub.pem), comma- or space-separated, or PEM text",
  ENVELOPE_MAX_ENTRIES_TRIED:
    "most wrapped keys one value may make a decrypt try (default 3, or the number of encrypt keys)",
  ENVELOPE_PAD:
    "length padding of every value: a bucket size in bytes (e.g. 32), `pii` (64 bytes minimum, then steps of 32) or `off` (default)",
  ENVELOPE_PAD_MIN:
    "length padding: pad every value to at least this many bytes (with ENVELOPE_PAD=<bucket>)",
  ENVELOPE_SUITE:
    "suite of new values: `1` (default, HKDF-SHA256) or `3` (one-step SHA-512, less CPU; only once every reader knows suite 0x03)",
} as const;

const OUR_PREFIXES = [
  "ENVELOPE_ENCRYPT",
  "ENVELOPE_DECRYPT",
  "ENVELOPE_CACHE",
  "ENVELOPE_STORE",
  "ENVELOPE_DATA_KEY",
  "ENVELOPE_SIGNING_KEY",
  "ENVELOPE_TRUSTED_SIGNER",
  "ENVELOPE_MAX_ENTRIES",
  "ENVELOPE_PAD",
  "ENVELOPE_SUITE",
];

/** Reads `ENVELOPE_*` variables into a config (without building providers). */
export function configFromEnv(env: Env = process.env): EnvelopeConfig {
  for (const name of Object.keys(env)) {
    // Reject near-misses of our own names (a typo must not silently fall back to a
    // default); other ENVELOPE_* names are free for users, e.g. a PEM in ENVELOPE_RSA_KEY.
    if (OUR_PREFIXES.some((p) => name.startsWith(p)) && !(name in ENV_VARS)) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `Unknown environment variable ${name}. Known: ${Object.keys(ENV_VARS).join(", ")}.`,
        { details: { field: name } },
      );
    }
  }
  const encrypt = keyList(env.ENVELOPE_ENCRYPT_KEYS, "ENVELOPE_ENCRYPT_KEYS");
  if (encrypt.length === 0) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "ENVELOPE_ENCRYPT_KEYS is not set. Set it to the key URI that seals new values, e.g. ENVELOPE_ENCRYPT_KEYS=local-rsa:///run/secrets/enc_key.pem",
      { details: { field: "ENVELOPE_ENCRYPT_KEYS" } },
    );
  }
  const config: EnvelopeConfig = {
    encrypt,
    decrypt: keyList(env.ENVELOPE_DECRYPT_KEYS, "ENVELOPE_DECRYPT_KEYS"),
  };
  const cacheSwitch = env.ENVELOPE_CACHE?.trim().toLowerCase();
  if (
    cacheSwitch !== undefined &&
    cacheSwitch !== "" &&
    cacheSwitch !== "on" &&
    cacheSwitch !== "off"
  ) {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", "ENVELOPE_CACHE must be `on` or `off`.", {
      details: { field: "ENVELOPE_CACHE" },
    });
  }
  if (cacheSwitch === "off") {
    config.cache = false;
  } else {
    const maxEntries = int(env, "ENVELOPE_CACHE_MAX_ENTRIES");
    const ttlMs = int(env, "ENVELOPE_CACHE_TTL_MS");
    config.cache = { ...(maxEntries ? { maxEntries } : {}), ...(ttlMs ? { ttlMs } : {}) };
  }
  const store = env.ENVELOPE_STORE_CONTEXT?.trim().toLowerCase();
  if (store !== undefined && store !== "") {
    if (store !== "true" && store !== "false") {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        "ENVELOPE_STORE_CONTEXT must be `true` or `false`.",
        {
          details: { field: "ENVELOPE_STORE_CONTEXT" },
        },
      );
    }
    config.storeContext = store === "true";
  }
  const maxEntriesTried = int(env, "ENVELOPE_MAX_ENTRIES_TRIED");
  if (maxEntriesTried) config.maxEntriesTried = maxEntriesTried;
  const maxMessages = int(env, "ENVELOPE_DATA_KEY_REUSE_MAX_MESSAGES");
  const maxBytes = int(env, "ENVELOPE_DATA_KEY_REUSE_MAX_BYTES");
  const maxAgeMs = int(env, "ENVELOPE_DATA_KEY_REUSE_MAX_AGE_MS");
  if (maxMessages || maxBytes || maxAgeMs) {
    config.dataKeyReuse = {
      ...(maxMessages ? { maxMessages } : {}),
      ...(maxBytes ? { maxBytes } : {}),
      ...(maxAgeMs ? { maxAgeMs } : {}),
    };
  }
  const pad = padFromEnv(env.ENVELOPE_PAD, env.ENVELOPE_PAD_MIN);
  if (pad !== undefined) config.pad = pad;
  const suite = suiteFromEnv(env.ENVELOPE_SUITE);
  if (suite !== undefined) config.suite = suite;
  const signingKey = env.ENVELOPE_SIGNING_KEY?.trim();
  if (signingKey) config.signing = { key: signingKey };
  const trusted = env.ENVELOPE_TRUSTED_SIGNERS?.trim();
  if (trusted) config.trustedSigners = trustedList(trusted);
  return config;
}

/** `ed25519:<hex>` / `ed25519:///path` items, or PEM text holding one or more public keys. */
function trustedList(value: string): string[] {
  if (!value.startsWith("-----BEGIN")) return list(value);
  const pems = value.match(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g) ?? [];
  // No complete block: pass the text on whole, so the loader reports it as a bad key.
  return pems.length > 0 ? pems : [value];
}

/**
 * Builds an Envelope client from `ENVELOPE_*` environment variables: the way to pick a
 * provider per deployment without touching code.
 *
 * @example
 * // ENVELOPE_ENCRYPT_KEYS=aws-kms://arn:aws:kms:eu-west-1:111122223333:alias/pii
 * const envelope = await envelopeFromEnv();
 */
export async function envelopeFromEnv(
  env: Env = process.env,
  overrides: Partial<EnvelopeConfig> = {},
): Promise<Envelope> {
  return createEnvelope({ ...configFromEnv(env), ...overrides }, env);
}

/**
 * Key URIs separated by whitespace or commas. A comma splits only where the next item
 * starts a URI (`scheme://`), so a URI option holding a comma stays whole:
 * `aws-kms://arn…?kmsContext=table,column`. An item that is not a URI is refused with a
 * hint, since it is usually the tail of such an option cut off by a space.
 */
export function keyList(value: string | undefined, variable: string): string[] {
  const items = (value ?? "").split(/\s+|,(?=\s*[a-z][a-z0-9-]*:\/\/)/).filter((s) => s.length > 0);
  for (const [i, item] of items.entries()) {
    if (/^[a-z][a-z0-9-]*:\/\//.test(item)) continue;
    // Items cut from a URI option (a space after a comma): name the position, not the value.
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `${variable}: item ${i + 1} is not a key URI (it does not start with <scheme>://). Separate key URIs with spaces or commas; inside one URI's options write lists without spaces (kmsContext=table,column).`,
      { details: { field: variable } },
    );
  }
  return items;
}

function list(value: string | undefined): string[] {
  return (value ?? "").split(/[\s,]+/).filter((s) => s.length > 0);
}

function int(env: Env, name: string): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)) || Number(raw) < 1) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `${name} must be a positive integer; got "${raw.slice(0, 20)}".`,
      {
        details: { field: name },
      },
    );
  }
  return Number(raw);
}
