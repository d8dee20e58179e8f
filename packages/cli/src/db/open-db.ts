import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { connect, type SqlAdapter } from "@envelope/batch-rewrap";
import { ConfigError, EnvelopeError } from "@envelope/core";
import type { CliContext } from "../command-context.js";
import { shown } from "../io.js";

/**
 * The database flag of a printed next step: `--db <url>`, or nothing when the URL comes
 * from ENVELOPE_DB_URL (the step then works as printed). The URL itself is never
 * repeated: it may hold a password.
 */
export function dbFlagHint(ctx: CliContext, flags: { db?: string | undefined }): string {
  return flags.db || !ctx.io.env.ENVELOPE_DB_URL ? "--db <url>" : "";
}

/** Seconds the connection check may take: mysql2's own connect timeout; `pg` has none. */
export const DEFAULT_DB_CONNECT_TIMEOUT_SECONDS = 10;

/**
 * Opens `--db` / `ENVELOPE_DB_URL` and checks the connection, so a bad URL, a server that is
 * down, refuses or does not answer fails before any work (ConfigError ENVELOPE_BAD_CONFIG,
 * field `db`: exit 2), with nothing written. The pool has room for `--workers` (each keeps
 * a connection for its range claim): 2 × workers + 1 connections, at least 8.
 *
 * A `pglite://` folder is relative to the CLI's working directory, and must exist unless
 * `createPglite` (seed-demo): PGlite would otherwise create an empty database at a
 * mistyped path, and a rotate, rewrap or status would run on it.
 */
export async function openDb(
  ctx: CliContext,
  flags: { db?: string; workers?: string },
  options: { createPglite?: boolean } = {},
): Promise<SqlAdapter> {
  const given = flags.db ?? ctx.io.env.ENVELOPE_DB_URL;
  if (!given) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "Give the database with --db <url> or ENVELOPE_DB_URL (postgres://…, mysql://…, pglite://./dir).",
      {
        details: { field: "db" },
      },
    );
  }
  const url = pgliteFolder(ctx, given, Boolean(options.createPglite));
  const seconds = connectTimeout(ctx.io.env.ENVELOPE_DB_CONNECT_TIMEOUT);
  let db: SqlAdapter | undefined;
  try {
    db = await connect(url, { maxConnections: poolSizeFor(flags.workers) });
    // Drivers connect lazily: check now, so a wrong URL, a server that is down or a refused
    // login is a clear configuration error (exit 2), not an unexpected error mid-job. Bounded:
    // `pg` waits forever on a host that takes the connection and never answers.
    await withinSeconds(db.query("SELECT 1"), seconds);
    return db;
  } catch (cause) {
    // A connection still being attempted may not end on close(): do not wait for it.
    if (db) await withinSeconds(db.close(), 1).catch(() => {});
    if (EnvelopeError.isInstance(cause)) throw cause;
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Cannot connect to the database ${redactedUrl(url)}: ${driverReason(cause)}. Check --db / ENVELOPE_DB_URL (host, port, user, password, database name) and that the server is running and reachable from here, then retry. Nothing was changed.`,
      { cause, details: { field: "db" } },
    );
  }
}

/**
 * A `pglite://<dir>` URL with its folder resolved against the CLI's working directory (as
 * every other path it takes); refused when the folder does not exist or holds no PGlite
 * database (PGlite would make one in an empty folder), unless `create`.
 * Other URLs, and `pglite://memory`, are returned as they are.
 */
function pgliteFolder(ctx: CliContext, url: string, create: boolean): string {
  if (!url.startsWith("pglite://")) return url;
  const path = url.slice("pglite://".length);
  if (path === "memory" || path === "") return url;
  const dir = resolve(ctx.io.cwd, path);
  if (create) return `pglite://${dir}`;
  // PGlite keeps PostgreSQL's data directory there: PG_VERSION is its first file.
  const missing = !existsSync(dir)
    ? "the folder does not exist"
    : !existsSync(join(dir, "PG_VERSION"))
      ? "the folder holds no PGlite database (no PG_VERSION file)"
      : undefined;
  if (missing)
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `No PGlite database at ${shown(dir)} (--db / ENVELOPE_DB_URL ${shown(url)}): ${missing}. Check the path (a relative one is from the current directory), or create a demo database there with envelope seed-demo --db ${shown(url)}. Nothing was created.`,
      { details: { field: "db", path: dir } },
    );
  return `pglite://${dir}`;
}

/** Connections for `--workers n` (an invalid n is refused later, with the other flags). */
export function poolSizeFor(workers: string | undefined): number {
  const n = Number(workers ?? 1);
  return Number.isInteger(n) && n > 0 ? Math.max(8, 2 * n + 1) : 8;
}

function connectTimeout(value: string | undefined): number {
  if (value === undefined || value === "") return DEFAULT_DB_CONNECT_TIMEOUT_SECONDS;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `ENVELOPE_DB_CONNECT_TIMEOUT is a number of seconds (> 0), not ${JSON.stringify(value.slice(0, 20))}.`,
      { details: { field: "ENVELOPE_DB_CONNECT_TIMEOUT" } },
    );
  return seconds;
}

/** `work`, or a rejection after `seconds` (the work's own later failure is then ignored). */
function withinSeconds<T>(work: Promise<T>, seconds: number): Promise<T> {
  work.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(Object.assign(new Error(`no answer within ${seconds} s`), { code: "ETIMEDOUT" })),
      seconds * 1000,
    );
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
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
