import { connect, rewrapTable, type SqlAdapter } from "@envelope/batch-rewrap";
import { EnvelopeError } from "@envelope/core";
import { afterAll, describe, expect, it } from "vitest";
import { DATABASES, dropAll, keyPair, seedTable, uniqueName, verifyAll } from "./support.js";

// Each worker keeps one pooled connection for its range claim. With the old fixed pool of
// 8 connections, `workers: 8` left no connection to read or commit with: the job hung.
describe.each(DATABASES)("the pool must fit the workers, on $name", ({ url }) => {
  const open: SqlAdapter[] = [];
  const cleanup: [SqlAdapter, string, string][] = [];
  afterAll(async () => {
    for (const [db, table, prefix] of cleanup) await dropAll(db, table, prefix);
    for (const db of open) await db.close();
  });
  const setup = async (maxConnections: number, rows: number) => {
    const db = await connect(url, { maxConnections });
    open.push(db);
    const table = uniqueName("pool");
    const prefix = `${table}_st`;
    cleanup.push([db, table, prefix]);
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    await seedTable(db, table, rows, oldKey);
    const job = (workers: number) =>
      rewrapTable({
        db,
        table,
        primaryKey: "id",
        columns: ["email"],
        to: newKey,
        decrypt: [oldKey],
        apply: true,
        workers,
        rangeSize: 200,
        batchSize: 50,
        stateTablePrefix: prefix,
      });
    return { db, table, prefix, newKey, job };
  };

  it("reports the pool size it was given", async () => {
    const { db } = await setup(5, 1);
    expect(db.maxConnections).toBe(5);
  });

  it("workers ≥ connections is refused (ENVELOPE_BAD_CONFIG) before anything is written", async () => {
    const { db, prefix, job } = await setup(4, 1000);
    const error = await job(4).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(EnvelopeError.isInstance(error) && error.code).toBe("ENVELOPE_BAD_CONFIG");
    expect((error as EnvelopeError).message).toContain("maxConnections");
    // No state table was created.
    const tables = await db.query(
      db.dialect === "postgres"
        ? "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name LIKE ?"
        : "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE ?",
      [`${prefix}%`],
    );
    expect(Number(tables.rows[0]!.n)).toBe(0);
  });

  it("workers + 1 connections complete the job (every value moved)", async () => {
    const { db, table, newKey, job } = await setup(5, 1000);
    const report = await job(4);
    expect(report.complete).toBe(true);
    expect(report.run.rewrapped).toBe(1000);
    expect((await verifyAll(db, table, newKey)).wrong).toEqual([]);
  }, 60_000);
});
