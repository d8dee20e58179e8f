import {
  connect,
  findUnfinishedJobs,
  type JobReport,
  rewrapTable,
  type SqlAdapter,
} from "@envelope/batch-rewrap";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { DATABASES, dropAll, gated, keyPair, seedTable, uniqueName } from "./support.js";

const HOURS = 3 * 3600_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The process clock `offsetMs` off the real one (and still moving), until `vi.useRealTimers()`. */
function skewClock(offsetMs: number): void {
  vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
  vi.setSystemTime(Date.now() + offsetMs);
}

// PGlite runs inside the worker's process and reads that process's clock: there is no
// second clock to disagree with, so it runs the same checks without a skew.
const targets = [
  ...DATABASES.map((d) => ({ ...d, skews: [-HOURS, +HOURS] })),
  { name: "pglite", url: "pglite://memory", skews: [0] },
];
const label = (skew: number) =>
  skew === 0 ? "on time" : `${Math.abs(skew) / 3600_000} hours ${skew < 0 ? "behind" : "ahead"}`;

describe.each(targets)("job heartbeats use the database clock only ($name)", ({ url, skews }) => {
  let db: SqlAdapter;
  const table = uniqueName("jg_clock");
  const prefix = uniqueName("jg_clock_st");
  beforeAll(async () => {
    db = await connect(url);
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(async () => {
    vi.useRealTimers();
    await dropAll(db, table, prefix);
    await db.close();
  });

  it.each(skews.map((skew) => [label(skew), skew] as const))(
    "a worker whose clock is %s is running while it runs and incomplete once stopped, whatever the reader's clock",
    async (_label, skew) => {
      const from = keyPair().provider;
      const to = keyPair().provider;
      await seedTable(db, table, 80, from);
      const jobId = `clock_${skew > 0 ? "ahead" : skew < 0 ? "behind" : "on_time"}`;
      const slow = gated(to, 21); // two batches of 10 committed, paused in the third (two more read: 50 of 80 done at the stop)
      const abort = new AbortController();
      if (skew !== 0) skewClock(skew);
      let job: Promise<JobReport> | undefined;
      try {
        job = rewrapTable({
          db,
          table,
          primaryKey: "id",
          columns: ["email"],
          to: slow.provider,
          decrypt: [from],
          apply: true,
          batchSize: 10,
          concurrency: 1,
          sampleSize: 0,
          jobId,
          stateTablePrefix: prefix,
          signal: abort.signal,
        });
        await slow.paused;
        vi.useRealTimers();
        const find = (staleAfterSeconds: number) =>
          findUnfinishedJobs(db, { stateTablePrefix: prefix, table, staleAfterSeconds });

        // Running: judged so by a reader on time, and by readers hours off either way.
        const [running] = await find(120);
        expect(running).toMatchObject({ jobId, state: "running" });
        expect(running!.idleSeconds).toBeLessThan(60);
        // The format earlier versions wrote, so old and new rows compare as strings.
        expect(running!.lastProgressAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        for (const readerSkew of skew === 0 ? [] : [-HOURS, +HOURS]) {
          skewClock(readerSkew);
          expect((await find(120))[0]?.state).toBe("running");
          vi.useRealTimers();
        }

        // Stopped by its signal: marked stopped, incomplete at once whatever the lease.
        abort.abort();
        slow.release();
        expect((await job).complete).toBe(false);
        expect((await find(120))[0]?.state).toBe("incomplete");
        // As a SIGKILL leaves it (no stop marked): incomplete once the lease has passed.
        await db.query(`UPDATE ${prefix}_jobs SET status = 'running' WHERE job_id = ?`, [jobId]);
        expect((await find(120))[0]?.state).toBe("running");
        await sleep(1500);
        const [stopped] = await find(1);
        expect(stopped).toMatchObject({ jobId, state: "incomplete" });
        expect(stopped!.idleSeconds).toBeGreaterThanOrEqual(1);
        expect(stopped!.idleSeconds).toBeLessThan(60);
        if (skew !== 0) skewClock(-skew);
        expect((await find(1))[0]?.state).toBe("incomplete");
        expect((await find(120))[0]?.state).toBe("running");
      } finally {
        vi.useRealTimers();
        slow.release();
        abort.abort();
        await job?.catch(() => {});
      }
    },
    30_000,
  );

  it("reads state rows written as ISO text by earlier versions, aged by the database clock", async () => {
    const t = (name: string) => (db.dialect === "mysql" ? `\`${name}\`` : `"${name}"`);
    const { rows } = await db.query(`SELECT job_id FROM ${t(`${prefix}_jobs`)} ORDER BY job_id`);
    expect(rows.length).toBeGreaterThan(0);
    // An earlier version wrote the worker's own clock; on one machine that is the DB's.
    const tenSecondsAgo = new Date(Date.now() - 10_000).toISOString();
    await db.query(`UPDATE ${t(`${prefix}_jobs`)} SET updated_at = ?`, [tenSecondsAgo]);
    await db.query(`UPDATE ${t(`${prefix}_checkpoints`)} SET updated_at = ?`, [tenSecondsAgo]);
    const find = (staleAfterSeconds: number) =>
      findUnfinishedJobs(db, { stateTablePrefix: prefix, table, staleAfterSeconds });
    for (const job of await find(60)) {
      expect(job.state).toBe("running");
      expect(job.lastProgressAt).toBe(tenSecondsAgo);
      expect(job.idleSeconds).toBeGreaterThanOrEqual(9);
      expect(job.idleSeconds).toBeLessThan(30);
    }
    expect((await find(5)).map((j) => j.state)).toEqual(rows.map(() => "incomplete"));
  });
});
