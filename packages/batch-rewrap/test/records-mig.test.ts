import { createCipheriv, randomBytes } from "node:crypto";
import { type MigrateRecordsOptions, migrateTable, type SqlAdapter } from "@envelope/batch-rewrap";
import { type ConfigError, decodeEnvelope, Envelope, fromText } from "@envelope/core";
import { gcmJsonDecoder, recordValueDecoder } from "@envelope/legacy";
import { createBlindIndexer, createRecordCipher, type RecordSchema } from "@envelope/records";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, dropAll, instrumented, keyPair, openDb, uniqueName } from "./support.js";

// migrate on a table the app reads through @envelope/records: each migrated value must be
// what the app would have written (type tag, padding, blind index in the same write).

const legacyKey = randomBytes(32);
function gcmJson(text: string): string {
  const iv = randomBytes(16);
  const cipher = createCipheriv("aes-256-gcm", legacyKey, iv);
  const encrypted = Buffer.concat([cipher.update(text, "utf8"), cipher.final()]);
  return JSON.stringify({
    iv: iv.toString("hex"),
    authTag: cipher.getAuthTag().toString("hex"),
    encrypted: encrypted.toString("hex"),
  });
}

// Emails of different lengths, all within one 32-byte padding bucket.
const emailOf = (id: number) => `U${"x".repeat(id % 7)}${id}@Example.com`;
const phoneOf = (id: number) => `+1 555 01${String(id).padStart(2, "0")}`;
const ROWS = 40;
/** The wrapped-key entries of a stored value: equal for values under one data key. */
const entriesOf = (value: unknown) =>
  decodeEnvelope(typeof value === "string" ? fromText(value) : (value as Buffer)).entries.map((e) =>
    Buffer.from(e.wrapped).toString("hex"),
  );

