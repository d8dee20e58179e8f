import { randomBytes } from "node:crypto";
import { Envelope, type KeyProvider, localAesProvider } from "@envelope/core";
import pg from "pg";
import { afterAll, beforeAll } from "vitest";

export interface Counted extends KeyProvider {
  readonly calls: { wrap: number; unwrap: number; generateDataKey: number };
  reset(): void;
}

/** A real local-aes provider (AES-KW) that counts calls, as a KMS bill would. */
export function counted(
  inner: KeyProvider = localAesProvider({ keys: randomBytes(32) }),
  options: { generateDataKey?: boolean } = {},
): Counted {
  const calls = { wrap: 0, unwrap: 0, generateDataKey: 0 };
  const provider: Counted = {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    calls,
    reset() {
      calls.wrap = 0;
      calls.unwrap = 0;
      calls.generateDataKey = 0;
    },
    async wrap(dataKey, request) {
      calls.wrap++;
      return inner.wrap(dataKey, request);
    },
    async unwrap(entry, request) {
      calls.unwrap++;
      return inner.unwrap(entry, request);
    },
  };
  if (options.generateDataKey) {
    (provider as { generateDataKey?: KeyProvider["generateDataKey"] }).generateDataKey = async (
      request,
    ) => {
      calls.generateDataKey++;
      const dataKey = randomBytes(32);
      return { dataKey, entry: await inner.wrap(dataKey, request) };
    };
  }
  return provider;
}

export function envelopeWith(provider: KeyProvider, decrypt: KeyProvider[] = []): Envelope {
  return new Envelope({ encrypt: provider, decrypt });
}

const PG_SERVER_URL = process.env.RECORDS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** The MariaDB / MySQL server of the Sequelize, TypeORM and transitional read tests. */
export const MYSQL_URL = process.env.RECORDS_TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";

/**
 * A name no other test file or test run uses: vitest loads this module afresh for every
 * test file, and the pid and random part keep other runs' names apart. For what a run
 * creates in shared places: PG_SCHEMA below, and the Prisma client each run generates.
 */
export const RUN_ID = `${process.pid}_${randomBytes(4).toString("hex")}`;

/**
 * This test file's own PostgreSQL schema. Two test runs on one database (two clones, or
 * watch mode beside CI) used to drop and fill each other's fixed-name tables; now each file
 * creates its tables here.
 */
export const PG_SCHEMA = `records_${RUN_ID}`;

/**
 * The test database, with PG_SCHEMA first on every connection's search_path, so unqualified
 * names (raw SQL, Drizzle, Sequelize, TypeORM, batch-rewrap) create and find tables there.
 * `public` stays after it for the functions of extensions installed there: TypeORM's uuid
 * columns default to uuid-ossp's uuid_generate_v4(). Prisma qualifies its table names, so it
 * is given PG_SCHEMA itself. A file that uses this calls usePgSchema() first.
 */
export const PG_URL = withSearchPath(PG_SERVER_URL, `${PG_SCHEMA},public`);

function withSearchPath(url: string, searchPath: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set("options", `-c search_path=${searchPath}`);
  return parsed.href;
}

async function onServer(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_SERVER_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * TypeORM's uuid columns default to uuid_generate_v4(), and its synchronize runs CREATE
 * EXTENSION IF NOT EXISTS "uuid-ossp", which installs the extension (one per database) into
 * the first schema of the search path: a test file's own. Dropped with that schema, or
 * invisible from the other files' search paths, it failed their tables ("function
 * uuid_generate_v4() does not exist") on a database that did not have it yet. So it is put
 * in public, which every file's search path ends with, before any file makes its schema;
 * one in another schema (left by such a run) is moved there.
 */
async function uuidOsspInPublic(): Promise<void> {
  try {
    await onServer(`DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'uuid-ossp') THEN
        CREATE EXTENSION "uuid-ossp" WITH SCHEMA public;
      ELSIF (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
             WHERE e.extname = 'uuid-ossp') <> 'public' THEN
        ALTER EXTENSION "uuid-ossp" SET SCHEMA public;
      END IF;
    END $$`);
  } catch (error) {
    // Two files creating it at once: the other one won (unique_violation, duplicate_object).
    const code = (error as { code?: string }).code;
    if (code !== "23505" && code !== "42710") throw error;
  }
}

/**
 * Creates PG_SCHEMA before this file's tests and drops it, with every table in it, after
 * them all. Call it at the top of the file, before other hooks: vitest runs beforeAll hooks
 * in order and afterAll hooks in reverse, so the schema outlives the file's own cleanup.
 */
export function usePgSchema(): void {
  beforeAll(async () => {
    await uuidOsspInPublic();
    await onServer(`CREATE SCHEMA ${PG_SCHEMA}`);
  });
  afterAll(() => onServer(`DROP SCHEMA IF EXISTS ${PG_SCHEMA} CASCADE`));
}

export function pool(): pg.Pool {
  return new pg.Pool({ connectionString: PG_URL, max: 4 });
}

/** Every total/partial plaintext search in a table dump: true when `needle` appears in clear. */
export async function dumpContains(db: pg.Pool, table: string, needle: string): Promise<boolean> {
  const { rows } = await db.query(`SELECT t::text AS line FROM ${table} t`);
  return rows.some((r: { line: string }) => r.line.includes(needle));
}

export const INDEX_KEY_1 = randomBytes(32).toString("hex");
export const INDEX_KEY_2 = randomBytes(32).toString("hex");

/**
 * The same provider with unwraps that take `ms` (a KMS round trip) and are watched: the
 * unwraps made and the most in flight at once.
 */
export function watchedUnwraps(inner: KeyProvider, ms = 5) {
  const seen = { unwraps: 0, inFlight: 0, max: 0 };
  const provider: KeyProvider = {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    wrap: (k, r) => inner.wrap(k, r),
    async unwrap(entry, request) {
      seen.unwraps++;
      seen.inFlight++;
      seen.max = Math.max(seen.max, seen.inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, ms));
        return await inner.unwrap(entry, request);
      } finally {
        seen.inFlight--;
      }
    },
  };
  const reset = () => {
    seen.unwraps = 0;
    seen.max = 0;
  };
  return { provider, seen, reset };
}
