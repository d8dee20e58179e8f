/**
 * Attack review: an attacker with write access to the database (no private key) edits the
 * rewrap job state tables to get `envelope retire` / `status --check` to decide wrongly,
 * or to put terminal escapes on the operator's screen. Each test asserts the SAFE outcome;
 * `it.fails` marks a finding (see its comment).
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
const RAW = ["\u001b", "\u0007", "\u009b"];

describe.each(DATABASES)("retire against forged job state on $name", ({ url }) => {
  const table = `attacker_ret_${tag}`;
  const prefix = `attacker_ret_st_${tag}`;
  const tables: string[] = [];
  afterAll(async () => {
    const db = await connect(url);
    for (const t of tables) await db.query(`DROP TABLE IF EXISTS ${t}`);
    await dropStateTables(db, prefix);
    await db.close();
  });

  /** keygen k1, 30 rows under k1, rotate to k2: the old key is `decrypt[0]`. */
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
    const text = readFileSync(configPath, "utf8");
    return { cwd, configPath, text, config: JSON.parse(text) };
  }

  it("forged 'done' jobs and deleted ranges do not let retire pass while values are under the key", async () => {
    const t = `${table}_a`;
    const { cwd, configPath, text, config } = await rotated(t);
    const on = ["--db", url, "--table", t, "--column", "email", "--state-prefix", prefix];
    // An apply run stopped at its first wrap leaves a job with its ranges pending.
    const db = await connect(url);
    try {
      const env = { PATH: process.env.PATH };
      const slow = gated(await resolveKey(config.encrypt, "encrypt", env), 1);
      const abort = new AbortController();
      const job = rewrapTable({
        db,
        table: t,
        primaryKey: "id",
        columns: ["email"],
        to: slow.provider,
        decrypt: [await resolveKey(config.decrypt[0], "decrypt[0]", env)],
        apply: true,
        batchSize: 5,
        sampleSize: 0,
        jobId: "att_done",
        stateTablePrefix: prefix,
        signal: abort.signal,
      });
      await slow.paused;
      abort.abort();
      slow.release();
      expect((await job).complete).toBe(false);
      // The attacker: job done, every range done, checkpoints and failures gone.
      await db.query(`UPDATE ${prefix}_jobs SET status = 'done' WHERE job_id = ?`, ["att_done"]);
      await db.query(`UPDATE ${prefix}_ranges SET status = 'done' WHERE job_id = ?`, ["att_done"]);
      await db.query(`DELETE FROM ${prefix}_failures`);
      for (const extra of [[], ["--force"], ["--stale-after", "0", "--force"]]) {
        const r = await cli(["retire", config.decrypt[0], ...on, ...extra], { cwd });
        expect(r.code, r.stderr).toBe(EXIT_CODES.KEY_IN_USE);
        expect(r.stdout).toMatch(/REFUSED: [1-9]\d* value\(s\)/);
      }
      expect(readFileSync(configPath, "utf8")).toBe(text);
      // Deleting the job's rows altogether: the count still refuses.
      for (const s of ["jobs", "ranges", "checkpoints"])
        await db.query(`DELETE FROM ${prefix}_${s}`);
      const r = await cli(["retire", config.decrypt[0], ...on], { cwd });
      expect(r.code, r.stderr).toBe(EXIT_CODES.KEY_IN_USE);
      expect(readFileSync(configPath, "utf8")).toBe(text);
    } finally {
      await db.close();
    }
  }, 120_000);

  it("old values written back and a checkpoint pushed past the rows: rewrap --apply says NOT complete (exit 5), not Complete., and the next run moves them", async () => {
    const t = `${table}_f1`;
    const { cwd, config } = await rotated(t);
    const on = ["--db", url, "--table", t, "--column", "email", "--state-prefix", prefix];
    const job = [...on, "--job", "att_f1", "--apply"];
    const db = await connect(url);
    try {
      // The attacker keeps the values as they are under the old key…
      const { rows: saved } = await db.query(`SELECT id, email FROM ${t} ORDER BY id`);
      const first = await cli(["rewrap", ...job, "--range-size", "10"], { cwd });
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain("Complete.");
      // …writes them back once the job is done, and edits its state: one range pending
      // with its checkpoint past the last row, the job running (so no second pass).
      for (const r of saved)
        await db.query(`UPDATE ${t} SET email = ? WHERE id = ?`, [r.email, r.id]);
      await db.query(
        `UPDATE ${prefix}_ranges SET status = 'pending' WHERE job_id = ? AND range_id = 0`,
        ["att_f1"],
      );
      await db.query(`UPDATE ${prefix}_checkpoints SET last_pk = '999999999' WHERE job_id = ?`, [
        "att_f1",
      ]);
      await db.query(`UPDATE ${prefix}_jobs SET status = 'running' WHERE job_id = ?`, ["att_f1"]);
      const forged = await cli(["rewrap", ...job], { cwd });
      expect(forged.code, forged.stderr).toBe(EXIT_CODES.PARTIAL);
      expect(forged.stdout).toMatch(
        /NOT complete: .*found 30 value\(s\) still not on the target key/,
      );
      expect(forged.stdout).not.toContain("Complete.");
      // Retire still refuses (it counts the column), and the next run moves them.
      const refused = await cli(["retire", config.decrypt[0], ...on, "--dry-run"], { cwd });
      expect(refused.code, refused.stderr).toBe(EXIT_CODES.KEY_IN_USE);
      const again = await cli(["rewrap", ...job], { cwd });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain("Complete.");
      const retire = await cli(["retire", config.decrypt[0], ...on, "--dry-run"], { cwd });
      expect(retire.code, retire.stdout + retire.stderr).toBe(0);
    } finally {
      await db.close();
    }
  }, 180_000);

  it("a malformed or hostile job spec makes retire refuse, escaped, config unchanged", async () => {
    const t = `${table}_b`;
    const { cwd, configPath, text, config } = await rotated(t);
    const on = ["--db", url, "--table", t, "--column", "email", "--state-prefix", prefix];
    const db = await connect(url);
    try {
      const ok = await cli(["retire", config.decrypt[0], ...on, "--dry-run"], { cwd });
      expect(ok.code, ok.stderr).toBe(EXIT_CODES.KEY_IN_USE);
      // The state tables as the engine creates them (tables.ts), if no run made them yet.
      const q = (s: string) => (db.dialect === "mysql" ? `\`${prefix}_${s}\`` : `"${prefix}_${s}"`);
      await db.query(
        `CREATE TABLE IF NOT EXISTS ${q("jobs")} (job_id VARCHAR(100) NOT NULL PRIMARY KEY, spec TEXT NOT NULL, status VARCHAR(16) NOT NULL, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL)`,
      );
      await db.query(
        `CREATE TABLE IF NOT EXISTS ${q("failures")} (job_id VARCHAR(100) NOT NULL, pk VARCHAR(255) NOT NULL, column_name VARCHAR(64) NOT NULL, code VARCHAR(64) NOT NULL, message TEXT NOT NULL, at VARCHAR(32) NOT NULL, PRIMARY KEY (job_id, pk, column_name))`,
      );
      await db.query(
        `CREATE TABLE IF NOT EXISTS ${q("ranges")} (job_id VARCHAR(100) NOT NULL, range_id INT NOT NULL, lo TEXT NULL, hi TEXT NULL, status VARCHAR(16) NOT NULL, PRIMARY KEY (job_id, range_id))`,
      );
      await db.query(
        `CREATE TABLE IF NOT EXISTS ${q("checkpoints")} (job_id VARCHAR(100) NOT NULL, range_id INT NOT NULL, last_pk TEXT NULL, ${["scanned", "rewrapped", "skipped", "nulls", "conflicts", "failed", "kms_calls"].map((c) => `${c} BIGINT NOT NULL DEFAULT 0`).join(", ")}, worker VARCHAR(100) NULL, updated_at VARCHAR(32) NULL, PRIMARY KEY (job_id, range_id))`,
      );
      const specs = [
        // Not JSON: V8 quotes the text in its SyntaxError message.
        `{"table":"${t}"\u001b[2J\u001b]0;pwned\u0007\u009b31m`,
        "null",
        JSON.stringify({ kind: "rewrap", table: t, columns: "email" }),
        JSON.stringify({ kind: "rewrap\u001b[2J", table: t, columns: ["email"] }),
      ];
      for (const [i, spec] of specs.entries()) {
        const id = `att\u001b[31m${i}`;
        await db.query(`DELETE FROM ${q("jobs")} WHERE job_id LIKE 'att%'`);
        await db.query(
          `INSERT INTO ${q("jobs")} (job_id, spec, status, created_at, updated_at) VALUES (?, ?, 'running', 'x', '2000-01-01T00:00:00.000Z')`,
          [id, spec],
        );
        for (const extra of [[], ["--force"]]) {
          const human = await cli(["retire", config.decrypt[0], ...on, ...extra], { cwd });
          expect(human.code, human.stderr).not.toBe(0);
          for (const raw of RAW) {
            expect(human.stderr).not.toContain(raw);
            expect(human.stdout).not.toContain(raw);
          }
          const json = await cli(["--json", "retire", config.decrypt[0], ...on, ...extra], {
            cwd,
          });
          expect(json.code).not.toBe(0);
          for (const raw of RAW) expect(json.stdout + json.stderr).not.toContain(raw);
        }
        expect(readFileSync(configPath, "utf8")).toBe(text);
      }
      await db.query(`DELETE FROM ${q("jobs")} WHERE job_id LIKE 'att%'`);
    } finally {
      await db.close();
    }
  }, 120_000);

  // Was FINDING F3: the guard that keeps retire from removing the key a running job still
  // writes under reads only the jobs table. An attacker deleted the running job's row from
  // <prefix>_jobs (or rewrote its spec.table): the job went on committing, retire counted 0
  // values under the job's target and removed it, and the job then wrote every value under
  // the removed key: 30 values stranded. Now every batch's transaction checks the job's row
  // (state/jobs.ts checkJobRow): retire may still go through, but the job stops before its
  // next batch is written. (Same setup as job-guard.test.ts's second test.)
  const hide: [
    string,
    (db: Awaited<ReturnType<typeof connect>>, jobId: string) => Promise<unknown>,
  ][] = [
    [
      "deleted the job's row",
      (db, jobId) => db.query(`DELETE FROM ${prefix}_jobs WHERE job_id = ?`, [jobId]),
    ],
    [
      "pointed the job's spec at another table",
      async (db, jobId) => {
        const { rows } = await db.query(`SELECT spec FROM ${prefix}_jobs WHERE job_id = ?`, [
          jobId,
        ]);
        const spec = { ...JSON.parse(String(rows[0]!.spec)), table: "elsewhere" };
        await db.query(`UPDATE ${prefix}_jobs SET spec = ? WHERE job_id = ?`, [
          JSON.stringify(spec),
          jobId,
        ]);
      },
    ],
  ];
  for (const [how, tamper] of hide)
    it(`a running job hidden by an attacker who ${how} strands nothing under a key retire removed`, async () => {
      const n = hide.findIndex(([h]) => h === how);
      const t = `${table}_c${n}`;
      const jobId = `att_running_${n}`;
      const { cwd, configPath } = await rotated(t);
      const on = ["--db", url, "--table", t, "--column", "email", "--state-prefix", prefix];
      const config = JSON.parse(readFileSync(configPath, "utf8"));
      const env = { PATH: process.env.PATH };
      const k2 = config.encrypt as string;
      const db = await connect(url);
      const slow = gated(await resolveKey(k2, "encrypt", env), 1);
      let job: Promise<unknown> | undefined;
      let jobError: unknown;
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
        const before = readFileSync(configPath, "utf8");
        // The attacker hides the running job.
        // On its own connection: the paused job holds the shared pool's.
        const attacker = await connect(url);
        try {
          await tamper(attacker, jobId);
        } finally {
          await attacker.close();
        }
        const retire = await cli(["retire", k2, ...on], { cwd });
        const after = readFileSync(configPath, "utf8");
        slow.release();
        await job.catch((error) => {
          jobError = error;
        });
        // Safe: no value ends up under the removed key. The job stopped, typed, before its
        // first batch was written; retire, which cannot see the hidden job, went through.
        const status = await cli(["--json", "status", "--check", ...on.slice(0, 6)], { cwd });
        expect(status.json().strandedValues).toBe(0);
        expect(retire.code).toBe(0);
        expect(after).not.toBe(before);
        expect(jobError).toMatchObject({
          code: "ENVELOPE_BAD_CONFIG",
          message: expect.stringMatching(/changed by hand.*not written/s),
        });
      } finally {
        slow.release();
        await job?.catch(() => {});
        await db.close();
      }
    }, 180_000);
});
