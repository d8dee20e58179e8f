import {
  type Clock,
  Limiter,
  planRangeCount,
  rewrapTable,
  type SqlAdapter,
} from "@envelope/batch-rewrap";
import { Envelope, type KeyProvider, ProviderError } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimKms } from "../bench/sim-kms.js";
import {
  contextOf,
  DATABASES,
  dropAll,
  keyPair,
  openDb,
  PG_URL,
  plaintextOf,
  seedTable,
  uniqueName,
  verifyAll,
} from "./support.js";

/**
 * A discrete-event clock: time stands still while work runs and jumps to the earliest
 * pending sleep once the event loop gets a turn. Concurrent sleepers share the time line
 * (they do not add up), so rates measured on it are what the limiter really allowed.
 */
class FakeClock implements Clock {
  t = 0;
  #timers: { at: number; resolve: () => void }[] = [];
  #scheduled = false;
  now = () => this.t;
  sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      this.#timers.push({ at: this.t + Math.max(0, ms), resolve });
      this.#schedule();
    });
  #schedule() {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#timers.length === 0) return;
      this.#timers.sort((a, b) => a.at - b.at);
      this.t = Math.max(this.t, this.#timers[0]!.at);
      const due = this.#timers.filter((x) => x.at <= this.t);
      this.#timers = this.#timers.filter((x) => x.at > this.t);
      for (const x of due) x.resolve();
      if (this.#timers.length > 0) this.#schedule();
    });
  }
}

const throttle = () =>
  new ProviderError("ENVELOPE_KMS_THROTTLED", "sim KMS: rate exceeded", {
    details: { provider: "sim-kms" },
  });

describe("planRangeCount (adaptive range size)", () => {
  it("aims at 4 ranges per worker, each between 4 batches and 10,000 rows", () => {
    expect(planRangeCount(20_000, 3, 500)).toBe(10); // ≥ 2,000 rows (4 batches) per range
    expect(planRangeCount(20_000, 1, 500)).toBe(4);
    expect(planRangeCount(4_000, 1, 500)).toBe(2);
    expect(planRangeCount(1_000, 8, 100)).toBe(2);
    expect(planRangeCount(1_000, 8, 500)).toBe(1);
    expect(planRangeCount(100, 4, 500)).toBe(1);
    expect(planRangeCount(0, 4, 500)).toBe(1);
    expect(planRangeCount(10_000_000, 2, 500)).toBe(1000); // ≤ 10,000 rows per range
  });
});

