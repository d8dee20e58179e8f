import {
  connect,
  findJob,
  findUnfinishedJobs,
  type SqlAdapter,
  stopJob,
} from "@envelope/batch-rewrap";
import { Envelope, type KeyProvider } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DATABASES,
  dropAll,
  gated,
  keyPair,
  pausedAfterJobCheck,
  seedTable,
  smallJob,
  uniqueName,
} from "./support.js";

const targets = [...DATABASES, { name: "pglite", url: "pglite://memory" }];

describe.each(targets)("a job stopped by its signal ($name)", ({ url }) => {
  let db: SqlAdapter;
  const table = uniqueName("stopmark");
  const prefix = uniqueName("stopmark_st");
  const q = (name: string) => (db.dialect === "mysql" ? `\`${name}\`` : `"${name}"`);
  beforeAll(async () => {
    db = await connect(url);
  });
  afterAll(async () => {
    await dropAll(db, table, prefix);
    await db.close();
  });

  const run = (to: KeyProvider, from: KeyProvider, signal?: AbortSignal) =>
    smallJob(db, table, prefix, "stopmark", to, from, signal ? { signal } : {});
  const find = () => findUnfinishedJobs(db, { stateTablePrefix: prefix, table });

  it("commits the batches it had already read (their KMS work is not thrown away)", async () => {
    const from = keyPair().provider;
    const to = keyPair().provider;
    await seedTable(db, table, 80, from);
    let wraps = 0;
    const counted: KeyProvider = {
      ...to,
      handles: (e) => to.handles(e),
      unwrap: (e, r) => to.unwrap(e, r),
      wrap: (k, r) => {
        wraps++;
        return to.wrap(k, r);
      },
    };
    const slow = gated(counted, 21); // paused in the third batch, two more read ahead
    const abort = new AbortController();
    const stopped = run(slow.provider, from, abort.signal);
    await slow.paused;
    abort.abort();
    slow.release();
    const report = await stopped;
    expect(report.stopped).toBe(true);
    const reader = new Envelope({ encrypt: to, decrypt: [from], cache: false });
    const { rows } = await db.query(`SELECT email FROM ${table}`);
    const onTarget = rows.filter(
      (r) => reader.inspect(r.email as Buffer).entries[0]!.keyRef === to.keyRef,
    ).length;
    expect(onTarget).toBeGreaterThan(20);
    expect(report.run.rewrapped).toBe(onTarget);
    expect(wraps).toBe(onTarget); // every wrap made was written
    const resumed = await run(to, from);
    expect(resumed.complete).toBe(true);
    await dropAll(db, table, prefix);
  }, 30_000);

  it("is incomplete at once (no lease to wait out), running again while resumed, done after", async () => {
    const from = keyPair().provider;
    const to = keyPair().provider;
    await seedTable(db, table, 80, from);
    const slow = gated(to, 21); // two batches committed, paused in the third (two more read)
    const abort = new AbortController();
    const first = run(slow.provider, from, abort.signal);
    await slow.paused;
    expect((await find())[0]?.state).toBe("running");
    abort.abort();
    slow.release();
    expect((await first).stopped).toBe(true);
    // Within the default 120 s lease, yet incomplete: the process said it stopped.
    expect(await find()).toMatchObject([{ jobId: "stopmark", state: "incomplete" }]);
    expect((await findJob(db, "stopmark", { stateTablePrefix: prefix }))?.status).toBe("stopped");

    // Another process of the same job commits a batch after the stop: running again.
    // (A minute ahead of this process's clock: the database's runs on the same machine.)
    const beat = new Date(Date.now() + 60_000).toISOString();
    const { rows } = await db.query(
      `SELECT updated_at FROM ${q(`${prefix}_checkpoints`)} WHERE job_id = ? AND range_id = 0`,
      ["stopmark"],
    );
    await db.query(
      `UPDATE ${q(`${prefix}_checkpoints`)} SET updated_at = ? WHERE job_id = ? AND range_id = 0`,
      [beat, "stopmark"],
    );
    expect((await find())[0]?.state).toBe("running");
    await db.query(
      `UPDATE ${q(`${prefix}_checkpoints`)} SET updated_at = ? WHERE job_id = ? AND range_id = 0`,
      [rows[0]!.updated_at, "stopmark"],
    );
    expect((await find())[0]?.state).toBe("incomplete");

    // A resume marks it running from its start, before its first batch commits.
    const again = gated(to, 1);
    const resumed = run(again.provider, from);
    await again.paused;
    expect((await findJob(db, "stopmark", { stateTablePrefix: prefix }))?.status).toBe("running");
    expect((await find())[0]?.state).toBe("running");
    again.release();
    expect((await resumed).complete).toBe(true);
    expect(await find()).toEqual([]);
  }, 30_000);
});

// The CLI's second Ctrl-C: stopJob marks the job stopped and the process leaves without
// waiting for its batches. The mark waits for the batches holding the job row; those commit
// their checkpoints during that wait, and must not then read as progress made after it.
describe.each(DATABASES)("a job stopped by stopJob while a batch commits ($name)", ({ url }) => {
  let db: SqlAdapter;
  const table = uniqueName("stopquit");
  const prefix = uniqueName("stopquit_st");
  beforeAll(async () => {
    db = await connect(url);
  });
  afterAll(async () => {
    await dropAll(db, table, prefix);
    await db.close();
  });

  it("is incomplete once stopJob returns, though the batch in flight committed after it began", async () => {
    const from = keyPair().provider;
    const to = keyPair().provider;
    await seedTable(db, table, 40, from);
    const paused = pausedAfterJobCheck(db);
    const job = smallJob(paused.adapter, table, prefix, "stopquit", to, from);
    job.catch(() => {});
    await paused.paused; // the first batch holds the job row's shared lock
    // The process leaves as soon as the mark is made: no batch of it starts after.
    const stop = stopJob(paused.stopper, { jobId: "stopquit", stateTablePrefix: prefix });
    await new Promise((r) => setTimeout(r, 300)); // the mark waits for the batch's lock
    paused.release();
    await stop;
    await job.catch(() => {});
    const [found] = await findUnfinishedJobs(db, { stateTablePrefix: prefix, table });
    expect(found).toMatchObject({ jobId: "stopquit", state: "incomplete" });
    // The batch did commit: it is the job's progress, resumable from there.
    const { rows } = await db.query(
      `SELECT COALESCE(SUM(rewrapped), 0) AS n FROM ${prefix}_checkpoints WHERE job_id = ?`,
      ["stopquit"],
    );
    expect(Number(rows[0]!.n)).toBe(10);
    const resumed = await smallJob(db, table, prefix, "stopquit", to, from);
    expect(resumed.complete).toBe(true);
  }, 30_000);
});
