import { connect, delegatingAdapter, type SqlAdapter } from "@envelope/batch-rewrap";
import { Envelope, type KeyProvider } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  contextOf,
  DATABASES,
  dropAll,
  gated,
  keyPair,
  plaintextOf,
  seedTable,
  smallJob,
  uniqueName,
  verifyAll,
} from "./support.js";

const targets = [...DATABASES, { name: "pglite", url: "pglite://memory" }];

describe.each(targets)(
  "a resumed job and values written behind its checkpoints ($name)",
  ({ url }) => {
    let db: SqlAdapter;
    const table = uniqueName("sweep");
    const prefix = uniqueName("sweep_st");
    beforeAll(async () => {
      db = await connect(url);
    });
    afterAll(async () => {
      await dropAll(db, table, prefix);
      await db.close();
    });

    const run = (to: KeyProvider, from: KeyProvider, signal?: AbortSignal) =>
      smallJob(db, table, prefix, "sweep", to, from, signal ? { signal } : {});

    it("the resumed run moves them too (what the dry run counted), and says it went over the table again", async () => {
      const old = keyPair().provider;
      const target = keyPair().provider;
      await seedTable(db, table, 60, old);
      // Stopped after two batches (rows 1–20 done).
      const slow = gated(target, 21);
      const abort = new AbortController();
      const first = run(slow.provider, old, abort.signal);
      await slow.paused;
      abort.abort();
      slow.release();
      expect((await first).stopped).toBe(true);

      // While the job is stopped, an app instance still on the old config writes rows 1–5
      // again: behind the job's checkpoint.
      const stale = new Envelope({ encrypt: old, cache: false });
      for (let id = 1; id <= 5; id++) {
        const value = await stale.encrypt(plaintextOf(id), {
          context: contextOf(table, "email", id),
          output: "binary",
        });
        await db.query(`UPDATE ${table} SET email = ? WHERE id = ?`, [value, id]);
      }
      const dry = await smallJob(db, table, prefix, "sweep", target, old, { apply: false });
      const announced = dry.wouldRewrite!;
      expect(announced).toBeGreaterThanOrEqual(5);

      const resumed = await run(target, old);
      expect(resumed).toMatchObject({ complete: true, stopped: false, swept: { rewrapped: 5 } });
      expect(resumed.run.rewrapped).toBe(announced);
      // The whole job: every row read once before the sweep; 60 moves plus the sweep's 5.
      expect(resumed.total).toMatchObject({ scanned: 60, rewrapped: 65 });
      expect(await verifyAll(db, table, target)).toEqual({ rows: 60, wrong: [] });

      // A run that creates its job, or finds it finished, makes no second pass.
      const again = await run(target, old);
      expect(again).toMatchObject({ complete: true, reopened: true });
      expect(again.swept).toBeUndefined();
      expect(again.run.rewrapped).toBe(0);
    }, 30_000);

    it("values written under the old key behind the checkpoints of a running job (two workers) make the run say it is not complete, and the next run moves them", async () => {
      const old = keyPair().provider;
      const target = keyPair().provider;
      await seedTable(db, table, 60, old);
      // Two workers on three ranges of 20 rows, held at their 31st wrap.
      const slow = gated(target, 31);
      const running = smallJob(db, table, prefix, "behind", slow.provider, old, {
        workers: 2,
        rangeSize: 20,
      });
      await slow.paused;
      // Five rows behind a checkpoint: a batch the job has committed.
      let behind: number[] = [];
      for (let tries = 0; behind.length === 0 && tries < 200; tries++) {
        const { rows } = await db.query(
          `SELECT last_pk FROM ${prefix}_checkpoints WHERE job_id = ? AND last_pk IS NOT NULL`,
          ["behind"],
        );
        const last = Math.max(0, ...rows.map((r) => Number(r.last_pk)));
        if (last >= 5) behind = [last - 4, last - 3, last - 2, last - 1, last];
        else await new Promise((r) => setTimeout(r, 20));
      }
      expect(behind).toHaveLength(5);
      // An app instance still on the old config writes them again while the job runs.
      const stale = new Envelope({ encrypt: old, cache: false });
      for (const id of behind) {
        const value = await stale.encrypt(plaintextOf(id), {
          context: contextOf(table, "email", id),
          output: "binary",
        });
        await db.query(`UPDATE ${table} SET email = ? WHERE id = ?`, [value, id]);
      }
      slow.release();
      const report = await running;
      // By its state tables the job is done; the column says otherwise, and so does the run.
      expect(report).toMatchObject({
        complete: false,
        stopped: false,
        pendingRanges: 0,
        failures: {},
        verified: { scanned: 60, remaining: 5 },
      });
      // The next run goes over the whole table again (every range is done) and moves them.
      const again = smallJob(db, table, prefix, "behind", target, old, { workers: 2 });
      expect(await again).toMatchObject({
        complete: true,
        reopened: true,
        verified: { scanned: 60, remaining: 0 },
      });
      expect((await again).run.rewrapped).toBe(5);
      expect(await verifyAll(db, table, target)).toEqual({ rows: 60, wrong: [] });
    }, 30_000);

    it("a stop during the read before complete leaves the run stopped, not complete on a part of the table", async () => {
      const old = keyPair().provider;
      const target = keyPair().provider;
      await seedTable(db, table, 60, old);
      // Aborts when the table is read from its start (no WHERE) once every range of the job
      // is done: the check's first page. The page is still read; the check then stops.
      const abort = new AbortController();
      let aborted = false;
      const rangesDone = async () => {
        const { rows } = await db
          .query(
            `SELECT COUNT(*) AS n, SUM(CASE WHEN status = 'done' THEN 0 ELSE 1 END) AS pending FROM ${prefix}_ranges WHERE job_id = ?`,
            ["stopcheck"],
          )
          .catch(() => ({ rows: [] as Record<string, unknown>[] }));
        return Number(rows[0]?.n ?? 0) > 0 && Number(rows[0]?.pending ?? 1) === 0;
      };
      const watched = delegatingAdapter(db, {
        transaction: (fn) => db.transaction(fn),
        query: async (sql, params) => {
          if (
            !aborted &&
            new RegExp(`FROM [\`"]?${table}[\`"]?\\s+ORDER BY`).test(sql) &&
            (await rangesDone())
          ) {
            aborted = true;
            abort.abort();
          }
          return db.query(sql, params);
        },
      });
      const report = await smallJob(watched, table, prefix, "stopcheck", target, old, {
        signal: abort.signal,
      });
      expect(aborted).toBe(true);
      expect(report).toMatchObject({ stopped: true, complete: false, pendingRanges: 0 });
      expect(report.verified).toBeUndefined();
      // The next run checks again and says complete.
      const again = await smallJob(db, table, prefix, "stopcheck", target, old);
      expect(again).toMatchObject({ complete: true, verified: { scanned: 60, remaining: 0 } });
    }, 30_000);
  },
);