describe.each(DATABASES)("range sizing on $name", ({ url }) => {
  let db: SqlAdapter;
  const cleanup: [string, string][] = [];
  beforeAll(async () => {
    db = await openDb(url);
  });
  afterAll(async () => {
    for (const [table, prefix] of cleanup) await dropAll(db, table, prefix);
    await db.close();
  });
  const names = (label: string) => {
    const table = uniqueName(label);
    const prefix = `${table}_st`;
    cleanup.push([table, prefix]);
    return { table, prefix };
  };

  it("a 20,000-row table with 3 workers gives every worker at least one range", async () => {
    const { table, prefix } = names("ranges3");
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    await seedTable(db, table, 20_000, oldKey);
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: newKey,
      decrypt: [oldKey],
      apply: true,
      workers: 3,
      workerId: "w",
      stateTablePrefix: prefix,
    });
    expect(report.complete).toBe(true);
    expect(report.run.rewrapped).toBe(20_000);
    const ranges = await db.query(`SELECT COUNT(*) AS n FROM ${prefix}_ranges WHERE job_id = ?`, [
      report.jobId,
    ]);
    expect(Number(ranges.rows[0]!.n)).toBe(10);
    // Each range's checkpoint names the worker that did it: all three worked.
    const byWorker = await db.query(
      `SELECT worker, COUNT(*) AS n, SUM(scanned) AS scanned FROM ${prefix}_checkpoints WHERE job_id = ? AND range_id >= 0 AND scanned > 0 GROUP BY worker ORDER BY worker`,
      [report.jobId],
    );
    expect(byWorker.rows.map((r) => String(r.worker))).toEqual(["w:0", "w:1", "w:2"]);
    for (const r of byWorker.rows) expect(Number(r.n)).toBeGreaterThanOrEqual(1);
    expect((await verifyAll(db, table, newKey)).wrong).toEqual([]);
  }, 120_000);

  it("a resumed job keeps the ranges it planned, whatever the new worker count", async () => {
    const { table, prefix } = names("rangesresume");
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    await seedTable(db, table, 3000, oldKey);
    const base = {
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: newKey,
      decrypt: [oldKey],
      apply: true,
      batchSize: 100,
      stateTablePrefix: prefix,
    } as const;
    const stop = new AbortController();
    const first = await rewrapTable({
      ...base,
      workers: 2,
      signal: stop.signal,
      onProgress: () => stop.abort(),
    });
    expect(first.stopped).toBe(true);
    const plan = async () =>
      (
        await db.query(
          `SELECT range_id, lo, hi FROM ${prefix}_ranges WHERE job_id = ? ORDER BY range_id`,
          [first.jobId],
        )
      ).rows.map((r) => [
        Number(r.range_id),
        r.lo === null ? null : String(r.lo),
        r.hi === null ? null : String(r.hi),
      ]);
    const planned = await plan();
    expect(planned).toHaveLength(planRangeCount(3000, 2, 100)); // 7
    const second = await rewrapTable({ ...base, workers: 5 }); // a fresh plan would be 20 ranges
    expect(second.complete).toBe(true);
    expect(await plan()).toEqual(planned);
    expect((await verifyAll(db, table, newKey)).wrong).toEqual([]);
  }, 60_000);

  it("the next batch's KMS work runs while a batch commits", async () => {
    const { table, prefix } = names("pipeline");
    const kms = new SimKms({ latencyMs: 20 });
    await seedTable(db, table, 400, kms.key("old", { latency: false }));
    let inFlight = 0;
    const track =
      <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        inFlight++;
        try {
          return await fn(...args);
        } finally {
          inFlight--;
        }
      };
    const tracked = (p: KeyProvider): KeyProvider => ({
      id: p.id,
      keyRef: p.keyRef,
      handles: (e) => p.handles(e),
      wrap: track((k, r) => p.wrap(k, r)),
      unwrap: track((e, r) => p.unwrap(e, r)),
      rewrap: track((e, r) => p.rewrap!(e, r)),
    });
    const atCommit: number[] = [];
    const watched: SqlAdapter = {
      dialect: db.dialect,
      name: db.name,
      sessions: db.sessions,
      query: (sql, params) => db.query(sql, params),
      session: () => db.session(),
      close: () => db.close(),
      transaction: (fn) => {
        atCommit.push(inFlight);
        return db.transaction(fn);
      },
    };
    const report = await rewrapTable({
      db: watched,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: tracked(kms.key("new")),
      decrypt: [tracked(kms.key("old"))],
      apply: true,
      batchSize: 50,
      concurrency: 8,
      rangeSize: 1000, // one range
      sampleSize: 0,
      stateTablePrefix: prefix,
    });
    expect(report.complete).toBe(true);
    expect(report.run.rewrapped).toBe(400);
    // One range of 8 batches: each commit but the last starts with the next batch's KMS calls in flight.
    expect(atCommit.filter((n) => n > 0).length).toBeGreaterThanOrEqual(6);
  }, 60_000);

  it("rangeSize fixes the size: 2,000 rows, rangeSize 500 → 4 ranges", async () => {
    const { table, prefix } = names("rangesize");
    const oldKey = keyPair().provider;
    await seedTable(db, table, 2000, oldKey);
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: keyPair().provider,
      decrypt: [oldKey],
      apply: true,
      rangeSize: 500,
      stateTablePrefix: prefix,
    });
    expect(report.complete).toBe(true);
    const ranges = await db.query(`SELECT COUNT(*) AS n FROM ${prefix}_ranges WHERE job_id = ?`, [
      report.jobId,
    ]);
    expect(Number(ranges.rows[0]!.n)).toBe(4);
    await expect(
      rewrapTable({
        db,
        table,
        primaryKey: "id",
        columns: ["email"],
        to: keyPair().provider,
        decrypt: [oldKey],
        apply: true,
        rangeSize: 0,
        stateTablePrefix: prefix,
      }),
    ).rejects.toMatchObject({ code: "ENVELOPE_BAD_CONFIG" });
  }, 60_000);
});

