import { connect, type SqlAdapter } from "@envelope/batch-rewrap";
import { ConfigError, EnvelopeError } from "@envelope/core";
import type { CliContext } from "../command-context.js";

/** Opens `--db` / `ENVELOPE_DB_URL` and checks the connection, so a bad URL fails before any work. */
export async function openDb(ctx: CliContext, flags: { db?: string }): Promise<SqlAdapter> {
  const url = flags.db ?? ctx.io.env.ENVELOPE_DB_URL;
  if (!url) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "Give the database with --db <url> or ENVELOPE_DB_URL (postgres://…, mysql://…, pglite://./dir).",
      {
        details: { field: "db" },
      },
    );
  }
  let db: SqlAdapter | undefined;
  try {
    db = await connect(url);
    // Drivers connect lazily: check now, so a wrong URL, a server that is down or a refused
    // login is a clear configuration error (exit 2), not an unexpected error mid-job.
    await db.query("SELECT 1");
    return db;
  } catch (cause) {
    await db?.close().catch(() => {});
    if (EnvelopeError.isInstance(cause)) throw cause;
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Cannot connect to the database ${redactedUrl(url)}: ${driverReason(cause)}. Check --db / ENVELOPE_DB_URL (host, port, user, password, database name) and that the server is running.`,
      { cause, details: { field: "db" } },
    );
  }
}

/** The URL without its password (and without query parameters, which may hold one). */
function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    u.search = "";
    return u.toString();
  } catch {
    return `(${url.split(":")[0]} URL)`;
  }
}

/** The driver's own words (host, port, user, database — never a password) and its code. */
function driverReason(error: unknown): string {
  const e = error as { message?: string; code?: string; errors?: { message?: string }[] };
  const message = e?.message || e?.errors?.[0]?.message || String(error);
  return e?.code && !message.includes(e.code) ? `${message} (${e.code})` : message;
}
