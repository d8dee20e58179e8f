import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  connect,
  dropStateTables,
  findUnfinishedJobs,
  type JobReport,
  rewrapTable,
} from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { resolveKey } from "@envelope/core";
import { afterAll, describe, expect, it } from "vitest";
import { DATABASES, gated } from "../../batch-rewrap/test/support.js";
import { cli, tempDir } from "./support.js";

const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;

describe.each(DATABASES)("retire and rotate during a rewrap job on $name", ({ url }) => {
  const table = `runbook_guard_${tag}`;
  const prefix = `runbook_guard_st_${tag}`;
  afterAll(async () => {
    const db = await connect(url);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.query(`DROP TABLE IF EXISTS ${table}_b`);
    await dropStateTables(db, prefix);
    await db.close();
  });

  it("refuse with exit 10 while the job runs (even with --force) and while it is incomplete (--force then passes to the count); succeed once it is done", async () => {
    const cwd = tempDir();
    const configPath = join(cwd, "envelope.config.json");
    const on = ["--db", url, "--table", table, "--column", "email", "--state-prefix", prefix];
    expect((await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd })).code).toBe(
      0,
    );
    const seeded = await cli(["seed-demo", "--db", url, "--table", table, "--rows", "60"], { cwd });
    expect(seeded.code, seeded.stderr).toBe(0);
    expect((await cli(["rotate", "--bits", "2048", "--name", "k2"], { cwd })).code).toBe(0);
    const rotated = readFileSync(configPath, "utf8");
    const config = JSON.parse(rotated);
    const env = { PATH: process.env.PATH };
    const oldKey = await resolveKey(config.decrypt[0], "decrypt[0]", env);
    const newKey = await resolveKey(config.encrypt, "encrypt", env);
    const keyFiles = () => readdirSync(join(cwd, "keys")).sort();
    const filesBefore = keyFiles();

    const db = await connect(url);
    // A job that stops in its third batch, on a KMS call, with two batches committed.
    const slow = gated(newKey, 25);
    try {
      const abort = new AbortController();
      const job: Promise<JobReport> = rewrapTable({
        db,
        table,
        primaryKey: "id",
        columns: ["email"],
        to: slow.provider,
        decrypt: [oldKey],
        apply: true,
        batchSize: 10,
        concurrency: 1,
        stateTablePrefix: prefix,
        signal: abort.signal,
      });
      await slow.paused;

      // Running: refused, --force or not; the config and the key folder untouched.
      for (const extra of [[], ["--force"], ["--dry-run"]]) {
        const r = await cli(["retire", config.decrypt[0], ...on, ...extra], { cwd });
        expect(r.code, r.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
        expect(r.stderr).toContain("is running");
        expect(r.stderr).toContain("Wait for it to finish");
        expect(r.stderr).toContain("[ENVELOPE_JOB_IN_PROGRESS]");
      }
      const json = await cli(["--json", "retire", config.decrypt[0], ...on], { cwd });
      expect(json.code).toBe(EXIT_CODES.JOB_IN_PROGRESS);
      for (const args of [
        ["rotate", "--bits", "2048", "--db", url, "--state-prefix", prefix],
        ["rotate", "--bits", "2048", ...on],
        ["rotate", "--bits", "2048", ...on, "--force"],
        // The same table named with its schema (PostgreSQL's public, MariaDB's database).
        [
          "rotate",
          "--bits",
          "2048",
          "--db",
          url,
          "--table",
          `${url.startsWith("mysql") ? new URL(url).pathname.slice(1) : "public"}.${table}`,
          "--column",
          "email",
          "--state-prefix",
          prefix,
        ],
      ]) {
        const r = await cli(args, { cwd });
        expect(r.code, r.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
        expect(r.stderr).toContain("rotate refused");
      }
      // Another table's job is not this table's business.
      const other = await cli(
        [
          "retire",
          config.decrypt[0],
          ...on.slice(0, 2),
          "--table",
          `${table}_x`,
          "--column",
          "email",
          "--state-prefix",
          prefix,
        ],
        { cwd },
      );
      expect(other.code).not.toBe(EXIT_CODES.JOB_IN_PROGRESS);
      expect(readFileSync(configPath, "utf8")).toBe(rotated);
      expect(keyFiles()).toEqual(filesBefore);

      // Stopped mid-job by its signal (Ctrl-C): incomplete at once, also within the default
      // lease; refused with the resume command, and --force only gets to the count. (A
      // SIGKILLed job turns incomplete once the lease passes: job-guard-sigkill.test.ts.)
      abort.abort();
      slow.release();
      const stopped = await job;
      expect(stopped.complete).toBe(false);
      const [left] = await findUnfinishedJobs(db, { stateTablePrefix: prefix, table });
      expect(left?.state).toBe("incomplete");
      const incomplete = await cli(["retire", config.decrypt[0], ...on, "--stale-after", "1"], {
        cwd,
      });
      expect(incomplete.code, incomplete.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
      expect(incomplete.stderr).toContain("is incomplete");
      // The resume command as it can be run: `--db <url>` for the --db given (the URL, which
      // may hold a password, is never printed), no --db at all when ENVELOPE_DB_URL has it.
      const resume = `--table ${table} --column email --state-prefix ${prefix} --apply --resume --job `;
      expect(incomplete.stderr).toContain(`envelope rewrap --db <url> ${resume}`);
      expect(incomplete.stderr).not.toContain(url);
      const fromEnv = await cli(
        ["retire", config.decrypt[0], ...on.slice(2), "--stale-after", "1"],
        { cwd, env: { ENVELOPE_DB_URL: url } },
      );
      expect(fromEnv.code, fromEnv.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
      expect(fromEnv.stderr).toContain(`envelope rewrap ${resume}`);
      const recent = await cli(["retire", config.decrypt[0], ...on], { cwd });
      expect(recent.code, recent.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
      expect(recent.stderr).toContain("is incomplete");
      const forced = await cli(
        ["retire", config.decrypt[0], ...on, "--stale-after", "1", "--force"],
        { cwd },
      );
      expect(forced.code, forced.stderr).toBe(EXIT_CODES.KEY_IN_USE);
      expect(forced.stderr).toContain("WARNING: --force");
      // The state tables are the database's: whoever can write it can plant escape
      // sequences in a job's spec. The refusal and the --force warning show them
      // escaped, never raw.
      const jobs = `${prefix}_jobs`;
      const { rows } = await db.query(`SELECT job_id, spec FROM ${jobs}`);
      const spec = JSON.parse(String(rows[0]!.spec));
      const hostile = {
        ...spec,
        columns: [...spec.columns, "x\u001b[2J\ny"],
        primaryKey: "id\u001b]0;pwned\u0007",
      };
      const setSpec = (value: object) =>
        db.query(`UPDATE ${jobs} SET spec = ? WHERE job_id = ?`, [
          JSON.stringify(value),
          rows[0]!.job_id,
        ]);
      await setSpec(hostile);
      try {
        for (const extra of [[], ["--force"]]) {
          const r = await cli(
            ["retire", config.decrypt[0], ...on, "--stale-after", "1", ...extra],
            { cwd },
          );
          expect(r.stderr).toContain("is incomplete");
          for (const raw of ["\u001b", "\u0007", "\ny"]) expect(r.stderr).not.toContain(raw);
        }
      } finally {
        await setSpec(spec);
      }
      expect(readFileSync(configPath, "utf8")).toBe(rotated);

      // Resumed to the end: nothing unfinished, retire goes ahead.
      const resumed = await cli(["rewrap", ...on, "--apply", "--resume"], { cwd });
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(await findUnfinishedJobs(db, { stateTablePrefix: prefix })).toEqual([]);
      const retired = await cli(["--json", "retire", config.decrypt[0], ...on], { cwd });
      expect(retired.code, retired.stderr).toBe(0);
      expect(retired.json()).toMatchObject({ retired: true, valuesUnderKey: 0 });
    } finally {
      slow.release(); // a failed assertion must not leave the job waiting
      await db.close();
    }
  }, 180_000);

  it("a job paused before its first commit: rotate --db refuses (10); after a rotate made without --db, retire of the job's target refuses (10) although the count is 0, so nothing is stranded when the job goes on", async () => {
    const cwd = tempDir();
    const configPath = join(cwd, "envelope.config.json");
    const t2 = `${table}_b`;
    const on = ["--db", url, "--table", t2, "--column", "email", "--state-prefix", prefix];
    expect((await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd })).code).toBe(
      0,
    );
    expect(
      (await cli(["seed-demo", "--db", url, "--table", t2, "--rows", "30"], { cwd })).code,
    ).toBe(0);
    expect((await cli(["rotate", "--bits", "2048", "--name", "k2"], { cwd })).code).toBe(0);
    const config = JSON.parse(readFileSync(configPath, "utf8"));
    const env = { PATH: process.env.PATH };
    const k2 = config.encrypt as string;
    const db = await connect(url);
    // No preflight sample: the first wrap is in the first batch, after the job row exists.
    const slow = gated(await resolveKey(k2, "encrypt", env), 1);
    try {
      const job = rewrapTable({
        db,
        table: t2,
        primaryKey: "id",
        columns: ["email"],
        to: slow.provider,
        decrypt: [await resolveKey(config.decrypt[0], "decrypt[0]", env)],
        apply: true,
        batchSize: 100,
        sampleSize: 0,
        stateTablePrefix: prefix,
      });
      await slow.paused;
      const rotateDb = await cli(["rotate", "--bits", "2048", "--name", "k3", ...on], { cwd });
      expect(rotateDb.code, rotateDb.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
      expect(JSON.parse(readFileSync(configPath, "utf8")).encrypt).toBe(k2);
      // Without a database rotate cannot look (documented); the retire then must.
      expect((await cli(["rotate", "--bits", "2048", "--name", "k3"], { cwd })).code).toBe(0);
      const rotated = readFileSync(configPath, "utf8");
      const retire = await cli(["retire", k2, ...on], { cwd });
      expect(retire.code, retire.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
      expect(readFileSync(configPath, "utf8")).toBe(rotated);
      slow.release();
      expect((await job).complete).toBe(true);
      // The job wrote its 30 values under k2, which the config still opens.
      const status = await cli(["status", "--check", ...on.slice(0, 6)], { cwd });
      expect(status.code, status.stdout).toBe(0);
    } finally {
      slow.release(); // a failed assertion must not leave the job waiting
      await db.close();
    }
  }, 180_000);
});
