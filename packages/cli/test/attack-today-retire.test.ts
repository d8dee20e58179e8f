/**
 * Attack review of today's change (checkJobRow, orphanedState, stopJob): an attacker with
 * write access to the database (no private key) hides a running rewrap job from the guard
 * of `envelope retire` in a way the per-batch job-row check does not look at. Each test
 * asserts the SAFE outcome; `it.fails` marks a finding (see its comment).
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect, dropStateTables, rewrapTable } from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { resolveKey } from "@envelope/core";
import { afterAll, describe, expect, it } from "vitest";
import { DATABASES, gated } from "../../batch-rewrap/test/support.js";
import { cli, tempDir } from "./support.js";

const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;

describe.each(DATABASES)("today: hiding a running job from retire on $name", ({ url }) => {
  const table = `atk_today_${tag}`;
  const prefix = `atk_today_st_${tag}`;
  const tables: string[] = [];
  afterAll(async () => {
    const db = await connect(url);
    for (const t of tables) await db.query(`DROP TABLE IF EXISTS ${t}`);
    await dropStateTables(db, prefix);
    await db.close();
  });

  async function rotated(t: string) {
    tables.push(t);
    const cwd = tempDir();
    const configPath = join(cwd, "envelope.config.json");
    expect((await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd })).code).toBe(
      0,
    );
    const seeded = await cli(["seed-demo", "--db", url, "--table", t, "--rows", "30"], { cwd });
    expect(seeded.code, seeded.stderr).toBe(0);
    expect((await cli(["rotate", "--bits", "2048", "--name", "k2"], { cwd })).code).toBe(0);
    return { cwd, configPath };
  }

  // Held: checkJobRow does not look at the job row's status, but the range a worker has
  // claimed is locked (FOR UPDATE SKIP LOCKED) for as long as it works it, so the attacker
  // cannot mark it done (PostgreSQL waits, MariaDB times out); with a pending range the
  // guard (state/unfinished.ts) still lists the job whatever its status, and retire refuses.
  it("a running job whose row and ranges an attacker marked 'done' (all ranges it can reach too) is still refused by retire", async () => {
    const t = `${table}_done`;
    const jobId = "att_today_done";
    const { cwd, configPath } = await rotated(t);
    const on = ["--db", url, "--table", t, "--column", "email", "--state-prefix", prefix];
    const config = JSON.parse(readFileSync(configPath, "utf8"));
    const env = { PATH: process.env.PATH };
    const k2 = config.encrypt as string;
    const db = await connect(url);
    const slow = gated(await resolveKey(k2, "encrypt", env), 1);
    let job: Promise<unknown> | undefined;
    try {
      job = rewrapTable({
        db,
        table: t,
        primaryKey: "id",
        columns: ["email"],
        to: slow.provider,
        decrypt: [await resolveKey(config.decrypt[0], "decrypt[0]", env)],
        apply: true,
        batchSize: 100,
        sampleSize: 0,
        jobId,
        stateTablePrefix: prefix,
      });
      job.catch(() => {});
      await slow.paused;
      expect((await cli(["rotate", "--bits", "2048", "--name", "k3"], { cwd })).code).toBe(0);
      const attacker = await connect(url);
      try {
        await attacker.query(`UPDATE ${prefix}_jobs SET status = 'done' WHERE job_id = ?`, [jobId]);
        // Every range but the claimed (locked) one.
        await attacker.query(
          `UPDATE ${prefix}_ranges SET status = 'done' WHERE job_id = ? AND range_id > 0`,
          [jobId],
        );
      } finally {
        await attacker.close();
      }
      const retire = await cli(["retire", k2, ...on], { cwd });
      // The resume hint never repeats the database URL (it may hold a password): with
      // --db it says `--db <url>`; with ENVELOPE_DB_URL it leaves --db out (runs as printed).
      const secret = "Sup3rS3cretPw";
      const withPw = url.startsWith("postgres")
        ? url.replace("postgres@", `postgres:${secret}@`)
        : url;
      const viaFlag = await cli(["retire", k2, ...on.slice(2), "--db", withPw], { cwd });
      const viaEnv = await cli(["retire", k2, ...on.slice(2)], {
        cwd,
        env: { ENVELOPE_DB_URL: withPw },
      });
      for (const r of [viaFlag, viaEnv]) {
        expect(r.code, r.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
        expect(r.stdout + r.stderr).not.toContain(secret);
        expect(r.stdout + r.stderr).not.toContain("127.0.0.1");
      }
      expect(viaFlag.stderr).toContain("--db <url>");
      expect(viaEnv.stderr).toMatch(/`envelope rewrap --table/);
      slow.release();
      await job.catch(() => {});
      const status = await cli(["--json", "status", "--check", ...on.slice(0, 6)], { cwd });
      // Safe: retire refused, and no value ended up under a removed key.
      expect(retire.code, retire.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
      expect(status.json().strandedValues).toBe(0);
    } finally {
      slow.release();
      await job?.catch(() => {});
      await db.close();
    }
  }, 180_000);
});
