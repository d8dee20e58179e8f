import {
  deriveFernetKey,
  type Pbkdf2FernetOptions,
  parseFernetKey,
} from "../formats/fernet-key.js";
import {
  describeSecretSource,
  loadSecret,
  loadSecretText,
  type SecretSource,
} from "./secret-source.js";
import { type Env, parseAesKey } from "./static-key.js";

/**
 * A 32-byte AES key (gcm-json, cbc) from any source: 64 hex characters or base64 (or 32
 * raw bytes from a file or a binary secret).
 *
 * @example
 * const key = await loadAesKey({ aws: { secretId: "app/enc-key" } });
 */
export async function loadAesKey(source: SecretSource, env: Env = process.env): Promise<Buffer> {
  return parseAesKey(
    await loadSecret(source, env),
    describeSecretSource(source),
    !("env" in source),
  );
}

/** A Fernet key (url-safe base64 of 32 bytes) from any source. */
export async function loadFernetKey(source: SecretSource, env: Env = process.env): Promise<Buffer> {
  return parseFernetKey(await loadSecretText(source, env), describeSecretSource(source));
}

/** A Fernet key derived with PBKDF2 from a secret and a salt, each from any source. */
export async function deriveFernetKeyFrom(
  options: Omit<Pbkdf2FernetOptions, "secret" | "salt"> & {
    secret: SecretSource;
    salt: SecretSource;
  },
  env: Env = process.env,
): Promise<Buffer> {
  return deriveFernetKey({
    ...options,
    secret: await loadSecretText(options.secret, env),
    salt: await loadSecretText(options.salt, env),
  });
}
