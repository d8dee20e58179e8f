import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError, configFromEnv, type EnvelopeConfig, type KeySpec } from "@envelope/core";
import { importTs, loadTsx } from "./typescript-config.js";

/** CLI-only settings kept under `rotation` in the config file (stripped before the library sees it). */
export interface RotationSettings {
  /** Warn when a key is this many days old. Default 80. */
  warnDays: number;
  /** A key is due for rotation at this age. Default 90. */
  dueDays: number;
  /** Where `rotate` writes new local keys. Default `./keys` beside the config file. */
  keyDir?: string;
  /** Key URI → ISO creation time, recorded by `keygen --init` and `rotate`. */
  keyCreated: Record<string, string>;
}

export interface LoadedConfig {
  /** The file read, if any. */
  path: string | undefined;
  /** The library config (same schema as `createEnvelope`). */
  library: EnvelopeConfig;
  rotation: RotationSettings;
  /** Where each setting came from, for `status`. */
  sources: string[];
}

export const CONFIG_FILES = [
  "envelope.config.json",
  "envelope.config.mjs",
  "envelope.config.js",
  "envelope.config.ts",
];

/** The config file commands read: `--config`, else the first of CONFIG_FILES in `cwd` (if any). */
export function configPath(flags: ConfigFlags, cwd: string): string | undefined {
  return flags.config
    ? resolve(cwd, flags.config)
    : CONFIG_FILES.map((f) => resolve(cwd, f)).find((f) => existsSync(f));
}

export interface ConfigFlags {
  config?: string;
  key?: string[];
  decryptKey?: string[];
}

/**
 * Config = file (`--config`, or the first envelope.config.{json,mjs,js,ts} in the current
 * directory), then `ENVELOPE_*` variables (core's `configFromEnv`) over it, then flags
 * (`--key`, `--decrypt-key`) over both.
 */
export async function loadConfig(
  flags: ConfigFlags,
  env: Record<string, string | undefined>,
  cwd: string,
  options: { requireKey?: boolean } = {},
): Promise<LoadedConfig> {
  const path = configPath(flags, cwd);
  if (flags.config && !existsSync(path!)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Config file ${path} does not exist. Create it with: envelope keygen --init`,
      {
        details: { field: "config" },
      },
    );
  }
  const sources: string[] = [];
  let file: Record<string, unknown> = {};
  if (path) {
    file = await readConfigFile(path);
    sources.push(path);
  }
  const { rotation: rawRotation, ...library } = file as {
    rotation?: Partial<RotationSettings>;
  } & Record<string, unknown>;
  const config = library as unknown as Partial<EnvelopeConfig> & Record<string, unknown>;

  const ours = Object.keys(env).filter(
    (k) =>
      /^ENVELOPE_(ENCRYPT|DECRYPT|CACHE|STORE|DATA_KEY|PAD|SIGNING_KEY|TRUSTED_SIGNERS|MAX_ENTRIES_TRIED)/.test(
        k,
      ) && env[k] !== undefined,
  );
  if (ours.length > 0) {
    // configFromEnv validates every ENVELOPE_* variable; take only the fields actually set.
    const fromEnv = configFromEnv({
      ...env,
      ENVELOPE_ENCRYPT_KEYS: env.ENVELOPE_ENCRYPT_KEYS || "local-aes://env/UNUSED",
    });
    if (env.ENVELOPE_ENCRYPT_KEYS) config.encrypt = fromEnv.encrypt;
    if (env.ENVELOPE_DECRYPT_KEYS) config.decrypt = fromEnv.decrypt;
    if (ours.some((k) => k.startsWith("ENVELOPE_CACHE"))) config.cache = fromEnv.cache;
    if (env.ENVELOPE_STORE_CONTEXT) config.storeContext = fromEnv.storeContext;
    if (fromEnv.dataKeyReuse) config.dataKeyReuse = fromEnv.dataKeyReuse;
    // The library reads these from the environment; the CLI must not silently ignore them
    // (a reader told to trust only some signers, a writer told to pad).
    if (fromEnv.pad !== undefined) config.pad = fromEnv.pad;
    if (fromEnv.signing) config.signing = fromEnv.signing;
    if (fromEnv.trustedSigners) config.trustedSigners = fromEnv.trustedSigners;
    if (fromEnv.maxEntriesTried) config.maxEntriesTried = fromEnv.maxEntriesTried;
    sources.push(`env (${ours.join(", ")})`);
  }
  if (flags.key?.length) {
    config.encrypt = flags.key;
    sources.push("--key");
  }
  if (flags.decryptKey?.length) {
    config.decrypt = flags.decryptKey;
    sources.push("--decrypt-key");
  }
  if (
    options.requireKey !== false &&
    (config.encrypt === undefined || (Array.isArray(config.encrypt) && config.encrypt.length === 0))
  ) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "No encrypting key configured. Create one with `envelope keygen --init` (writes envelope.config.json), set ENVELOPE_ENCRYPT_KEYS, or pass --key <uri>.",
      { details: { field: "encrypt" } },
    );
  }
  const rotation: RotationSettings = {
    warnDays: positive(rawRotation?.warnDays, 80, "rotation.warnDays"),
    dueDays: positive(rawRotation?.dueDays, 90, "rotation.dueDays"),
    keyCreated: { ...(rawRotation?.keyCreated ?? {}) },
    ...(rawRotation?.keyDir ? { keyDir: rawRotation.keyDir } : {}),
  };
  return { path, library: config as EnvelopeConfig, rotation, sources };
}

/** The key specs of a config as a list. */
export function specList(spec: KeySpec | readonly KeySpec[] | undefined): KeySpec[] {
  if (spec === undefined) return [];
  return Array.isArray(spec) ? [...spec] : [spec as KeySpec];
}

async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let value: unknown;
  if (path.endsWith(".json")) {
    try {
      value = JSON.parse(readFileSync(path, "utf8"));
    } catch (cause) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `Config file ${path} is not valid JSON: ${(cause as Error).message}`,
        { cause },
      );
    }
  } else {
    const ts = /\.[cm]?ts$/.test(path);
    // Outside the try: a missing tsx is its own error (what to install), not a broken config.
    const tsImport = ts ? await loadTsx(path) : undefined;
    try {
      value = exported(
        tsImport ? await importTs(path, tsImport) : await import(pathToFileURL(path).href),
      );
    } catch (cause) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `Cannot load config ${ts ? "file" : "module"} ${path}: ${(cause as Error)?.message ?? String(cause)}`,
        { cause },
      );
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Config file ${path} must hold an object ({ "encrypt": "…" }).`,
    );
  }
  return value as Record<string, unknown>;
}

type ConfigModule = { default?: unknown; config?: unknown; __esModule?: boolean };

/**
 * The config a module exports (`export default` or `export const config`). A file Node treats
 * as CommonJS (a .ts or .js config without `"type": "module"` nearby) arrives as
 * `{ default: module.exports }`; its compiled ES exports are one level down.
 */
function exported(mod: unknown): unknown {
  const ns = mod as ConfigModule;
  const inner = ns.default as ConfigModule | undefined;
  if (typeof inner === "object" && inner !== null && inner.__esModule)
    return inner.default ?? inner.config;
  return ns.default ?? ns.config;
}

function positive(value: unknown, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value > 0)) {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", `${field} must be a positive number of days.`, {
      details: { field },
    });
  }
  return value;
}
