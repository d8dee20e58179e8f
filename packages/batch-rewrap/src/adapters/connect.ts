import { ConfigError } from "@envelope/core";
import { loadDriver } from "./driver.js";
import { mysqlAdapter } from "./mysql.js";
import { type PGliteLike, pgliteAdapter } from "./pglite.js";
import { postgresAdapter } from "./postgres.js";
import type { AdapterOptions, SqlAdapter } from "./types.js";

/**
 * An adapter from a URL: `postgres://…` / `postgresql://…`, `mysql://…` / `mariadb://…`,
 * `pglite://./path/to/dir` (created if missing) or `pglite://memory`. The adapter owns
 * the connection and `close()` ends it. `maxConnections` sizes a server database's pool
 * (default 8; give more than `workers`, about 2 × `workers`).
 *
 * @example
 * const db = await connect(process.env.DATABASE_URL ?? "pglite://./.envelope/db");
 */
export async function connect(url: string, options: AdapterOptions = {}): Promise<SqlAdapter> {
  const scheme = /^([a-z0-9]+):\/\//.exec(url)?.[1];
  switch (scheme) {
    case "postgres":
    case "postgresql":
      return postgresAdapter(url, options);
    case "mysql":
    case "mariadb":
      return mysqlAdapter(url.replace(/^mariadb:/, "mysql:"), options);
    case "pglite": {
      const path = url.slice("pglite://".length);
      const { PGlite } = (await loadDriver(
        "@electric-sql/pglite",
        "A pglite:// database",
        () => import("@electric-sql/pglite"),
      )) as unknown as { PGlite: new (dataDir?: string) => PGliteLike };
      const db = path === "memory" || path === "" ? new PGlite() : new PGlite(path);
      return pgliteAdapter(db, { owned: true });
    }
    default:
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        "Database URL must start with postgres://, mysql://, mariadb:// or pglite:// (e.g. pglite://./data).",
        { details: { field: "db" } },
      );
  }
}