describe("Limiter (AIMD)", () => {
  it("paces at the configured rate on its clock", async () => {
    const clock = new FakeClock();
    const limiter = new Limiter({ perSecond: 100, burst: 1 }, clock);
    await Promise.all(Array.from({ length: 201 }, () => limiter.take()));
    expect(limiter.calls).toBe(201);
    expect(clock.t).toBeCloseTo(2000, 0); // 200 intervals of 10 ms
  });

  it("backs off on a throttle (once per burst), grows back to the ceiling and never above", () => {
    const clock = new FakeClock();
    const limiter = new Limiter({ perSecond: 1000, burst: 1000 }, clock);
    expect(limiter.rate).toBe(1000);
    for (let i = 0; i < 1000; i++) void limiter.take(); // 1000 calls sent in this second (the burst)
    expect(limiter.calls).toBe(1000);
    limiter.onThrottle();
    expect(limiter.rate).toBeCloseTo(700, 5);
    limiter.onThrottle(); // same burst: no second cut
    limiter.onThrottle();
    expect(limiter.rate).toBeCloseTo(700, 5);
    expect(limiter.throttled).toBe(3);
    expect(limiter.decreases).toBe(1);
    let steps = 0;
    let last = limiter.rate;
    while (limiter.rate < 1000 && steps < 1_000_000) {
      limiter.onSuccess();
      expect(limiter.rate).toBeGreaterThanOrEqual(last);
      last = limiter.rate;
      steps++;
    }
    expect(limiter.rate).toBe(1000);
    // ≈ (1000² − 700²) / (2 × 5% × 1000) successes: about 5 s of calls at these rates.
    expect(steps).toBeGreaterThan(4000);
    expect(steps).toBeLessThan(6000);
    limiter.onSuccess();
    expect(limiter.rate).toBe(1000);
  });

  it("refuses a bad limit with a typed error", () => {
    for (const bad of [0, -1, Number.NaN, { perSecond: 10, burst: 0 }])
      expect(() => new Limiter(bad)).toThrow(
        expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }),
      );
  });

  it("without a ceiling, backs off from the rate actually sent", async () => {
    const clock = new FakeClock();
    const limiter = new Limiter(undefined, clock);
    expect(limiter.rate).toBe(Number.POSITIVE_INFINITY);
    for (let i = 0; i < 400; i++) {
      await limiter.take();
      clock.t += 2.5; // 400 calls in one second
    }
    limiter.onThrottle();
    expect(limiter.rate).toBeCloseTo(280, 5);
  });
});

