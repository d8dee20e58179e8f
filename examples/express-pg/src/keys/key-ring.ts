import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "@envelope/core";
import { generateKeyPair } from "@envelope/local-rsa";

/**
 * The example's local key ring: which generated RSA key files (in the keys folder) seal
 * new values and which old ones may still decrypt. It lives in `<keysDir>/keyring.json`
 * and is only used when ENVELOPE_ENCRYPT_KEYS is not set.
 */
export interface KeyRing {
  /** File name of the private key PEM that seals new values. */
  encrypt: string;
  /** File names of older private key PEMs that may still decrypt (during a rotation). */
  decrypt: string[];
  /** Set while `rotate` runs: the key files being retired (lets a crashed rotation resume). */
  rotatingFrom?: string[];
}

export const KEY_RING_FILE = "keyring.json";

/** `local-rsa:///abs/path.pem` for a key file of the folder (each path segment %-escaped). */
export function keyUri(keysDir: string, file: string): string {
  const path = join(keysDir, file);
  return `local-rsa://${path.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * The ENVELOPE_* variables that select the ring's keys, to hand to core's `envelopeFromEnv`
 * exactly as if an operator had exported them.
 *
 * @example
 * const envelope = await envelopeFromEnv({ ...process.env, ...keyRingEnv(dir, ring) });
 */
export function keyRingEnv(
  keysDir: string,
  ring: KeyRing,
): { ENVELOPE_ENCRYPT_KEYS: string; ENVELOPE_DECRYPT_KEYS: string } {
  return {
    ENVELOPE_ENCRYPT_KEYS: keyUri(keysDir, ring.encrypt),
    ENVELOPE_DECRYPT_KEYS: ring.decrypt.map((f) => keyUri(keysDir, f)).join(","),
  };
}

/** Reads `<keysDir>/keyring.json`; undefined when there is none yet. */
export async function readKeyRing(keysDir: string): Promise<KeyRing | undefined> {
  let text: string;
  try {
    text = await readFile(join(keysDir, KEY_RING_FILE), "utf8");
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return undefined;
    throw error;
  }
  let ring: KeyRing;
  try {
    ring = JSON.parse(text) as KeyRing;
  } catch (cause) {
    throw badRing(keysDir, cause);
  }
  const fileName = (f: unknown) =>
    typeof f === "string" && /^[A-Za-z0-9][A-Za-z0-9._-]*\.pem$/.test(f);
  if (
    !fileName(ring?.encrypt) ||
    !Array.isArray(ring.decrypt) ||
    !ring.decrypt.every(fileName) ||
    (ring.rotatingFrom !== undefined &&
      (!Array.isArray(ring.rotatingFrom) || !ring.rotatingFrom.every(fileName)))
  ) {
    throw badRing(keysDir);
  }
  return ring;
}

/**
 * Replaces the key ring atomically (write + rename), so a reader never sees half a file.
 * Its mirror for the `envelope` CLI, `envelope.config.json`, is written first, so the CLI
 * never sees fewer keys than the app.
 */
export async function writeKeyRing(keysDir: string, ring: KeyRing): Promise<void> {
  await writeCliConfig(keysDir, ring);
  await writeAtomic(join(keysDir, KEY_RING_FILE), `${JSON.stringify(ring, null, 2)}\n`);
}

export const CLI_CONFIG_FILE = "envelope.config.json";

/**
 * The key ring as the `envelope` CLI reads it: `<keysDir>/envelope.config.json` with the
 * same key URIs in `encrypt` / `decrypt` (so `envelope --config <it> status|rewrap|rotate`
 * sees exactly the app's keys), `rotation.keyDir: "."` (new keys go in this folder) and the
 * creation times `envelope rotate` recorded. Other settings an operator added are kept.
 *
 * @example
 * await writeCliConfig(keysDir, await readKeyRing(keysDir));
 * // envelope --config .keys/envelope.config.json status
 */
export async function writeCliConfig(keysDir: string, ring: KeyRing): Promise<string> {
  const path = join(keysDir, CLI_CONFIG_FILE);
  let previous: Record<string, unknown> = {};
  try {
    previous = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
  } catch {
    // none yet, or unreadable: it is derived from the ring, so start over
  }
  const rotation = (previous.rotation ?? {}) as { keyCreated?: Record<string, string> };
  // `envelope rotate` writes paths unescaped, keyUri %-escapes them: compare decoded.
  const created = new Map(
    Object.entries(rotation.keyCreated ?? {}).map(([uri, at]) => [decodeURIComponent(uri), at]),
  );
  const encrypt = keyUri(keysDir, ring.encrypt);
  const decrypt = ring.decrypt.map((f) => keyUri(keysDir, f));
  const keyCreated: Record<string, string> = {};
  for (const uri of [encrypt, ...decrypt]) {
    const at = created.get(decodeURIComponent(uri));
    if (at) keyCreated[uri] = at;
  }
  const config = {
    ...previous,
    encrypt,
    decrypt,
    rotation: { warnDays: 80, dueDays: 90, ...rotation, keyDir: ".", keyCreated },
  };
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  await writeAtomic(path, `${JSON.stringify(config, null, 2)}\n`);
  return path;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, path);
}

/** Generates a new RSA-3072 key pair in the folder; returns its private key file name. */
export async function newKeyFile(keysDir: string): Promise<string> {
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  const name = newKeyName();
  await generateKeyPair({ dir: keysDir, name });
  return `${name}.pem`;
}

/** `rsa-<yyyymmdd-hhmmss>-<4 random chars>`: a base name for a new key file of the folder. */
export function newKeyName(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "-");
  return `rsa-${stamp}-${Math.random().toString(36).slice(2, 6).padEnd(4, "0")}`;
}

/**
 * The key ring, created with a freshly generated key on first start. Two processes
 * starting at once on an empty folder could each generate a key; start one first.
 */
export async function ensureKeyRing(keysDir: string): Promise<{ ring: KeyRing; created: boolean }> {
  const existing = await readKeyRing(keysDir);
  if (existing) return { ring: existing, created: false };
  const ring: KeyRing = { encrypt: await newKeyFile(keysDir), decrypt: [] };
  await writeKeyRing(keysDir, ring);
  return { ring, created: true };
}

function badRing(keysDir: string, cause?: unknown): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_CONFIG",
    `${join(keysDir, KEY_RING_FILE)} is not a valid key ring ({ "encrypt": "<file>.pem", "decrypt": [] }). Fix it, or set ENVELOPE_ENCRYPT_KEYS instead.`,
    { cause, details: { field: KEY_RING_FILE } },
  );
}
