// Configuration from the environment, as the app reads it in production.
//   DATABASE_URL           postgres://… or mysql://… (MariaDB)
//   LEGACY_ENC_KEY         the old static AES-256 key (64 hex): the app before Envelope, and
//                          the transitional read while legacy values remain. Removed at the end.
//   ENVELOPE_ENCRYPT_KEYS  Envelope's master key URI(s); set = the app runs on Envelope.
//                          Here local-aes://env/APP_MASTER_KEY; in production a KMS URI.
export type Env = Readonly<Record<string, string | undefined>>;

export interface Settings {
  databaseUrl: string;
  /** Table of the User model (the example uses its own, so runs do not collide). */
  table: string;
  env: Env;
}

export function settingsFrom(
  env: Env,
  table = env.USERS_TABLE ?? "example_takeover_users",
): Settings {
  return { databaseUrl: env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test", table, env };
}

/** Which app this configuration runs: before Envelope, during the migration, or after. */
export function stageOf(env: Env): "before" | "transitional" | "after" {
  if (!env.ENVELOPE_ENCRYPT_KEYS) return "before";
  return env.LEGACY_ENC_KEY ? "transitional" : "after";
}
