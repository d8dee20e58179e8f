import { ConfigError } from "@envelope/core";
import type { AnyLegacyDecoder, Env, SecretSource } from "@envelope/legacy";
import {
  cbcDecoder,
  DEFAULT_VERSION_PREFIX,
  deriveFernetKeyFrom,
  fernetDecoder,
  gcmJsonDecoder,
  loadAesKey,
  loadFernetKey,
  loadSecretText,
  mixedDecoder,
  type PgQueryable,
  parseSecretSpec,
  pgcryptoDecoder,
  plaintextDecoder,
  recordValueDecoder,
  versionedDecoder,
} from "@envelope/legacy";

/** The migrate flags that choose and key the legacy decoder. */
export interface LegacyFlags {
  from: string;
  legacyKeyEnv?: string;
  legacyKeyFile?: string;
  legacyKey?: string[];
  allowPlaintext?: boolean;
  fernetSecret?: string;
  fernetSalt?: string;
  fernetSaltEncoding?: string;
  fernetIterations?: string;
  fernetOutput?: string;
  pgpPassphrase?: string;
  keyVersion?: string[];
  versionPrefix?: string;
  versionColumn?: string;
  /** `--records [string|bytes]`: seal the @envelope/records field layout (type tag + value). */
  records?: boolean | string;
}

const CIPHERS = ["aes-256-gcm-json", "aes-256-cbc", "fernet", "pgcrypto"] as const;
type Cipher = (typeof CIPHERS)[number];
const FORMATS = new Set<string>(["plaintext", ...CIPHERS, "versioned"]);

const bad = (message: string, field: string) =>
  new ConfigError("ENVELOPE_BAD_CONFIG", message, { details: { field } });

/**
 * Builds the decoder `envelope migrate` runs with. One format → that decoder; several
 * (`--from fernet,aes-256-gcm-json`) → a mixed-column decoder; `plaintext` in the list or
 * `--allow-plaintext` accepts unencrypted values too. Keys are read here, once, and never
 * printed. `pgcrypto` needs a PostgreSQL pool (the --db one, or --pgcrypto-db). With
 * `--records`, each plaintext is laid out as an `@envelope/records` field (type tag first),
 * so a RecordCipher opens the migrated values.
 */
export async function buildLegacyDecoder(
  flags: LegacyFlags,
  env: Env,
  pgPool: () => Promise<PgQueryable>,
): Promise<AnyLegacyDecoder> {
  const records = flags.records;
  if (records === undefined || records === false) return columnDecoder(flags, env, pgPool);
  if (records !== true && records !== "string" && records !== "bytes")
    throw bad(
      `--records takes string (the default) or bytes, not "${String(records).slice(0, 20)}".`,
      "records",
    );
  return recordValueDecoder(
    await columnDecoder(flags, env, pgPool),
    records === true ? "string" : records,
  );
}

/** The decoder for the legacy values as stored (the plaintext bytes, untagged). */
async function columnDecoder(
  flags: LegacyFlags,
  env: Env,
  pgPool: () => Promise<PgQueryable>,
): Promise<AnyLegacyDecoder> {
  const formats = flags.from
    .split(",")
    .map((f) => f.trim())
    .filter(Boolean);
  for (const f of formats)
    if (!FORMATS.has(f))
      throw bad(
        `--from: unknown legacy format "${f.slice(0, 40)}". Use plaintext, aes-256-gcm-json, aes-256-cbc, fernet, pgcrypto or versioned (comma-separated for a mixed column).`,
        "from",
      );
  const plaintext = formats.includes("plaintext") || Boolean(flags.allowPlaintext);
  const ciphers = formats.filter((f) => f !== "plaintext");
  if (ciphers.length === 0) return plaintextDecoder();
  const decoders: AnyLegacyDecoder[] = [];
  for (const format of ciphers) {
    if (format === "versioned") decoders.push(await versioned(flags, env, pgPool));
    else
      decoders.push(
        await cipherDecoder(
          format as Cipher,
          keySpecs(flags, format as Cipher),
          flags,
          env,
          pgPool,
        ),
      );
  }
  if (decoders.length === 1 && !plaintext) return decoders[0]!;
  return mixedDecoder({ decoders, plaintext });
}

/**
 * The legacy keys for one format: `--legacy-key <source>` goes to every format that takes
 * a key, `--legacy-key <format>=<source>` only to that format (a mixed column whose
 * formats have different keys).
 */
function keySpecs(flags: LegacyFlags, format: Cipher): SecretSource[] {
  const out: SecretSource[] = [];
  if (flags.legacyKeyEnv) out.push({ env: flags.legacyKeyEnv });
  if (flags.legacyKeyFile) out.push({ file: flags.legacyKeyFile });
  for (const spec of flags.legacyKey ?? []) {
    const m = /^([a-z0-9-]+)=(.+)$/.exec(spec);
    if (m && (CIPHERS as readonly string[]).includes(m[1]!)) {
      if (m[1] === format) out.push(parseSecretSpec(m[2]!));
    } else out.push(parseSecretSpec(spec));
  }
  return out;
}