describe("adaptive rate against a throttling KMS (PostgreSQL)", () => {
  let db: SqlAdapter;
  const cleanup: [string, string][] = [];
  beforeAll(async () => {
    db = await openDb(PG_URL);
  });
  afterAll(async () => {
    for (const [table, prefix] of cleanup) await dropAll(db, table, prefix);
    await db.close();
  });

  it("converges below the KMS's rate, fails no value for throttling, and grows back after", async () => {
    const clock = new FakeClock();
    const QUOTA = 100; // calls per (fake) second the KMS accepts
    let quotaOn = true;
    let window = -1;
    let inWindow = 0;
    const rejected: number[] = []; // fake second of each rejection
    const accepted: number[] = []; // fake second of each accepted call
    const kms = new SimKms({
      latencyMs: 0,
      before: () => {
        const second = Math.floor(clock.now() / 1000);
        if (second !== window) {
          window = second;
          inWindow = 0;
        }
        if (quotaOn && inWindow >= QUOTA) {
          rejected.push(second);
          throw throttle();
        }
        inWindow++;
        if (quotaOn) accepted.push(second);
      },
    });
    const seed = async (table: string, rows: number) => {
      await db.query(`DROP TABLE IF EXISTS ${table}`);
      await db.query(`CREATE TABLE ${table} (id BIGINT PRIMARY KEY, email BYTEA)`);
      const sealer = new Envelope({ encrypt: kms.key("old", { latency: false }), cache: false });
      const ids = Array.from({ length: rows }, (_, i) => i + 1);
      const values = await Promise.all(
        ids.map((id) =>
          sealer.encrypt(plaintextOf(id), {
            context: contextOf(table, "email", id),
            output: "binary",
          }),
        ),
      );
      for (let i = 0; i < rows; i += 200)
        await db.query(
          `INSERT INTO ${table} (id, email) VALUES ${ids
            .slice(i, i + 200)
            .map(() => "(?, ?)")
            .join(", ")}`,
          ids.slice(i, i + 200).flatMap((id) => [id, values[id - 1]]),
        );
    };
    const limiter = new Limiter(1000, clock); // the configured ceiling: 10 × the real quota
    const job = async (table: string) => {
      const prefix = `${table}_st`;
      cleanup.push([table, prefix]);
      // 900 values × 2 calls at 100 calls/s: a job of 18+ fake seconds, long enough to converge.
      await seed(table, 900);
      return rewrapTable({
        db,
        table,
        primaryKey: "id",
        columns: ["email"],
        to: kms.key("new"),
        decrypt: [kms.key("old")],
        apply: true,
        concurrency: 16,
        batchSize: 100,
        rateLimit: limiter,
        stateTablePrefix: prefix,
      });
    };

    const first = await job(uniqueName("aimd1"));
    expect(first.complete).toBe(true);
    expect(first.failures).toEqual({});
    expect(first.run.rewrapped).toBe(900);
    expect(first.kmsThrottled).toBe(rejected.length);
    expect(first.kmsThrottled).toBeGreaterThan(0); // it did hit the quota…
    // …backed off from 10 × the quota in its first seconds (one cut per second), then
    // stayed under it: once converged (from the 10th second on), refused calls are a small
    // share, and the quota is used (≥ 60% of it per second on average).
    const end = Math.max(...accepted, ...rejected);
    expect(end).toBeGreaterThan(15);
    const late = (xs: number[]) => xs.filter((x) => x >= 10 && x < end).length;
    expect(late(rejected)).toBeLessThan(late(accepted) * 0.03);
    expect(late(accepted) / (end - 10)).toBeGreaterThan(QUOTA * 0.6);
    expect(limiter.rate).toBeLessThan(QUOTA * 1.2);
    expect(new Set(rejected).size).toBeLessThanOrEqual(limiter.decreases + 1);
    // Native rewrap + verifyBody: rewrap, then unwrap the new entry (its proof, whose key
    // also checks the body) = 2, plus the calls the KMS refused while the rate came down.
    expect(first.kmsCallsPerValue).toBeGreaterThanOrEqual(2);
    expect(first.kmsCallsPerValue).toBeLessThan(2.5);

    // The KMS stops throttling: the same limiter's rate grows back above the old quota.
    quotaOn = false;
    const before = limiter.rate;
    const second = await job(uniqueName("aimd2"));
    expect(second.complete).toBe(true);
    expect(second.kmsThrottled).toBe(0);
    expect(second.kmsCallsPerValue).toBe(2);
    expect(limiter.rate).toBeGreaterThan(before);
    expect(limiter.rate).toBeGreaterThan(QUOTA * 1.2);
    expect(limiter.rate).toBeLessThanOrEqual(1000);
  }, 60_000);
});
