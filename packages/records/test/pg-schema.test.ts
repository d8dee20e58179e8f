// The test files' isolation on the shared PostgreSQL database (support.ts usePgSchema):
// each file's tables live in a schema of its own, so two test runs at once cannot drop
// or fill each other's tables.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { PG_SCHEMA, pool, usePgSchema } from "./support.js";

usePgSchema();

const db = pool();
afterAll(() => db.end());

describe("each test file's own PostgreSQL schema", () => {
  it("is the current schema of a pool() connection, and unqualified tables are made in it", async () => {
    const { rows } = await db.query("SELECT current_schema() AS s");
    expect(rows[0].s).toBe(PG_SCHEMA);
    await db.query("CREATE TABLE records_schema_probe (id int)");
    const made = await db.query(
      "SELECT table_schema FROM information_schema.tables WHERE table_name = 'records_schema_probe'",
    );
    expect(made.rows).toEqual([{ table_schema: PG_SCHEMA }]);
  });

  // A file that forgets usePgSchema() still runs: PG_URL's search_path skips the missing
  // schema and falls through to public, where every run's tables meet again.
  const here = dirname(fileURLToPath(import.meta.url));
  const onPostgres = readdirSync(here)
    .filter((f) => f.endsWith(".test.ts"))
    .filter((f) => /\bPG_URL\b|\bpool\(\)/.test(readFileSync(join(here, f), "utf8")));

  it("is used by every test file here that connects to PostgreSQL", () => {
    expect(onPostgres.length).toBeGreaterThan(20);
    const without = onPostgres.filter(
      (f) => !/^usePgSchema\(\);$/m.test(readFileSync(join(here, f), "utf8")),
    );
    expect(without).toEqual([]);
  });
});
