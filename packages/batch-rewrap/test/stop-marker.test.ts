import {
  connect,
  findJob,
  findUnfinishedJobs,
  rewrapTable,
  type SqlAdapter,
} from "@envelope/batch-rewrap";
import type { KeyProvider } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, dropAll, gated, keyPair, seedTable, uniqueName } from "./support.js";

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
    rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to,
      decrypt: [from],
      apply: true,
      batchSize: 10,
      concurrency: 1,
      sampleSize: 0,
      jobId: "stopmark",
      stateTablePrefix: prefix,
      ...(signal ? { signal } : {}),
    });
  const find = () => findUnfinishedJobs(db, { stateTablePrefix: prefix, table });

  it("is incomplete at once (no lease to wait out), running again while resumed, done after", async () => {
    const from = keyPair().provider;
    const to = keyPair().provider;
    await seedTable(db, table, 40, from);
    const slow = gated(to, 21); // two batches committed, paused in the third
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
