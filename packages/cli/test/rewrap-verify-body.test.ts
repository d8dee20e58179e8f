import { randomBytes } from "node:crypto";
import { connect, dropStateTables, type SqlAdapter } from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PG_URL as PG } from "../../batch-rewrap/test/support.js";
import { cli, tempDir } from "./support.js";

const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;

// Issue 11, item 4b: `envelope rewrap` authenticates every body by default.
describe("envelope rewrap verifies bodies (PostgreSQL)", () => {
  let db: SqlAdapter;
  let cwd: string;
  const table = `batch_rewrap_vb_${tag}`;
  const prefix = `batch_rewrap_vbst_${tag}`;
  const dbArgs = ["--db", PG, "--table", table, "--column", "email", "--state-prefix", prefix];
  beforeAll(async () => {
    db = await connect(PG);
    cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd })).code).toBe(
      0,
    );
    const seeded = await cli(["seed-demo", "--db", PG, "--table", table, "--rows", "40"], { cwd });
    expect(seeded.code, seeded.stderr).toBe(0);
  });
  afterAll(async () => {
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await dropStateTables(db, prefix);
    await db.close();
  });

  it("a damaged value is a failure with its code and stays byte-identical; --no-verify-body is accepted", async () => {
    const row = async (id: number) =>
      (await db.query(`SELECT email FROM ${table} WHERE id = ?`, [id])).rows[0]!.email as string;
    // One base64url character of row 35's ciphertext changed (same length, canonical);
    // past the preflight's sample (16 values), so the job meets it mid-run.
    const original = await row(35);
    const at = original.length - 30;
    const damaged = `${original.slice(0, at)}${original[at] === "A" ? "B" : "A"}${original.slice(at + 1)}`;
    await db.query(`UPDATE ${table} SET email = ? WHERE id = 35`, [damaged]);
    expect((await cli(["rotate", "--bits", "2048", "--name", "k2"], { cwd })).code).toBe(0);

    const run = await cli(["--json", "rewrap", ...dbArgs, "--apply", "--verify", "sample"], {
      cwd,
    });
    expect(run.code, run.stderr).toBe(EXIT_CODES.PARTIAL);
    expect(run.json().failures).toEqual({ ENVELOPE_DECRYPT_FAILED: 1 });
    expect(await row(35)).toBe(damaged);

    const optOut = await cli(["--json", "rewrap", ...dbArgs, "--apply", "--no-verify-body"], {
      cwd,
    });
    // The flag is accepted (not a usage error); the value is now the only one left, so the
    // preflight's full decrypt of its sample still refuses it before anything is written.
    expect(optOut.code, optOut.stderr).toBe(EXIT_CODES.DATA);
    expect(await row(35)).toBe(damaged);
  });
});
