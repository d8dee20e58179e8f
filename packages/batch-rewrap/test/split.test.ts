import { PGlite } from "@electric-sql/pglite";
import { pgliteAdapter, rewrapTable, type SqlAdapter } from "@envelope/batch-rewrap";
import { Envelope, type KeyProvider } from "@envelope/core";
import { afterAll, describe, expect, it } from "vitest";
import {
  contextOf,
  DATABASES,
  dropAll,
  instrumented,
  keyPair,
  openDb,
  seedTable,
  uniqueName,
  verifyAll,
} from "./support.js";

// Issue 12, item 7: a worker with nothing left to claim splits a large remaining range of
// another worker of the same run instead of idling.

const slow = (inner: KeyProvider, ms: number): KeyProvider => ({
  id: inner.id,
  keyRef: inner.keyRef,
  handles: (e) => inner.handles(e),
  wrap: (k, r) => inner.wrap(k, r),
  unwrap: async (e, r) => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return inner.unwrap(e, r);
  },
});

const targets = [
  ...DATABASES.map((d) => ({ name: d.name, open: () => openDb(d.url) })),
  { name: "pglite", open: async () => pgliteAdapter(new PGlite(), { owned: true }) },
];

describe.each(targets)("range splitting on $name", ({ open }) => {
  const opened: [SqlAdapter, string, string][] = [];
  afterAll(async () => {
    for (const [db, table, prefix] of opened) {
      await dropAll(db, table, prefix);
      await db.close();
    }
  });

  it("3 workers on a table planned as one range: the idle ones get split-off halves, every row once", async () => {
    const db = await open();
    const table = uniqueName("split");
    const prefix = `${table}_st`;
    opened.push([db, table, prefix]);
    const oldKey = keyPair().provider;
    const target = instrumented(keyPair().provider);
    await seedTable(db, table, 900, oldKey);
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: target,
      decrypt: [slow(oldKey, 2)],
      stateTablePrefix: prefix,
      apply: true,
      workers: 3,
      batchSize: 50,
      rangeSize: 1_000_000, // one range: without splitting, two workers would idle
      concurrency: 4,
      sampleSize: 0,
    });
    expect(report.complete).toBe(true);
    expect(report.total).toMatchObject({ scanned: 900, rewrapped: 900, conflicts: 0, failed: 0 });
    // One wrap per row: no row was done twice, none skipped.
    expect(target.counts.wrap).toBe(900);
    const ranges = await db.query(
      `SELECT COUNT(*) AS n FROM ${prefix}_ranges WHERE status = 'done'`,
    );
    expect(Number(ranges.rows[0]!.n)).toBeGreaterThanOrEqual(3);
    const workers = await db.query(
      `SELECT COUNT(DISTINCT worker) AS n FROM ${prefix}_checkpoints WHERE range_id >= 0`,
    );
    expect(Number(workers.rows[0]!.n)).toBe(3);
    expect((await verifyAll(db, table, target)).wrong).toEqual([]);
  }, 60_000);

  it("text primary keys: batched writes and splits by key order, every row once", async () => {
    const db = await open();
    const table = uniqueName("splittext");
    const prefix = `${table}_st`;
    opened.push([db, table, prefix]);
    const oldKey = keyPair().provider;
    const target = instrumented(keyPair().provider);
    const type = db.dialect === "mysql" ? "BLOB" : "BYTEA";
    await db.query(`CREATE TABLE ${table} (id VARCHAR(64) PRIMARY KEY, email ${type})`);
    const sealer = new Envelope({ encrypt: oldKey, cache: false });
    // Mixed case and lengths: key order is the database's, not numeric.
    const ids = Array.from({ length: 600 }, (_, i) => `${i % 2 ? "K" : "k"}-${(i * 7919) % 1000}`);
    for (let i = 0; i < ids.length; i += 100) {
      const slice = ids.slice(i, i + 100);
      const values = await Promise.all(
        slice.map((id) =>
          sealer.encrypt(`v-${id}`, { context: contextOf(table, "email", id), output: "binary" }),
        ),
      );
      await db.query(
        `INSERT INTO ${table} (id, email) VALUES ${slice.map(() => "(?, ?)").join(", ")}`,
        slice.flatMap((id, j) => [id, values[j]]),
      );
    }
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: target,
      decrypt: [slow(oldKey, 2)],
      stateTablePrefix: prefix,
      apply: true,
      workers: 3,
      batchSize: 40,
      rangeSize: 1_000_000,
      concurrency: 4,
      sampleSize: 0,
    });
    expect(report.complete).toBe(true);
    expect(report.total).toMatchObject({ scanned: 600, rewrapped: 600, conflicts: 0, failed: 0 });
    expect(target.counts.wrap).toBe(600);
    const ranges = await db.query(`SELECT COUNT(*) AS n FROM ${prefix}_ranges`);
    expect(Number(ranges.rows[0]!.n)).toBeGreaterThanOrEqual(3);
    const check = await verifyAll(db, table, target, (id) => `v-${id}`);
    expect(check).toEqual({ rows: 600, wrong: [] });
  }, 60_000);
});
