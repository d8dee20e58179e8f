/**
 * Attack review: an attacker with write access to the database (not to any private key)
 * edits the rewrap job state tables (jobs, ranges, checkpoints, failures) between two runs
 * of a job. Each test asserts the SAFE outcome; `it.fails` marks a finding (see its comment).
 */
import {
  connect,
  countKeyRefs,
  findJob,
  type RewrapTableOptions,
  type SqlAdapter,
} from "@envelope/batch-rewrap";
import { Envelope, type KeyProvider } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DATABASES,
  dropAll,
  gated,
  keyPair,
  seedTable,
  smallJob,
  uniqueName,
  verifyAll,
} from "./support.js";

const ROWS = 40;

const targets = [...DATABASES, { name: "pglite", url: "pglite://memory" }];

describe.each(targets)("state tables edited by a database writer ($name)", ({ url }) => {
  let db: SqlAdapter;
  const table = uniqueName("attacker_st");
  const prefix = uniqueName("attacker_stp");
  const q = (name: string) => (db.dialect === "mysql" ? `\`${name}\`` : `"${name}"`);
  const T = {
    jobs: () => q(`${prefix}_jobs`),
    ranges: () => q(`${prefix}_ranges`),
    checkpoints: () => q(`${prefix}_checkpoints`),
    failures: () => q(`${prefix}_failures`),
  };
  beforeAll(async () => {
    db = await connect(url);
  });
  afterAll(async () => {
    await dropAll(db, table, prefix);
    await db.close();
  });

  const run = (
    jobId: string,
    to: KeyProvider,
    from: KeyProvider,
    extra: Partial<RewrapTableOptions> = {},
  ) => smallJob(db, table, prefix, jobId, to, from, { rangeSize: 10, ...extra });

  /** A job stopped (Ctrl-C) after its first wrap: ranges pending, values still under `from`. */
  async function stoppedJob(jobId: string) {
    const from = keyPair().provider;
    const to = keyPair().provider;
    await seedTable(db, table, ROWS, from);
    const slow = gated(to, 1);
    const abort = new AbortController();
    const first = run(jobId, slow.provider, from, { signal: abort.signal });
    await slow.paused;
    abort.abort();
    slow.release();
    const report = await first;
    expect(report.stopped).toBe(true);
    expect(report.complete).toBe(false);
    return { from, to };
  }

  const underOld = async (from: KeyProvider) => {
    const scan = await countKeyRefs({ db, table, primaryKey: "id", columns: ["email"] });
    return scan.byKeyRef[`${from.id}:${from.keyRef}`] ?? 0;
  };

  // Was FINDING F1 (state tables trusted for completeness): engine/run.ts applyReport set
  // `complete` from the ranges and failures tables only. An attacker marks all ranges but
  // one done and moves the last one's checkpoint past the table's end; the resumed run read
  // nothing and reported complete while every value was still under the old key. (Retire
  // still refused: it rescans the column; see the next test.) Now the run reads the column
  // (headers only, no KMS call) before it claims `complete`.
  it("a resumed run does not report complete while values are still under the old key (checkpoints pushed past the rows)", async () => {
    const { from, to } = await stoppedJob("att_skip");
    await db.query(`UPDATE ${T.ranges()} SET status = 'done' WHERE job_id = ? AND range_id > 0`, [
      "att_skip",
    ]);
    await db.query(
      `UPDATE ${T.checkpoints()} SET last_pk = '999999999' WHERE job_id = ? AND range_id >= 0`,
      ["att_skip"],
    );
    // Marked running again (a live job, not a stopped one): the resuming run then makes no
    // second pass over the table (a stopped job's resume does, and would move every value).
    await db.query(`UPDATE ${T.jobs()} SET status = 'running' WHERE job_id = ?`, ["att_skip"]);
    // Range 0 left pending (the stopped run may have finished it): so the job is not reopened.
    await db.query(
      `UPDATE ${T.ranges()} SET status = 'pending' WHERE job_id = ? AND range_id = 0`,
      ["att_skip"],
    );
    const report = await run("att_skip", to, from);
    const left = await underOld(from);
    expect(left).toBeGreaterThan(0);
    // Safe: a run that leaves values under the old key does not call itself complete.
    expect(report.complete).toBe(false);
    // Its check read every row and counted every value still under the old key.
    expect(report.pendingRanges).toBe(0);
    expect(report.failures).toEqual({});
    expect(report.verified).toEqual({ scanned: ROWS, remaining: left });
  });

  it("the column scan that retire / status use still counts those values, and a rerun goes over the whole table again", async () => {
    const { from, to } = await stoppedJob("att_skip2");
    await db.query(`UPDATE ${T.ranges()} SET status = 'done' WHERE job_id = ? AND range_id > 0`, [
      "att_skip2",
    ]);
    await db.query(`UPDATE ${T.checkpoints()} SET last_pk = '999999999' WHERE job_id = ?`, [
      "att_skip2",
    ]);
    await db.query(`UPDATE ${T.jobs()} SET status = 'running' WHERE job_id = ?`, ["att_skip2"]);
    // Range 0 left pending (the stopped run may have finished it): so the job is not reopened.
    await db.query(
      `UPDATE ${T.ranges()} SET status = 'pending' WHERE job_id = ? AND range_id = 0`,
      ["att_skip2"],
    );
    await run("att_skip2", to, from);
    // The backstop of `envelope retire`: it counts the column itself, not the job's ranges.
    expect(await underOld(from)).toBeGreaterThanOrEqual(ROWS - 10);
    // Every range done now: the next apply run reopens the job and moves every value.
    const again = await run("att_skip2", to, from);
    expect(again.reopened).toBe(true);
    expect(again.complete).toBe(true);
    expect(await underOld(from)).toBe(0);
    const check = await verifyAll(db, table, to);
    expect(check.wrong).toEqual([]);
  });

  // Was FINDING F1b: the attacker deletes only the jobs row of a finished job. The next
  // apply run's insert of the job hit the old ranges' duplicate key and was taken as "another
  // worker created it"; no job row, so nothing reopened; every range done, so the run read
  // no row and reported complete while values written under the old key since stayed there.
  // Now state rows without their jobs row are refused (typed, nothing written).
  it("a rerun of a finished job whose jobs row was deleted refuses (typed), and a new job id moves every value", async () => {
    const from = keyPair().provider;
    const to = keyPair().provider;
    await seedTable(db, table, ROWS, from);
    expect((await run("att_orphan", to, from)).complete).toBe(true);
    // The app (an instance on the old config) writes 40 more values under the old key.
    const app = new Envelope({ encrypt: from, cache: false });
    for (let id = ROWS + 1; id <= 2 * ROWS; id++) {
      const v = await app.encrypt(`user${id}@example.com`, {
        context: { table, column: "email", id: String(id) },
        output: "binary",
      });
      await db.query(`INSERT INTO ${table} (id, email) VALUES (?, ?)`, [id, v]);
    }
    expect(await underOld(from)).toBe(ROWS);
    await db.query(`DELETE FROM ${T.jobs()} WHERE job_id = ?`, ["att_orphan"]);
    await expect(run("att_orphan", to, from)).rejects.toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
      message: expect.stringMatching(/no row in the jobs table.*another job id/s),
    });
    expect(await underOld(from)).toBe(ROWS);
    const fresh = await run("att_orphan_2", to, from);
    expect(fresh.complete).toBe(true);
    expect(await underOld(from)).toBe(0);
    expect((await verifyAll(db, table, to)).wrong).toEqual([]);
  });

  it("a job row forged 'done' with every range done does not make the next run skip the table", async () => {
    const { from, to } = await stoppedJob("att_done");
    await db.query(`UPDATE ${T.ranges()} SET status = 'done' WHERE job_id = ?`, ["att_done"]);
    await db.query(`UPDATE ${T.jobs()} SET status = 'done' WHERE job_id = ?`, ["att_done"]);
    await db.query(`DELETE FROM ${T.failures()} WHERE job_id = ?`, ["att_done"]);
    const report = await run("att_done", to, from);
    expect(report.reopened).toBe(true);
    expect(report.complete).toBe(true);
    expect(await underOld(from)).toBe(0);
    expect((await verifyAll(db, table, to)).wrong).toEqual([]);
  });

  it("overlapping forged ranges (every range duplicated) neither corrupt a value nor write one twice", async () => {
    const { from, to } = await stoppedJob("att_overlap");
    const { rows } = await db.query(
      `SELECT range_id, lo, hi FROM ${T.ranges()} WHERE job_id = ? ORDER BY range_id`,
      ["att_overlap"],
    );
    let id = 1000;
    for (const r of rows) {
      // A copy of the range and one spanning the whole table, each with a fresh checkpoint.
      for (const [lo, hi] of [
        [r.lo, r.hi],
        [null, null],
      ]) {
        await db.query(
          `INSERT INTO ${T.ranges()} (job_id, range_id, lo, hi, status) VALUES (?, ?, ?, ?, 'pending')`,
          ["att_overlap", id, lo, hi],
        );
        await db.query(`INSERT INTO ${T.checkpoints()} (job_id, range_id) VALUES (?, ?)`, [
          "att_overlap",
          id,
        ]);
        id++;
      }
    }
    const report = await run("att_overlap", to, from, { workers: 3 });
    expect(report.complete).toBe(true);
    expect(await underOld(from)).toBe(0);
    expect((await verifyAll(db, table, to)).wrong).toEqual([]);
  });

  it("a forged failure naming another column or a missing row makes the retry step write nothing outside the job's columns", async () => {
    const { from, to } = await stoppedJob("att_fail");
    await db.query(`UPDATE ${table} SET note = ? WHERE id = 3`, ["app-note"]);
    for (const [pk, column] of [
      ["3", "note"],
      ["3", "id"],
      ["424242", "email"],
    ]) {
      await db.query(
        `INSERT INTO ${T.failures()} (job_id, pk, column_name, code, message, at) VALUES (?, ?, ?, 'X', 'm', 'now')`,
        ["att_fail", pk, column],
      );
    }
    await run("att_fail", to, from);
    const { rows } = await db.query(`SELECT id, note FROM ${table} WHERE id = 3`);
    expect(rows[0]!.note).toBe("app-note");
    expect(String(rows[0]!.id)).toBe("3");
    expect(await underOld(from)).toBe(0);
    expect((await verifyAll(db, table, to)).wrong).toEqual([]);
    const { rows: count } = await db.query(`SELECT COUNT(*) AS n FROM ${table}`);
    expect(Number(count[0]!.n)).toBe(ROWS);
  });

  // Was FINDING F2 (PostgreSQL): engine/retry.ts put every failures.pk into `WHERE pk IN (…)`
  // as is. A forged failure whose pk the key's type cannot hold (here a quote-laden string
  // against a BIGINT key) made the retry step throw on every run: the job could never
  // finish. Nothing was written (parameters, not SQL): a denial of service. Fixed: such a
  // key is read alone, names no row, and its record is cleared. MariaDB converts it anyway.
  it("a forged failure whose pk is not of the key's type does not wedge the job", async () => {
    const { from, to } = await stoppedJob("att_failpk");
    await db.query(
      `INSERT INTO ${T.failures()} (job_id, pk, column_name, code, message, at) VALUES (?, ?, 'email', 'X', 'm', 'now')`,
      ["att_failpk", "3' OR '1'='1"],
    );
    let error: unknown;
    const report = await run("att_failpk", to, from).catch((e) => {
      error = e;
      return undefined;
    });
    expect(error).toBeUndefined();
    expect(await underOld(from)).toBe(0);
    expect(report?.pendingRanges).toBe(0);
  });

  it("a forged 'stopped' status is only a state: the resumed run marks the job done when it is", async () => {
    const { from, to } = await stoppedJob("att_stop");
    await db.query(`UPDATE ${T.jobs()} SET status = 'stopped' WHERE job_id = ?`, ["att_stop"]);
    const report = await run("att_stop", to, from);
    expect(report.complete).toBe(true);
    expect((await findJob(db, "att_stop", { stateTablePrefix: prefix }))?.status).toBe("done");
    expect(await underOld(from)).toBe(0);
  });
});
