import { rewrapTable, type SqlAdapter } from "@envelope/batch-rewrap";
import { Envelope, type KeyProvider } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimKms } from "../bench/sim-kms.js";
import {
  contextOf,
  DATABASES,
  dropAll,
  instrumented,
  keyPair,
  openDb,
  plaintextOf,
  seedTable,
  uniqueName,
  verifyAll,
} from "./support.js";

// Issue 12, items 6 and 8: one multi-row compare-and-swap UPDATE per batch, and KMS slots
// shared across a worker's batches. These tests pin what must not change with them.

describe.each(DATABASES)("batched writes on $name", ({ url }) => {
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

  it("rows that change different columns, in one batch, are each written exactly", async () => {
    const { table, prefix } = names("cols");
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    const type = db.dialect === "mysql" ? "BLOB" : "BYTEA";
    await db.query(`CREATE TABLE ${table} (id BIGINT PRIMARY KEY, email ${type}, phone TEXT)`);
    const seal = (key: KeyProvider, column: string, id: number, output: "binary" | "text") =>
      new Envelope({ encrypt: key, cache: false }).encrypt(`${column}-${id}`, {
        context: contextOf(table, column, id),
        output: output as "binary",
      });
    // Row i: email old unless i % 3 == 1, phone old unless i % 3 == 2 (three column sets).
    for (let id = 1; id <= 90; id++) {
      const email = await seal(id % 3 === 1 ? newKey : oldKey, "email", id, "binary");
      const phone = await seal(id % 3 === 2 ? newKey : oldKey, "phone", id, "text");
      await db.query(`INSERT INTO ${table} (id, email, phone) VALUES (?, ?, ?)`, [
        id,
        email,
        phone,
      ]);
    }
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email", "phone"],
      to: newKey,
      decrypt: [oldKey],
      apply: true,
      batchSize: 90,
      stateTablePrefix: prefix,
    });
    expect(report.complete).toBe(true);
    expect(report.run).toMatchObject({ rewrapped: 120, skipped: 60, conflicts: 0, failed: 0 });
    const reader = new Envelope({ encrypt: newKey, cache: false });
    const { rows } = await db.query(`SELECT id, email, phone FROM ${table} ORDER BY id`);
    for (const row of rows) {
      for (const column of ["email", "phone"]) {
        const value = row[column] as Buffer | string;
        expect(reader.inspect(value).entries.map((e) => e.keyRef)).toEqual([newKey.keyRef]);
        const text = await reader.decrypt(value, {
          context: contextOf(table, column, String(row.id)),
          as: "text",
        });
        expect(text).toBe(`${column}-${row.id}`);
      }
    }
  });

  it("a batch larger than one statement's limits (rows and bytes) is split and fully written", async () => {
    const { table, prefix } = names("big");
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    const type = db.dialect === "mysql" ? "LONGBLOB" : "BYTEA";
    await db.query(`CREATE TABLE ${table} (id BIGINT PRIMARY KEY, email ${type})`);
    const sealer = new Envelope({ encrypt: oldKey, cache: false });
    // 1,100 small rows (more than 500 per statement) and 40 of 256 KiB: 40 × 2 × 256 KiB
    // sent as hex by MySQL is 40 MiB, over MariaDB's 16 MiB packet if it were one statement.
    const big = (id: number) => (id > 1100 ? `${plaintextOf(id)}${"x".repeat(256 * 1024)}` : "");
    const text = (id: number) => (id > 1100 ? big(id) : plaintextOf(id));
    for (let start = 1; start <= 1140; start += 20) {
      const ids = Array.from({ length: 20 }, (_, i) => start + i);
      const values = await Promise.all(
        ids.map((id) =>
          sealer.encrypt(text(id), { context: contextOf(table, "email", id), output: "binary" }),
        ),
      );
      await db.query(
        `INSERT INTO ${table} (id, email) VALUES ${ids.map(() => "(?, ?)").join(", ")}`,
        ids.flatMap((id, i) => [id, values[i]]),
      );
    }
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: newKey,
      decrypt: [oldKey],
      apply: true,
      batchSize: 1200,
      concurrency: 16,
      rangeSize: 100_000,
      stateTablePrefix: prefix,
    });
    expect(report.complete).toBe(true);
    expect(report.run).toMatchObject({ rewrapped: 1140, conflicts: 0, failed: 0 });
    const check = await verifyAll(db, table, newKey, (id) => text(Number(id)));
    expect(check.rows).toBe(1140);
    expect(check.wrong).toEqual([]);
  }, 120_000);

  it("an application write that only changes letter case is a conflict, not overwritten (text column)", async () => {
    const { table, prefix } = names("case");
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    await seedTable(db, table, 60, oldKey, "text");
    // While the job works row 10, the application stores a value that equals the old one
    // under a case-insensitive collation (MySQL's default): a text compare would match.
    const { rows } = await db.query(`SELECT email FROM ${table} WHERE id = 10`);
    const original = String(rows[0]!.email);
    const i = [...original].findIndex((c, k) => k > 10 && /[a-z]/.test(c));
    const variant = original.slice(0, i) + original[i]!.toUpperCase() + original.slice(i + 1);
    const target = instrumented(newKey, {
      beforeWrap: async ({ context }) => {
        if (context.id === "10")
          await db.query(`UPDATE ${table} SET email = ? WHERE id = 10`, [variant]);
      },
    });
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: target,
      decrypt: [oldKey],
      apply: true,
      sampleSize: 0,
      stateTablePrefix: prefix,
    });
    expect(report.total!.conflicts).toBe(1);
    // The application's value is kept as it wrote it (the job then fails on it: not ours to fix).
    const after = await db.query(`SELECT email FROM ${table} WHERE id = 10`);
    expect(String(after.rows[0]!.email)).toBe(variant);
    expect(report.run.rewrapped).toBe(59);
  });

  it("KMS slots pass from one batch to the next with no gap, never more than `concurrency`", async () => {
    const { table, prefix } = names("slots");
    const kms = new SimKms({ latencyMs: 15 });
    await seedTable(db, table, 300, kms.key("old", { latency: false }));
    let inFlight = 0;
    let most = 0;
    let emptied = 0; // times the KMS went idle during the job
    const track =
      <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        most = Math.max(most, ++inFlight);
        try {
          return await fn(...args);
        } finally {
          if (--inFlight === 0) emptied++;
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
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: tracked(kms.key("new")),
      decrypt: [tracked(kms.key("old"))],
      apply: true,
      batchSize: 30,
      concurrency: 8,
      rangeSize: 1000, // one range of 10 batches
      sampleSize: 0,
      stateTablePrefix: prefix,
    });
    expect(report.complete).toBe(true);
    expect(report.run.rewrapped).toBe(300);
    expect(most).toBe(8);
    // Idle once, at the very end: never between batches (each batch read and queued early).
    expect(emptied).toBe(1);
  }, 60_000);

  it("two batches are read and in the KMS slots ahead of the one committing", async () => {
    const { table, prefix } = names("readahead");
    // 20 ms a wrap: a batch's reads ahead have ~140 ms to land before it commits, even
    // with the database slow (at 5 ms, 3 of 8 commits saw them in a loaded full run).
    const kms = new SimKms({ latencyMs: 20 });
    await seedTable(db, table, 400, kms.key("old", { latency: false }));
    let read = 0; // batch reads that returned rows
    let commits = 0;
    const ahead: number[] = []; // batches read beyond the one committing, at each commit
    const watched: SqlAdapter = {
      ...db,
      session: () => db.session(),
      close: () => db.close(),
      query: async (sql, params) => {
        const result = await db.query(sql, params);
        const batchRead =
          sql.startsWith("SELECT") && sql.includes("ORDER BY") && !sql.includes(prefix);
        if (batchRead && result.rows.length > 0) read++;
        return result;
      },
      transaction: (fn) => {
        // Batch commits only (the job's setup runs a transaction before the first read).
        if (read > 0) ahead.push(read - ++commits);
        return db.transaction(fn);
      },
    };
    const report = await rewrapTable({
      db: watched,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: kms.key("new"),
      decrypt: [kms.key("old", { latency: false })],
      apply: true,
      batchSize: 50,
      concurrency: 8,
      rangeSize: 1000, // one range of 8 batches
      sampleSize: 0,
      stateTablePrefix: prefix,
    });
    expect(report.complete).toBe(true);
    expect(report.run.rewrapped).toBe(400);
    // Before: one batch ahead at most (the next read began only after a commit).
    expect(Math.max(...ahead)).toBe(2);
    expect(ahead.filter((n) => n >= 2).length).toBeGreaterThanOrEqual(5);
  }, 60_000);

  it("text primary keys: one compare-and-swap statement per batch, conflicts still caught", async () => {
    const { table, prefix } = names("textpk");
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    const type = db.dialect === "mysql" ? "BLOB" : "BYTEA";
    await db.query(`CREATE TABLE ${table} (id VARCHAR(40) PRIMARY KEY, email ${type})`);
    const sealer = new Envelope({ encrypt: oldKey, cache: false });
    const keyOf = (n: number) => `user-${String(n).padStart(3, "0")}`;
    for (let n = 1; n <= 120; n++) {
      const value = await sealer.encrypt(plaintextOf(keyOf(n)), {
        context: contextOf(table, "email", keyOf(n)),
        output: "binary",
      });
      await db.query(`INSERT INTO ${table} (id, email) VALUES (?, ?)`, [keyOf(n), value]);
    }
    // While the job works user-007, the application rewrites it (under the old key).
    const appValue = await sealer.encrypt("changed@example.com", {
      context: contextOf(table, "email", keyOf(7)),
      output: "binary",
    });
    let written = false; // once: the redo of the row (under its row lock) must not wait on it
    const target = instrumented(newKey, {
      beforeWrap: async ({ context }) => {
        if (context.id !== keyOf(7) || written) return;
        written = true;
        await db.query(`UPDATE ${table} SET email = ? WHERE id = ?`, [appValue, keyOf(7)]);
      },
    });
    const updates: number[] = [];
    const watched: SqlAdapter = {
      ...db,
      session: () => db.session(),
      close: () => db.close(),
      query: (sql, params) => db.query(sql, params),
      transaction: (fn) =>
        db.transaction((tx) =>
          fn({
            query: (sql, params) => {
              if (sql.startsWith("UPDATE") && sql.includes(table) && !sql.includes(prefix))
                updates.push(params?.length ?? 0);
              return tx.query(sql, params);
            },
          }),
        ),
    };
    const report = await rewrapTable({
      db: watched,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: target,
      decrypt: [oldKey],
      apply: true,
      batchSize: 120,
      sampleSize: 0,
      stateTablePrefix: prefix,
    });
    expect(report.complete).toBe(true);
    expect(report.run).toMatchObject({ rewrapped: 120, conflicts: 1, failed: 0 });
    const check = await verifyAll(db, table, newKey, (id) =>
      id === keyOf(7) ? "changed@example.com" : plaintextOf(id),
    );
    expect(check.rows).toBe(120);
    expect(check.wrong).toEqual([]);
    // PostgreSQL: the batch goes as arrays (key, offsets and lengths) and two blobs, not 3 parameters per row.
    if (db.dialect === "postgres") expect(updates[0]).toBe(7);
  }, 60_000);

  it("PostgreSQL key types written as arrays (integer, bigint, numeric, uuid, digit-only text, char(n)): every row written", async () => {
    if (db.dialect !== "postgres") return; // MySQL keeps the CASE form for every key type
    const keys: [string, (n: number) => string][] = [
      ["INTEGER", (n) => String(n)],
      ["BIGINT", (n) => String(-n)],
      // Digits only, so sent as an array literal: the leading zeros must survive.
      ["TEXT", (n) => String(n).padStart(4, "0")],
      ["NUMERIC(12, 2)", (n) => `${n}.50`],
      ["UUID", (n) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`],
      ["CHAR(8)", (n) => `k${String(n).padStart(7, "0")}`], // no array cast: the CASE form
    ];
    for (const [type, keyOf] of keys) {
      const { table, prefix } = names("pktype");
      const oldKey = keyPair().provider;
      const newKey = keyPair().provider;
      await db.query(`CREATE TABLE ${table} (id ${type} PRIMARY KEY, email BYTEA)`);
      const sealer = new Envelope({ encrypt: oldKey, cache: false });
      for (let n = 1; n <= 30; n++) {
        const value = await sealer.encrypt(plaintextOf(keyOf(n)), {
          context: contextOf(table, "email", keyOf(n)),
          output: "binary",
        });
        await db.query(`INSERT INTO ${table} (id, email) VALUES (?, ?)`, [keyOf(n), value]);
      }
      const report = await rewrapTable({
        db,
        table,
        primaryKey: "id",
        columns: ["email"],
        to: newKey,
        decrypt: [oldKey],
        apply: true,
        stateTablePrefix: prefix,
      });
      expect(report.run, type).toMatchObject({ rewrapped: 30, conflicts: 0, failed: 0 });
      const check = await verifyAll(db, table, newKey);
      expect(check.wrong, type).toEqual([]);
    }
  }, 60_000);
});
