import type { Pool } from "pg";
import { checkTableName } from "./settings.js";

/** The columns `rotate` rewraps: every encrypted field of a user. */
export const ENCRYPTED_COLUMNS = ["email", "phone", "ssn"] as const;

/**
 * Each value's encryption context as an `envelope rewrap --context` template. It must be
 * exactly what the app seals with: @envelope/records binds every field to
 * `{ table, column, id }` (the table name, the field's column, the row's id). The CLI's
 * preflight decrypts a sample with it and refuses to start if it does not match.
 */
export const CONTEXT_TEMPLATE = "table={table},column={column},id={pk}";

/**
 * Creates the users table if it is missing. Encrypted fields are `text` columns holding
 * `ev1:…` envelopes (one per field, each bound to { table, column, id }); `email_idx`
 * holds the email's blind index (a truncated HMAC), the only thing lookups can use.
 *
 * @example
 * await ensureSchema(pool, "example_users");
 */
export async function ensureSchema(pool: Pool, table: string): Promise<void> {
  checkTableName(table);
  await pool.query(`
    CREATE TABLE IF NOT EXISTS "${table}" (
      id uuid PRIMARY KEY,
      email text NOT NULL,
      email_idx text NOT NULL,
      phone text,
      ssn text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
  // Not UNIQUE: a 32-bit blind index collides by design (see README, "What the blind index leaks").
  await pool.query(`CREATE INDEX IF NOT EXISTS "${table}_email_idx" ON "${table}" (email_idx)`);
}