async function cipherDecoder(
  format: Cipher,
  keys: SecretSource[],
  flags: LegacyFlags,
  env: Env,
  pgPool: () => Promise<PgQueryable>,
): Promise<AnyLegacyDecoder> {
  if (format === "pgcrypto") {
    if (!flags.pgpPassphrase)
      throw bad(
        "--from pgcrypto needs --pgp-passphrase <source> (e.g. env:PGP_PASSPHRASE).",
        "pgpPassphrase",
      );
    const passphrase = await loadSecretText(parseSecretSpec(flags.pgpPassphrase), env);
    return pgcryptoDecoder({ pool: await pgPool(), passphrase });
  }
  if (format === "fernet") {
    const fernetKeys = await Promise.all(keys.map((k) => loadFernetKey(k, env)));
    if (flags.fernetSecret || flags.fernetSalt) fernetKeys.push(await pbkdf2Key(flags, env));
    if (fernetKeys.length === 0)
      throw bad(
        "--from fernet needs --legacy-key <source> (repeat it for MultiFernet, newest first) or --fernet-secret/--fernet-salt/--fernet-iterations.",
        "legacyKey",
      );
    return fernetDecoder(fernetKeys);
  }
  if (keys.length !== 1)
    throw bad(
      `--from ${format} needs exactly one legacy key: --legacy-key <source> (env:NAME, file:/path, aws-sm:…, vault-kv:…), --legacy-key-env or --legacy-key-file.`,
      "legacyKey",
    );
  const key = await loadAesKey(keys[0]!, env);
  try {
    if (format === "aes-256-gcm-json") return gcmJsonDecoder(key);
    // CBC's UTF-8 check (a wrong key's garbage rarely decodes) would refuse every binary
    // plaintext, and --records bytes says the plaintexts are bytes.
    return cbcDecoder(key, { requireUtf8: flags.records !== "bytes" });
  } finally {
    key.fill(0);
  }
}

async function pbkdf2Key(flags: LegacyFlags, env: Env): Promise<Buffer> {
  if (!flags.fernetSecret || !flags.fernetSalt || !flags.fernetIterations)
    throw bad(
      "A PBKDF2 Fernet key needs --fernet-secret, --fernet-salt and --fernet-iterations (the exact count the app used).",
      "fernetSecret",
    );
  const output = flags.fernetOutput ?? "raw";
  const saltEncoding = flags.fernetSaltEncoding ?? "utf8";
  if (output !== "raw" && output !== "hex")
    throw bad("--fernet-output must be raw or hex.", "fernetOutput");
  if (!["utf8", "hex", "base64"].includes(saltEncoding))
    throw bad("--fernet-salt-encoding must be utf8, hex or base64.", "fernetSaltEncoding");
  return deriveFernetKeyFrom(
    {
      secret: parseSecretSpec(flags.fernetSecret),
      salt: parseSecretSpec(flags.fernetSalt),
      iterations: Number(flags.fernetIterations),
      output,
      saltEncoding: saltEncoding as "utf8" | "hex" | "base64",
    },
    env,
  );
}

/** `--key-version <v>=<cipher>:<source>`: one legacy key (and cipher) per version. */
async function versioned(
  flags: LegacyFlags,
  env: Env,
  pgPool: () => Promise<PgQueryable>,
): Promise<AnyLegacyDecoder> {
  const specs = flags.keyVersion ?? [];
  if (specs.length === 0)
    throw bad(
      "--from versioned needs --key-version <v>=<cipher>:<source> for each version (e.g. 2=aes-256-gcm-json:env:KEY_V2).",
      "keyVersion",
    );
  const versions: Record<string, AnyLegacyDecoder> = {};
  for (const spec of specs) {
    const m = /^([^=]{1,64})=([a-z0-9-]+):(.+)$/.exec(spec);
    if (!m || !(CIPHERS as readonly string[]).includes(m[2]!))
      throw bad(
        `--key-version "${spec.slice(0, 20)}…": use <version>=<cipher>:<source> with cipher ${CIPHERS.join(", ")}.`,
        "keyVersion",
      );
    const [, version, cipher, source] = m as unknown as [string, string, Cipher, string];
    versions[version] =
      cipher === "pgcrypto"
        ? await cipherDecoder(cipher, [], { ...flags, pgpPassphrase: source }, env, pgPool)
        : await cipherDecoder(
            cipher,
            [parseSecretSpec(source)],
            { ...flags, fernetSecret: undefined, fernetSalt: undefined },
            env,
            pgPool,
          );
  }
  if (flags.versionPrefix && flags.versionColumn)
    throw bad("Give --version-prefix or --version-column, not both.", "versionPrefix");
  return versionedDecoder({
    versions,
    tag: flags.versionColumn
      ? { column: flags.versionColumn }
      : { prefix: flags.versionPrefix ?? DEFAULT_VERSION_PREFIX },
  });
}
