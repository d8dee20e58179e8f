import { rewrapTable, type SqlAdapter } from "@envelope/batch-rewrap";
import { decodeEnvelope, Envelope } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  contextOf,
  DATABASES,
  dropAll,
  keyPair,
  openDb,
  plaintextOf,
  seedTable,
  uniqueName,
} from "./support.js";

// Issue 11, item 4b: a rotation authenticates each body before it calls a value done.
describe.each(DATABASES)("rewrapTable body verification on $name", ({ url }) => {
  let db: SqlAdapter;
  const cleanup: [string, string][] = [];
  beforeAll(async () => {
    db = await openDb(url);
  });
  afterAll(async () => {
    for (const [table, prefix] of cleanup) await dropAll(db, table, prefix);
    await db.close();
  });

  const rowBytes = async (table: string, id: number): Promise<Buffer> => {
    const value = (await db.query(`SELECT email FROM ${table} WHERE id = ?`, [id])).rows[0]!
      .email as Buffer | string;
    return Buffer.isBuffer(value) ? Buffer.from(value) : Buffer.from(value, "utf8");
  };

  /** 30 rows under `oldKey`; row 7's ciphertext damaged; row 12's value copied into row 13. */
  async function damagedTable(label: string, form: "binary" | "text") {
    const table = uniqueName(label);
    const prefix = `${table}_st`;
    cleanup.push([table, prefix]);
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    await seedTable(db, table, 30, oldKey, form);
    const seven = await rowBytes(table, 7);
    if (form === "binary") {
      seven[seven.length - 20]! ^= 0x01;
      await db.query(`UPDATE ${table} SET email = ? WHERE id = 7`, [seven]);
    } else {
      // Change one base64url character of the ciphertext (canonical, same length).
      const text = seven.toString("utf8");
      const at = text.length - 30;
      const swapped = `${text.slice(0, at)}${text[at] === "A" ? "B" : "A"}${text.slice(at + 1)}`;
      await db.query(`UPDATE ${table} SET email = ? WHERE id = 7`, [swapped]);
    }
    const twelve = await rowBytes(table, 12);
    await db.query(`UPDATE ${table} SET email = ? WHERE id = 13`, [
      form === "binary" ? twelve : twelve.toString("utf8"),
    ]);
    return { table, prefix, oldKey, newKey };
  }

  it.each(["binary", "text"] as const)(
    "%s: damaged and moved values are failures with their code, left byte-identical",
    async (form) => {
      const { table, prefix, oldKey, newKey } = await damagedTable(`vb_${form}`, form);
      const before7 = await rowBytes(table, 7);
      const before13 = await rowBytes(table, 13);
      const report = await rewrapTable({
        db,
        table,
        primaryKey: "id",
        columns: ["email"],
        to: newKey,
        decrypt: [oldKey],
        stateTablePrefix: prefix,
        apply: true,
        batchSize: 10,
        sampleSize: 0,
      });
      expect(report.complete).toBe(false);
      expect(report.failures).toEqual({ ENVELOPE_DECRYPT_FAILED: 2 });
      expect(report.sampleFailures.map((f) => f.pk).sort()).toEqual(["13", "7"]);
      expect(report.run.rewrapped).toBe(28);
      expect((await rowBytes(table, 7)).equals(before7)).toBe(true);
      expect((await rowBytes(table, 13)).equals(before13)).toBe(true);
      // The good rows moved and open under the new key alone.
      const fresh = new Envelope({ encrypt: newKey });
      const row8 = await rowBytes(table, 8);
      const sealed8 = form === "binary" ? row8 : row8.toString("utf8");
      expect(
        await fresh.decrypt(sealed8, { context: contextOf(table, "email", 8), as: "text" }),
      ).toBe(plaintextOf(8));
    },
  );

  it("verifyBody: false carries the damage forward (the opt-out exists and is not the default)", async () => {
    const { table, prefix, oldKey, newKey } = await damagedTable("vb_off", "binary");
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: newKey,
      decrypt: [oldKey],
      stateTablePrefix: prefix,
      apply: true,
      sampleSize: 0,
      verifyBody: false,
    });
    expect(report).toMatchObject({ complete: true, failures: {} });
    const seven = decodeEnvelope(await rowBytes(table, 7));
    expect(seven.entries.map((e) => e.keyRef)).toEqual([newKey.keyRef]);
  });
});
