import { randomBytes } from "node:crypto";
import { connect, dropStateTables, type SqlAdapter } from "@envelope/batch-rewrap";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PG_URL as PG } from "../../batch-rewrap/test/support.js";
import { cli, tempDir } from "./support.js";

const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;

describe("rewrap --range-size and KMS calls per value (PostgreSQL)", () => {
  let db: SqlAdapter;
  let cwd: string;
  const table = `batch_rewrap_clirs_${tag}`;
  const prefix = `batch_rewrap_clirsst_${tag}`;
  const dbArgs = ["--db", PG, "--table", table, "--column", "email", "--state-prefix", prefix];
  beforeAll(async () => {
    db = await connect(PG);
    cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd })).code).toBe(
      0,
    );
    const seeded = await cli(["seed-demo", "--db", PG, "--table", table, "--rows", "400"], { cwd });
    expect(seeded.code, seeded.stderr).toBe(0);
    expect((await cli(["rotate", "--bits", "2048", "--name", "k2"], { cwd })).code).toBe(0);
  });
  afterAll(async () => {
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await dropStateTables(db, prefix);
    await db.close();
  });

  it("refuses a bad --range-size before anything runs", async () => {
    const bad = await cli(["--json", "rewrap", ...dbArgs, "--apply", "--range-size", "0"], { cwd });
    expect(bad.code).not.toBe(0);
    expect(`${bad.stdout}${bad.stderr}`).toContain("--range-size");
  });

  it("--range-size 100 plans 4 ranges over 400 rows; --json reports KMS calls per value", async () => {
    const run = await cli(["--json", "rewrap", ...dbArgs, "--apply", "--range-size", "100"], {
      cwd,
    });
    expect(run.code, run.stderr).toBe(0);
    const report = run.json();
    expect(report).toMatchObject({ apply: true, complete: true });
    expect(report.run.rewrapped).toBe(400);
    // local-rsa: unwrap the old entry (body verified), wrap under the new key.
    expect(report.kmsCallsPerValue).toBe(2);
    const ranges = await db.query(`SELECT COUNT(*) AS n FROM ${prefix}_ranges WHERE job_id = ?`, [
      report.jobId,
    ]);
    expect(Number(ranges.rows[0]!.n)).toBe(4);
  }, 60_000);
});
