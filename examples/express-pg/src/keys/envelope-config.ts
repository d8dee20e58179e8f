import { type Envelope, envelopeFromEnv } from "@envelope/core";
import { ensureKeyRing, type KeyRing, keyRingEnv, readKeyRing } from "./key-ring.js";

type Env = Readonly<Record<string, string | undefined>>;

export interface ExampleEnvelope {
  envelope: Envelope;
  /** `env`: ENVELOPE_ENCRYPT_KEYS chose the keys. `key-ring`: the generated local keys. */
  source: "env" | "key-ring";
  /** True when this call generated the first local key. */
  created: boolean;
}

/**
 * The envelope the app runs with. Provider selection is core's `envelopeFromEnv`: set
 * ENVELOPE_ENCRYPT_KEYS (and ENVELOPE_DECRYPT_KEYS) to any key URI — `aws-kms://…`,
 * `azure-kv://…`, `vault-transit://…`, `local-rsa://…`. When it is not set, the example
 * falls back to a local RSA key generated on first start into the keys folder, and feeds
 * its key ring to the same `envelopeFromEnv`.
 *
 * @example
 * const { envelope, source } = await exampleEnvelope(process.env, settings.keysDir);
 */
export async function exampleEnvelope(env: Env, keysDir: string): Promise<ExampleEnvelope> {
  if (env.ENVELOPE_ENCRYPT_KEYS?.trim()) {
    return { envelope: await envelopeFromEnv(env), source: "env", created: false };
  }
  const { ring, created } = await ensureKeyRing(keysDir);
  return { envelope: await envelopeFromRing(env, keysDir, ring), source: "key-ring", created };
}

/** An envelope for the key ring as it is on disk now (used when the ring file changes). */
export async function envelopeFromCurrentRing(env: Env, keysDir: string): Promise<Envelope> {
  const ring = await readKeyRing(keysDir);
  if (!ring) return (await exampleEnvelope(env, keysDir)).envelope;
  return envelopeFromRing(env, keysDir, ring);
}

function envelopeFromRing(env: Env, keysDir: string, ring: KeyRing): Promise<Envelope> {
  return envelopeFromEnv({ ...env, ...keyRingEnv(keysDir, ring) });
}