describe.each(DATABASES)("migrate with records on $name", ({ url }) => {
  let db: SqlAdapter;
  const cleanup: [string, string][] = [];
  beforeAll(async () => {
    db = await openDb(url);
  });
  afterAll(async () => {
    for (const [table, prefix] of cleanup) await dropAll(db, table, prefix);
    await db.close();
  });

  async function setup(form: "text" | "binary" = "text") {
    const table = uniqueName("recmig");
    const prefix = `${table}_st`;
    cleanup.push([table, prefix]);
    const type = form === "text" ? "TEXT" : db.dialect === "mysql" ? "BLOB" : "BYTEA";
    await db.query(
      `CREATE TABLE ${table} (id INT PRIMARY KEY, email ${type}, email_idx VARCHAR(64), phone TEXT)`,
    );
    const ids = Array.from({ length: ROWS }, (_, i) => i + 1);
    await db.query(
      `INSERT INTO ${table} (id, email, phone) VALUES ${ids.map(() => "(?, ?, ?)").join(", ")}`,
      ids.flatMap((id) => [id, gcmJson(emailOf(id)), id % 5 === 0 ? null : gcmJson(phoneOf(id))]),
    );
    const key = keyPair().provider;
    const schema: RecordSchema<"email" | "phone"> = {
      table,
      encrypted: ["email", "phone"],
      blindIndexes: { email: { normalize: "email" } },
      pad: { email: 32 },
    };
    const blindIndex = createBlindIndexer({ keys: randomBytes(32).toString("hex") });
    const envelope = new Envelope({ encrypt: key });
    const cipher = createRecordCipher(envelope, schema, { blindIndex });
    const binaryCipher = createRecordCipher(envelope, schema, { blindIndex, output: "binary" });
    const records: MigrateRecordsOptions = { schema, blindIndex };
    const job = {
      db,
      table,
      primaryKey: "id",
      columns: ["email", "phone"],
      to: key,
      from: gcmJsonDecoder(legacyKey),
      stateTablePrefix: prefix,
      records,
    };
    return { table, key, cipher: form === "text" ? cipher : binaryCipher, job };
  }

  const snapshot = async (table: string) =>
    (await db.query(`SELECT id, email, email_idx, phone FROM ${table} ORDER BY id`)).rows;

  it("dry run reads and writes nothing", async () => {
    const { table, job } = await setup();
    const before = await snapshot(table);
    const report = await migrateTable({ ...job, apply: false });
    expect(report.apply).toBe(false);
    expect(report.wouldRewrite).toBe(ROWS + ROWS - ROWS / 5);
    expect(await snapshot(table)).toEqual(before);
    expect(before.every((r) => r.email_idx === null)).toBe(true);
  });

  it.each(["text", "binary"] as const)(
    "fills the blind index in the same write (%s column): findBy finds the migrated row, padded as an app write",
    async (form) => {
      const { table, key, cipher, job } = await setup(form);
      const to = instrumented(key);
      const report = await migrateTable({ ...job, to, apply: true });
      // One data key per row, as the record cipher seals a record: one wrap per row (the
      // preflight's sample seals each value under its own key).
      expect(to.counts.wrap - report.preflightChecked).toBe(ROWS);
      expect(report.run.failed).toBe(0);
      expect(report.run.rewrapped).toBe(ROWS + ROWS - ROWS / 5);

      // findBy: the blind index of the normalized value, candidates under every index key.
      const wanted = emailOf(17).toUpperCase();
      const candidates = cipher.candidatesFor("email", wanted);
      const { rows } = await db.query(
        `SELECT * FROM ${table} WHERE email_idx IN (${candidates.map(() => "?").join(", ")})`,
        candidates,
      );
      const found = (
        await Promise.all(rows.map((r) => cipher.open<Record<string, unknown>>(r)))
      ).filter((r) => cipher.matches("email", r.email, wanted));
      expect(found.map((r) => Number(r.id))).toEqual([17]);
      expect(found[0]!.phone).toBe(phoneOf(17));

      // Every row opens through the cipher, each index is the app's, each email the app's length.
      const app = await cipher.seal({ id: 999, email: "a@b.co", phone: phoneOf(1) });
      const all = await snapshot(table);
      for (const row of all) {
        const opened = await cipher.open<Record<string, unknown>>(row);
        const id = Number(row.id);
        expect(opened.email).toBe(emailOf(id));
        expect(opened.phone).toBe(id % 5 === 0 ? null : phoneOf(id));
        expect(row.email_idx).toBe(cipher.indexFor("email", emailOf(id)));
        expect((row.email as string | Buffer).length).toBe(app.email.length);
        if (row.phone !== null) expect(entriesOf(row.phone)).toEqual(entriesOf(row.email));
      }
      expect(new Set(all.map((r) => (r.email as string | Buffer).length)).size).toBe(1);
    },
  );

  it("a row the app writes during the migration keeps the app's value and index", async () => {
    const { table, key, cipher, job } = await setup();
    let wrote = false;
    const to = instrumented(key, {
      // While the job seals row 3, the app saves row 3 (a new email and its index).
      beforeWrap: async ({ context }) => {
        if (wrote || context.id !== "3") return;
        wrote = true;
        const sealed = await cipher.seal({ id: 3, email: "new3@example.com" });
        await db.query(`UPDATE ${table} SET email = ?, email_idx = ? WHERE id = 3`, [
          sealed.email,
          sealed.email_idx,
        ]);
      },
    });
    const report = await migrateTable({ ...job, to, apply: true, sampleSize: 1 });
    expect(wrote).toBe(true);
    expect(report.run.conflicts).toBeGreaterThan(0);
    expect(report.run.failed).toBe(0);
    const { rows } = await db.query(`SELECT * FROM ${table} WHERE id = 3`);
    const opened = await cipher.open<Record<string, unknown>>(rows[0]!);
    expect(opened.email).toBe("new3@example.com");
    expect(rows[0]!.email_idx).toBe(cipher.indexFor("email", "new3@example.com"));
    expect(opened.phone).toBe(phoneOf(3));
  });

  // The app's ORM stores the fields under other column names (Sequelize `field`, TypeORM
  // `@Column({ name })`, Drizzle `email: text("email_enc")`) and reads them back under the
  // property names: the record cipher's context, padding and index are the property's.
  async function mappedSetup() {
    const table = uniqueName("recmap");
    const prefix = `${table}_st`;
    cleanup.push([table, prefix]);
    await db.query(
      `CREATE TABLE ${table} (user_id INT PRIMARY KEY, email_enc TEXT, email_bidx VARCHAR(64), phone_enc TEXT)`,
    );
    const ids = Array.from({ length: 6 }, (_, i) => i + 1);
    await db.query(
      `INSERT INTO ${table} (user_id, email_enc, phone_enc) VALUES ${ids.map(() => "(?, ?, ?)").join(", ")}`,
      ids.flatMap((id) => [id, gcmJson(emailOf(id)), gcmJson(phoneOf(id))]),
    );
    const key = keyPair().provider;
    const schema: RecordSchema<"email" | "phone"> = {
      table: "users",
      encrypted: ["email", "phone"],
      blindIndexes: { email: { normalize: "email" } },
      pad: { email: 32 },
    };
    const blindIndex = createBlindIndexer({ keys: randomBytes(32).toString("hex") });
    const cipher = createRecordCipher(new Envelope({ encrypt: key }), schema, { blindIndex });
    const records: MigrateRecordsOptions = {
      schema,
      blindIndex,
      fieldOfColumn: {
        user_id: "id",
        email_enc: "email",
        email_bidx: "email_idx",
        phone_enc: "phone",
      },
    };
    const job = {
      db,
      table,
      primaryKey: "user_id",
      columns: ["email_enc", "phone_enc"],
      to: key,
      from: gcmJsonDecoder(legacyKey),
      stateTablePrefix: prefix,
      records,
    };
    // What the ORM reads: each column under its property name.
    const read = async (where = "1 = 1", params: unknown[] = []) =>
      (
        await db.query(
          `SELECT user_id AS id, email_enc AS email, email_bidx AS email_idx, phone_enc AS phone FROM ${table} WHERE ${where} ORDER BY user_id`,
          params,
        )
      ).rows;
    return { table, cipher, job, read, ids };
  }

  it("fieldOfColumn: a value migrated from a mapped column opens through the app's record cipher and its blind index finds it", async () => {
    const { cipher, job, read, ids } = await mappedSetup();
    const report = await migrateTable({ ...job, apply: true });
    expect(report.run.failed).toBe(0);
    expect(report.run.rewrapped).toBe(ids.length * 2);

    const wanted = emailOf(4).toUpperCase();
    const candidates = cipher.candidatesFor("email", wanted);
    const rows = await read(`email_bidx IN (${candidates.map(() => "?").join(", ")})`, candidates);
    const found = (
      await Promise.all(rows.map((r) => cipher.open<Record<string, unknown>>(r)))
    ).filter((r) => cipher.matches("email", r.email, wanted));
    expect(found.map((r) => [Number(r.id), r.email, r.phone])).toEqual([
      [4, emailOf(4), phoneOf(4)],
    ]);
    const app = await cipher.seal({ id: 99, email: "a@b.co" });
    for (const row of await read()) {
      const opened = await cipher.open<Record<string, unknown>>(row);
      expect(opened.email).toBe(emailOf(Number(row.id)));
      expect(opened.phone).toBe(phoneOf(Number(row.id)));
      expect(row.email_idx).toBe(cipher.indexFor("email", emailOf(Number(row.id))));
      expect((row.email as string).length).toBe(app.email.length);
    }
  });

  it("fieldOfColumn is checked up front: unmapped, unknown and doubly mapped names are typed errors that say what to map", async () => {
    const { job } = await mappedSetup();
    const { fieldOfColumn, ...unmapped } = job.records;
    const refusal = (records: MigrateRecordsOptions, columns = job.columns) =>
      migrateTable({ ...job, columns, records }).then(
        () => undefined,
        (e: ConfigError) => ({ code: e.code, field: e.details?.field, message: e.message }),
      );
    // Without the mapping: the id, then the column, are named with the option to map them.
    expect(await refusal(unmapped)).toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
      message: expect.stringContaining('fieldOfColumn = { "user_id": "id" }'),
    });
    expect(await refusal({ ...unmapped, fieldOfColumn: { user_id: "id" } })).toMatchObject({
      field: "columns",
      message: expect.stringContaining('fieldOfColumn = { "email_enc": "<field>" }'),
    });
    // A blind-indexed field whose index column is not mapped: email_idx is not a column.
    const { email_bidx: _, ...noIndexColumn } = fieldOfColumn!;
    expect(await refusal({ ...unmapped, fieldOfColumn: noIndexColumn })).toMatchObject({
      field: "records.fieldOfColumn",
      message: expect.stringContaining('{ "<index column>": "email_idx" }'),
    });
    for (const bad of [
      { ...fieldOfColumn, email_enc: "mail" },
      { ...fieldOfColumn, other: "email" },
      { ...fieldOfColumn, email_enc: 3 as unknown as string },
      ["email"] as unknown as Record<string, string>,
    ]) {
      expect(await refusal({ ...unmapped, fieldOfColumn: bad })).toMatchObject({
        code: "ENVELOPE_BAD_CONFIG",
        field: "records.fieldOfColumn",
      });
    }
    // Two migrated columns that hold one field.
    await db.query(`ALTER TABLE ${job.table} ADD COLUMN email TEXT`);
    expect(await refusal(job.records, ["email_enc", "email"])).toMatchObject({
      field: "records.fieldOfColumn",
      message: expect.stringContaining('both hold the field "email"'),
    });
  });

  it("refuses a blind-indexed column without the blind indexer, and a context builder beside records", async () => {
    const { job } = await setup();
    const { blindIndex: _, ...noIndexer } = job.records;
    await expect(migrateTable({ ...job, records: noIndexer })).rejects.toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
    });
    await expect(
      migrateTable({ ...job, context: (row, column) => ({ column, id: String(row.id) }) }),
    ).rejects.toMatchObject({ code: "ENVELOPE_BAD_CONFIG" });
    await expect(
      migrateTable({ ...job, from: recordValueDecoder(gcmJsonDecoder(legacyKey), "bytes") }),
    ).rejects.toMatchObject({ code: "ENVELOPE_BAD_CONFIG" });
  });
});
