import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "@envelope/core";

type Env = Readonly<Record<string, string | undefined>>;

/** Everything the example reads from the environment, apart from core's ENVELOPE_* keys. */
export interface Settings {
  /** HTTP port. `PORT`, default 3000 (0 = any free port). */
  port: number;
  /** `HOST` to listen on, default 127.0.0.1 (use 0.0.0.0 in a container). */
  host: string;
  /** `DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/test. */
  databaseUrl: string;
  /** `USERS_TABLE`, default `example_users`. Also part of every value's encryption context. */
  table: string;
  /**
   * `KEYS_DIR`: where the generated local RSA keys, the key ring file and the generated
   * blind-index key live. Default `examples/express-pg/.keys` (git-ignored).
   */
  keysDir: string;
}

/** The package folder's `.keys/`, wherever the process was started from. */
export const DEFAULT_KEYS_DIR = fileURLToPath(new URL("../.keys/", import.meta.url));

/**
 * Reads the example's settings from the environment.
 *
 * @example
 * const settings = loadSettings(process.env);
 */
export function loadSettings(env: Env = process.env): Settings {
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", "PORT must be a port number (0-65535).", {
      details: { field: "PORT" },
    });
  }
  const table = env.USERS_TABLE?.trim() || "example_users";
  checkTableName(table);
  return {
    port,
    host: env.HOST?.trim() || "127.0.0.1",
    databaseUrl: env.DATABASE_URL?.trim() || "postgres://postgres@127.0.0.1:5432/test",
    table,
    // Absolute: key URIs (local-rsa:///…) and the CLI (run in another folder) need it.
    keysDir: resolve(env.KEYS_DIR?.trim() || DEFAULT_KEYS_DIR),
  };
}

/** Table names are interpolated into SQL, so only plain identifiers are accepted. */
export function checkTableName(table: string): void {
  if (!/^[a-z_][a-z0-9_]{0,49}$/.test(table)) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "USERS_TABLE must be a plain lower-case SQL name (a-z, 0-9, _; at most 50 characters).",
      { details: { field: "USERS_TABLE" } },
    );
  }
}
