import { rewrapTable, type SqlAdapter } from "@envelope/batch-rewrap";
import { Envelope, ProviderError } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  contextOf,
  DATABASES,
  dropAll,
  instrumented,
  keyPair,
  openDb,
  plaintextOf,
  seedTable,
  throttled,
  uniqueName,
  verifyAll,
} from "./support.js";

describe.each(DATABASES)("rewrapTable on $name", ({ url }) => {
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

  it("dry run reports what would change and writes nothing", async () => {
    const { table, prefix } = names("dry");
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    await seedTable(db, table, 120, oldKey);
    const before = (await db.query(`SELECT email FROM ${table} ORDER BY id`)).rows;
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: newKey,
      decrypt: [oldKey],
      stateTablePrefix: prefix,
    });
    expect(report).toMatchObject({
      apply: false,
      wouldRewrite: 120,
      complete: false,
      byKeyRef: { [`local-aes:${oldKey.keyRef}`]: 120 },
    });
    expect(report.run.scanned).toBe(120);
    const after = (await db.query(`SELECT email FROM ${table} ORDER BY id`)).rows;
    expect(after).toEqual(before);
    const state = await db.query(
      db.dialect === "mysql"
        ? "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
        : "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name = ?",
      [`${prefix}_jobs`],
    );
    expect(Number(state.rows[0]!.n)).toBe(0);
  });

  it("rewraps every row, is idempotent, and keeps bodies byte-for-byte", async () => {
    const { table, prefix } = names("apply");
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    await seedTable(db, table, 700, oldKey, "text");
    await db.query(`UPDATE ${table} SET email = NULL WHERE id = 5`);
    const before = new Envelope({ encrypt: oldKey }).inspect(
      (await db.query(`SELECT email FROM ${table} WHERE id = 7`)).rows[0]!.email as string,
    );
    const options = {
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: newKey,
      decrypt: [oldKey],
      stateTablePrefix: prefix,
      apply: true,
      batchSize: 100,
      rangeSize: 250,
    };
    const report = await rewrapTable(options);
    expect(report).toMatchObject({ complete: true, stopped: false, failures: {} });
    expect(report.run).toMatchObject({
      scanned: 700,
      rewrapped: 699,
      nulls: 1,
      conflicts: 0,
      failed: 0,
    });
    expect(report.run.kmsCalls).toBeGreaterThanOrEqual(2 * 699);
    expect(report.total).toMatchObject({ rewrapped: 699 });
    expect(await verifyAll(db, table, newKey)).toEqual({ rows: 700, wrong: [] });
    const after = new Envelope({ encrypt: newKey }).inspect(
      (await db.query(`SELECT email FROM ${table} WHERE id = 7`)).rows[0]!.email as string,
    );
    expect(after.messageId).toBe(before.messageId);
    expect(after.bodyBytes).toBe(before.bodyBytes);

    // Same call again: the job was complete, so it goes over the table again and finds
    // nothing to do. A new job skips every row too. Neither asks anything of the KMS.
    const again = await rewrapTable(options);
    expect(again).toMatchObject({ reopened: true, complete: true });
    expect(again.run).toMatchObject({ rewrapped: 0, skipped: 699, kmsCalls: 0 });
    const fresh = await rewrapTable({ ...options, jobId: "second-pass" });
    expect(fresh.run).toMatchObject({ rewrapped: 0, skipped: 699, kmsCalls: 0 });
    expect(fresh.preflightChecked).toBe(0);
  });

  it.each([2, 4])("%i workers do every row exactly once", async (workers) => {
    const { table, prefix } = names(`w${workers}`);
    const oldKey = keyPair().provider;
    const target = instrumented(keyPair().provider);
    await seedTable(db, table, 1000, oldKey);
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: target,
      decrypt: [oldKey],
      stateTablePrefix: prefix,
      apply: true,
      workers,
      batchSize: 50,
      rangeSize: 100,
      concurrency: 4,
      sampleSize: 0,
    });
    expect(report.complete).toBe(true);
    expect(report.total).toMatchObject({ scanned: 1000, rewrapped: 1000, conflicts: 0, failed: 0 });
    // One wrap per row: no row was rewrapped twice by two workers.
    expect(target.counts.wrap).toBe(1000);
    const ranges = await db.query(
      `SELECT COUNT(DISTINCT worker) AS n FROM ${prefix}_checkpoints WHERE range_id >= 0`,
    );
    expect(Number(ranges.rows[0]!.n)).toBeGreaterThan(1);
    expect((await verifyAll(db, table, target)).wrong).toEqual([]);
  });

  it("no lost update: application writes during the job win, and their rows end on the target", async () => {
    const { table, prefix } = names("race");
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    await seedTable(db, table, 600, oldKey);
    const app = new Envelope({ encrypt: newKey, decrypt: [oldKey], cache: false });
    const appOld = new Envelope({ encrypt: oldKey, cache: false });
    const expected = new Map<string, string>();
    let writes = 0;
    const appWrite = async (id: string, useOldKey: boolean) => {
      const text = `changed-${id}-${++writes}@example.com`;
      const sealed = await (useOldKey ? appOld : app).encrypt(text, {
        context: contextOf(table, "email", id),
        output: "binary",
      });
      await db.query(`UPDATE ${table} SET email = ? WHERE id = ?`, [sealed, id]);
      expected.set(id, text);
    };
    // Deterministic races: while the job rewraps every 7th row, the application rewrites
    // that same row (half the time still with the old key), so the job's CAS must miss.
    const injected = new Set<string>();
    const target = instrumented(newKey, {
      beforeWrap: async ({ context }) => {
        const id = context.id!;
        if (Number(id) % 7 === 0 && !injected.has(id)) {
          injected.add(id);
          await appWrite(id, Number(id) % 14 === 0);
        }
      },
    });
    // And random background writes, with the new key, while the job runs, to the other
    // rows only. (They used to hit every 7th row too: on a loaded machine the job ran long
    // enough for them to move most of those rows to the new key before the job read them,
    // so fewer than 40 were injected and the test failed without any lost update.)
    let stop = false;
    const background = (async () => {
      while (!stop) {
        const id = 1 + Math.floor(Math.random() * 600);
        if (id % 7 === 0) continue;
        await appWrite(String(id), false);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: target,
      decrypt: [oldKey],
      stateTablePrefix: prefix,
      apply: true,
      batchSize: 40,
      concurrency: 4,
      sampleSize: 0,
    });
    stop = true;
    await background;
    expect(report.complete).toBe(true);
    // Every injected write hit a row the job had read: each must have been a CAS miss.
    expect(injected.size).toBe(85);
    expect(report.total!.conflicts).toBeGreaterThanOrEqual(injected.size);
    expect(
      (await verifyAll(db, table, newKey, (id) => expected.get(id) ?? plaintextOf(id))).wrong,
    ).toEqual([]);
  });

  it("a throttling and failing KMS slows the job, failures are reported, a rerun finishes them", async () => {
    const { table, prefix } = names("flaky");
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    await seedTable(db, table, 300, oldKey);
    let calls = 0;
    const flaky = instrumented(newKey, {
      beforeWrap: ({ context }) => {
        calls++;
        if (calls % 4 === 0 && calls < 80) throw throttled();
        if (Number(context.id) % 50 === 0) {
          throw new ProviderError("ENVELOPE_KMS_ACCESS_DENIED", "test KMS: access denied", {
            details: { provider: "local-aes" },
          });
        }
      },
    });
    const options = {
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      decrypt: [oldKey],
      stateTablePrefix: prefix,
      apply: true,
      batchSize: 50,
      sampleSize: 0,
    };
    const first = await rewrapTable({ ...options, to: flaky });
    expect(first.complete).toBe(false);
    expect(first.failures).toEqual({ ENVELOPE_KMS_ACCESS_DENIED: 6 });
    expect(first.sampleFailures.map((f) => f.pk).sort()).toEqual([
      "100",
      "150",
      "200",
      "250",
      "300",
      "50",
    ]);
    expect(first.run.rewrapped).toBe(294);
    expect(first.kmsThrottled).toBeGreaterThanOrEqual(15);
    // Every unfinished row is still readable with the old key.
    const old = new Envelope({ encrypt: oldKey });
    const row50 = (await db.query(`SELECT email FROM ${table} WHERE id = 50`)).rows[0]!
      .email as Buffer;
    expect(await old.decrypt(row50, { context: contextOf(table, "email", 50), as: "text" })).toBe(
      plaintextOf(50),
    );

    const second = await rewrapTable({ ...options, to: newKey });
    expect(second).toMatchObject({ complete: true, failures: {} });
    expect(second.run.rewrapped).toBe(6);
    expect((await verifyAll(db, table, newKey)).wrong).toEqual([]);
  });

  it.each([
    ["unknown table", { table: "batch_rewrap_no_such_table" }, "ENVELOPE_BAD_CONFIG", /not found/],
    ["unknown column", { columns: ["no_such"] }, "ENVELOPE_BAD_CONFIG", /not in table/],
    ["non-envelope data", { plaintextRow: true }, "ENVELOPE_UNSUPPORTED_VERSION", /use migrate/i],
    [
      "wrong context builder",
      { context: () => ({ table: "users" }) },
      "ENVELOPE_DECRYPT_FAILED",
      /context builder/,
    ],
    ["key the config cannot unwrap", { decrypt: [] }, "ENVELOPE_NO_MATCHING_KEY", /decrypt list/],
  ] as const)(
    "bad input (%s) fails before anything is written",
    async (_name, change, code, message) => {
      const { table, prefix } = names("bad");
      const oldKey = keyPair().provider;
      const newKey = keyPair().provider;
      await seedTable(db, table, 30, oldKey);
      if ("plaintextRow" in change)
        await db.query(`UPDATE ${table} SET email = ? WHERE id = 3`, [
          Buffer.from("bob@example.com"),
        ]);
      const before = (await db.query(`SELECT id, email FROM ${table} ORDER BY id`)).rows;
      const { plaintextRow: _, ...overrides } = { plaintextRow: false, ...change } as Record<
        string,
        unknown
      >;
      const error = await rewrapTable({
        db,
        table,
        primaryKey: "id",
        columns: ["email"],
        to: newKey,
        decrypt: [oldKey],
        stateTablePrefix: prefix,
        apply: true,
        ...overrides,
      } as Parameters<typeof rewrapTable>[0]).catch((e) => e);
      expect(error).toMatchObject({ code });
      expect(error.message).toMatch(message);
      if (!("table" in change))
        expect((await db.query(`SELECT id, email FROM ${table} ORDER BY id`)).rows).toEqual(before);
      const state = await db.query(
        db.dialect === "mysql"
          ? "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
          : "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name = ?",
        [`${prefix}_jobs`],
      );
      expect(Number(state.rows[0]!.n)).toBe(0);
    },
  );
});
