import { randomBytes } from "node:crypto";
import { connect, dropStateTables } from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { describe, expect, it } from "vitest";
import { DATABASES } from "../../batch-rewrap/test/support.js";
import { cli, tempDir } from "./support.js";

describe.each(DATABASES)("rewrap report on $name", ({ url }) => {
  it("N damaged values: failed N once, each code says what is true of the value, a rerun agrees", async () => {
    const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;
    const table = `batch_rewrap_clirep_${tag}`;
    const prefix = `batch_rewrap_clirepst_${tag}`;
    const cwd = tempDir();
    const db = await connect(url);
    try {
      expect(
        (await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd })).code,
      ).toBe(0);
      const seeded = await cli(["seed-demo", "--db", url, "--table", table, "--rows", "200"], {
        cwd,
      });
      expect(seeded.code, seeded.stderr).toBe(0);
      expect((await cli(["rotate", "--bits", "2048", "--name", "k2"], { cwd })).code).toBe(0);
      // Past the preflight's first rows: 2 truncated values, 2 that are no envelope at all.
      const { rows } = await db.query(`SELECT email FROM ${table} WHERE id = 1`);
      const truncated = String(rows[0]!.email).slice(0, 30);
      await db.query(`UPDATE ${table} SET email = ? WHERE id IN (150, 160)`, [truncated]);
      await db.query(`UPDATE ${table} SET email = 'garbage' WHERE id IN (170, 180)`);
      const args = ["rewrap", "--db", url, "--table", table, "--column", "email"];
      const run = await cli([...args, "--state-prefix", prefix, "--apply"], { cwd });
      expect(run.code, run.stderr).toBe(EXIT_CODES.PARTIAL);
      expect(run.stdout).toContain("scanned 200 rows · rewrapped 196 ·");
      expect(run.stdout).toContain("· failed 4\n");
      expect(run.stdout).toContain(
        "FAILED ENVELOPE_BAD_FORMAT × 4: not an Envelope value, or damaged (e.g. truncated): left unchanged and NOT readable with any key; restore it from a backup or write it again",
      );
      expect(run.stdout).toContain("Some values failed: none of them was changed");
      expect(run.stdout).not.toContain("still readable)");
      const again = await cli(["--json", ...args, "--state-prefix", prefix, "--apply"], { cwd });
      expect(again.json()).toMatchObject({
        run: { scanned: 200, rewrapped: 0, failed: 4 },
        total: { failed: 4 },
        failures: { ENVELOPE_BAD_FORMAT: 4 },
      });
    } finally {
      await db.query(`DROP TABLE IF EXISTS ${table}`);
      await dropStateTables(db, prefix);
      await db.close();
    }
  });
});
