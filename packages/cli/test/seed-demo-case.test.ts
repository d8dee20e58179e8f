// seed-demo looked the table up by the name as given, then created it unquoted: on
// PostgreSQL `--table Demo` with a table `demo` passed the check and CREATE TABLE Demo (=
// demo) failed as an internal error (exit 1). The table is now created under the name
// as given, the one the check and rewrap / status use.

import { randomBytes } from "node:crypto";
import { connect, type SqlAdapter } from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectDatabases } from "../../../test/support/databases.js";
import { MYSQL_URL, PG_URL } from "../../batch-rewrap/test/support.js";
import { cli, tempDir } from "./support.js";

const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;
const cases = selectDatabases<[string, string, string]>([
  ["PostgreSQL", PG_URL, '"'],
  ["MariaDB", MYSQL_URL, "`"],
]);

let cwd: string;
beforeAll(async () => {
  cwd = tempDir();
  expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd })).code).toBe(0);
});

describe.each(cases)("seed-demo --table with capitals on %s", (_name, url, q) => {
  const lower = `seed_case_${tag}`;
  const mixed = `Seed_Case_${tag}`;
  const seq = `seed_case_seq_${tag}`;
  let db: SqlAdapter;
  beforeAll(async () => {
    db = await connect(url);
    await db.query(`CREATE TABLE ${lower} (id BIGINT PRIMARY KEY, email TEXT)`);
    await db.query(`INSERT INTO ${lower} (id, email) VALUES (1, 'kept')`);
  });
  afterAll(async () => {
    await db.query(`DROP TABLE IF EXISTS ${lower}`);
    await db.query(`DROP TABLE IF EXISTS ${q}${mixed}${q}`);
    if (db.dialect !== "mysql") await db.query(`DROP SEQUENCE IF EXISTS ${seq}`);
    await db.close();
  });

  it("beside a lower-case table of that name: creates the table as named, which status finds; a second run is exit 2", async () => {
    const seeded = await cli(["seed-demo", "--db", url, "--table", mixed, "--rows", "3"], { cwd });
    expect(seeded.code, seeded.stderr).toBe(EXIT_CODES.OK);
    expect(seeded.stdout).toContain(`created ${mixed} with 3 encrypted rows`);
    expect((await db.query(`SELECT email FROM ${lower}`)).rows).toEqual([{ email: "kept" }]);
    expect((await db.query(`SELECT id FROM ${q}${mixed}${q} ORDER BY id`)).rows).toEqual([
      { id: expect.anything() },
      { id: expect.anything() },
      { id: expect.anything() },
    ]);
    const status = await cli(
      ["--json", "status", "--db", url, "--table", mixed, "--column", "email"],
      { cwd },
    );
    expect(status.code, status.stderr).toBe(EXIT_CODES.OK);
    expect(Object.values(status.json().column.byKeyRef)).toEqual([3]);

    const again = await cli(["--json", "seed-demo", "--db", url, "--table", mixed, "--rows", "3"], {
      cwd,
    });
    expect(again.code, again.stderr).toBe(EXIT_CODES.USAGE);
    expect(again.json().error).toMatchObject({
      code: "ENVELOPE_BAD_INPUT",
      details: { field: "table" },
    });
    expect(again.json().error.message).toMatch(/already exists.*Nothing was changed/);
  });

  it.skipIf(url !== PG_URL)(
    "a sequence of that name (not in information_schema.tables): exit 2, not an internal error",
    async () => {
      await db.query(`CREATE SEQUENCE ${seq}`);
      const run = await cli(["--json", "seed-demo", "--db", url, "--table", seq, "--rows", "3"], {
        cwd,
      });
      expect(run.code, run.stderr).toBe(EXIT_CODES.USAGE);
      expect(run.json().error.code).toBe("ENVELOPE_BAD_INPUT");
      expect(run.json().error.message).toMatch(/already exists \(or another relation/);
    },
  );
});

describe("seed-demo --table with an SQL keyword as its name", () => {
  it.each(["order", "user"])(
    "%s: created (quoted), not a syntax error",
    {
      timeout: 60_000,
    },
    async (name) => {
      const run = await cli(
        ["seed-demo", "--db", "pglite://memory", "--table", name, "--rows", "2"],
        { cwd },
      );
      expect(run.code, run.stderr).toBe(EXIT_CODES.OK);
      expect(run.stdout).toContain(`created ${name} with 2 encrypted rows`);
    },
  );
});
