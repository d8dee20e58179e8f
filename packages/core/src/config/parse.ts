import type { KeyObject } from "node:crypto";
import { Envelope } from "../client.js";
import { loadSigningKey } from "../crypto/signing-keys.js";
import { ConfigError, EnvelopeError } from "../errors.js";
import { loadFactory } from "../providers/registry.js";
import type { KeyProvider } from "../providers/types.js";
import { padRule } from "./padding.js";
import { CONFIG_FIELDS, type EnvelopeConfig, type KeySpec } from "./schema.js";
import { writerSuite } from "./suite.js";
import { redactUri, uriScheme } from "./uri.js";

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Builds an Envelope client from configuration, loading only the provider packages it
 * names. Everything is validated up front; errors name the bad field and the fix.
 *
 * @example
 * const envelope = await createEnvelope({ encrypt: "local-rsa:///run/secrets/enc_key.pem" });
 */
export async function createEnvelope(
  config: EnvelopeConfig,
  env: Env = process.env,
): Promise<Envelope> {
  if (typeof config !== "object" || config === null) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      'createEnvelope needs a config object, e.g. { encrypt: "local-rsa:///path/key.pem" }.',
    );
  }
  for (const field of Object.keys(config)) {
    if (!(CONFIG_FIELDS as readonly string[]).includes(field)) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `Unknown config field "${field}". Known fields: ${CONFIG_FIELDS.join(", ")}.`,
        { details: { field } },
      );
    }
  }
  if (config.encrypt === undefined) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      'encrypt is required: name the key that seals new values, e.g. encrypt: "local-rsa:///run/secrets/enc_key.pem" or ENVELOPE_ENCRYPT_KEYS.',
      { details: { field: "encrypt" } },
    );
  }
  const encryptSpecs = Array.isArray(config.encrypt) ? config.encrypt : [config.encrypt as KeySpec];
  if (config.decrypt !== undefined && !Array.isArray(config.decrypt)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "decrypt must be an array of key URIs or provider configs.",
      {
        details: { field: "decrypt" },
      },
    );
  }
  // Resolved here so that ed25519://env/VAR reads the env given to createEnvelope; the
  // client gets a KeyObject-backed key (it redacts itself when printed).
  if (
    config.signing !== undefined &&
    (typeof config.signing !== "object" || config.signing === null)
  ) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "signing must be { key: <Ed25519 private key> }.",
      {
        details: { field: "signing" },
      },
    );
  }
  const signing =
    config.signing === undefined
      ? undefined
      : // A loaded SigningKey is accepted where a key input is (see loadSigningKey).
        { key: loadSigningKey(config.signing.key, "signing.key", env) as unknown as KeyObject };
  padRule(config.pad); // a bad padding or suite option fails before any provider is loaded
  writerSuite(config.suite);
  // One provider per key URI: the encrypt key's URI listed under decrypt too (a common
  // ENVELOPE_DECRYPT_KEYS) is the same provider, tried once per entry, not twice.
  const byUri = new Map<string, Promise<KeyProvider>>();
  const resolve = (spec: KeySpec, field: string) => {
    if (typeof spec !== "string") return resolveKey(spec, field, env);
    let provider = byUri.get(spec);
    if (!provider) {
      provider = resolveKey(spec, field, env);
      byUri.set(spec, provider);
    }
    return provider;
  };
  const [encrypt, decrypt] = await Promise.all([
    Promise.all(encryptSpecs.map((spec, i) => resolve(spec, `encrypt[${i}]`))),
    Promise.all((config.decrypt ?? []).map((spec, i) => resolve(spec, `decrypt[${i}]`))),
  ]);
  return new Envelope({
    encrypt,
    decrypt,
    ...(config.cache !== undefined ? { cache: config.cache } : {}),
    ...(config.dataKeyReuse !== undefined ? { dataKeyReuse: config.dataKeyReuse } : {}),
    ...(config.storeContext !== undefined ? { storeContext: config.storeContext } : {}),
    ...(config.onAudit !== undefined ? { onAudit: config.onAudit } : {}),
    ...(signing !== undefined ? { signing } : {}),
    ...(config.trustedSigners !== undefined ? { trustedSigners: config.trustedSigners } : {}),
    ...(config.maxEntriesTried !== undefined ? { maxEntriesTried: config.maxEntriesTried } : {}),
    ...(config.pad !== undefined ? { pad: config.pad } : {}),
    ...(config.suite !== undefined ? { suite: config.suite } : {}),
  });
}

/**
 * Turns one key spec (URI, provider config, or provider) into a provider, loading its
 * package lazily.
 *
 * @example
 * const next = await resolveKey("local-rsa:///run/secrets/new_key.pem");
 * await envelope.rewrap(sealed, { to: next });
 */
export async function resolveKey(
  spec: KeySpec,
  field = "key",
  env: Env = process.env,
): Promise<KeyProvider> {
  if (typeof spec === "string") {
    const scheme = uriScheme(spec, field);
    const factory = await loadFactory(scheme, field);
    return wrapErrors(() => factory.fromUri(spec, env), field, redactUri(spec));
  }
  if (typeof spec === "object" && spec !== null) {
    if (typeof (spec as KeyProvider).wrap === "function") return spec as KeyProvider;
    const provider = (spec as { provider?: unknown }).provider;
    if (typeof provider === "string") {
      const factory = await loadFactory(provider, `${field}.provider`);
      return wrapErrors(
        () => factory.fromConfig(spec as Record<string, unknown>, env),
        field,
        provider,
      );
    }
  }
  throw new ConfigError(
    "ENVELOPE_BAD_CONFIG",
    `${field} must be a key URI, { provider: "<scheme>", … }, or a KeyProvider.`,
    { details: { field } },
  );
}

// Provider factories throw ConfigErrors of their own; prefix them with the field so the
// operator knows which of several keys is wrong.
async function wrapErrors(
  build: () => Promise<KeyProvider>,
  field: string,
  label: string,
): Promise<KeyProvider> {
  try {
    return await build();
  } catch (error) {
    if (EnvelopeError.isInstance(error)) {
      const Same = error.constructor as typeof EnvelopeError;
      throw new Same(error.code, `${field} (${label}): ${error.message}`, {
        cause: error.cause,
        details: { ...error.details, field },
      });
    }
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `${field} (${label}): the provider could not be created. See \`cause\`.`,
      {
        cause: error,
        details: { field },
      },
    );
  }
}
