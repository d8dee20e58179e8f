import { randomUUID } from "node:crypto";
import { inspectEnvelope } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createBlindIndexer,
  createRecordCipher,
  encryptedPg,
  type Queryable,
} from "../src/index.js";
import {
  counted,
  dumpContains,
  envelopeWith,
  INDEX_KEY_1,
  INDEX_KEY_2,
  pool,
  usePgSchema,
} from "./support.js";

usePgSchema();

const TABLE = "records_pg_users";
const db = pool();
const kms = counted();
const envelope = envelopeWith(kms);
const schema = {
  table: TABLE,
  encrypted: ["email", "phone", "ssn"],
  blindIndexes: { email: { normalize: "email" } },
} as const;

beforeAll(async () => {
  await db.query(`CREATE TABLE ${TABLE} (
    id serial PRIMARY KEY, email text, email_idx text, phone text, ssn text, name text)`);
  await db.query(`CREATE INDEX ON ${TABLE} (email_idx)`);
});

afterAll(async () => {
  await db.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await db.end();
});

describe("encryptedPg (real PostgreSQL)", () => {
  const users = createRecordCipher(envelope, schema, {
    blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }),
  });
  const repo = encryptedPg(db, users);

  it("inserts with a reserved serial id, stores no plaintext, finds by id and by email", async () => {
    kms.reset();
    const ann = await repo.insert<{ id: number; email: string }>(TABLE, {
      email: "Ann.Lee@Example.com",
      phone: "+1 555 0100",
      ssn: "078-05-1120",
      name: "Ann",
    });
    expect(kms.calls.wrap).toBe(1);
    expect(ann).toMatchObject({ email: "Ann.Lee@Example.com", phone: "+1 555 0100", name: "Ann" });
    expect(typeof ann.id).toBe("number");
    for (const secret of ["Ann.Lee", "ann.lee", "555 0100", "078-05-1120"]) {
      expect(await dumpContains(db, TABLE, secret)).toBe(false);
    }
    expect(await dumpContains(db, TABLE, "Ann")).toBe(true); // name is not encrypted
    expect(await repo.findById(TABLE, ann.id)).toEqual(ann);
    expect(await repo.findById(TABLE, -1)).toBeUndefined();
    const found = await repo.findByBlindIndex(TABLE, "email", "  ann.lee@EXAMPLE.com");
    expect(found).toEqual([ann]);
    expect(await repo.findByBlindIndex(TABLE, "email", "nobody@example.com")).toEqual([]);
  });

  it("updates one field with no KMS call and leaves the others untouched", async () => {
    const bob = await repo.insert<{ id: number }>(TABLE, {
      email: "bob@x.io",
      phone: "1",
      ssn: "2",
    });
    const before = (await db.query(`SELECT * FROM ${TABLE} WHERE id = $1`, [bob.id])).rows[0];
    kms.reset();
    const after = await repo.update(TABLE, bob.id, { phone: "3" });
    expect(kms.calls).toEqual({ wrap: 0, unwrap: 0, generateDataKey: 0 });
    expect(after).toMatchObject({ email: "bob@x.io", phone: "3", ssn: "2" });
    const stored = (await db.query(`SELECT * FROM ${TABLE} WHERE id = $1`, [bob.id])).rows[0];
    expect(stored.email).toBe(before.email);
    expect(stored.ssn).toBe(before.ssn);
    expect(stored.phone).not.toBe(before.phone);
    expect(await repo.update(TABLE, -1, { phone: "x" })).toBeUndefined();
  });

  it("an email change moves the blind index", async () => {
    const c = await repo.insert<{ id: number }>(TABLE, { email: "c@x.io" });
    await repo.update(TABLE, c.id, { email: "c2@x.io" });
    expect(await repo.findByBlindIndex(TABLE, "email", "c@x.io")).toEqual([]);
    expect(await repo.findByBlindIndex(TABLE, "email", "C2@x.io")).toHaveLength(1);
  });

  it("a cold process (new envelope, empty unwrap cache) reads with one unwrap per record", async () => {
    const d = await repo.insert<{ id: number }>(TABLE, { email: "d@x.io", phone: "4", ssn: "5" });
    const cold = encryptedPg(
      db,
      createRecordCipher(envelopeWith(kms), schema, {
        blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }),
      }),
    );
    kms.reset();
    expect(await cold.findById(TABLE, d.id)).toMatchObject({
      email: "d@x.io",
      phone: "4",
      ssn: "5",
    });
    expect(kms.calls.unwrap).toBe(1);
  });

  it("truncated indexes collide; lookups drop the false positives after opening", async () => {
    const t = "records_pg_collide";
    await db.query(`CREATE TABLE ${t} (id text PRIMARY KEY, email text, email_idx text)`);
    const tiny = createRecordCipher(
      envelope,
      { table: t, encrypted: ["email"], blindIndexes: { email: { normalize: "email", bits: 8 } } },
      { blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }) },
    );
    const r = encryptedPg(db, tiny);
    for (let i = 0; i < 300; i++) await r.insert(t, { id: randomUUID(), email: `u${i}@x.io` });
    // 300 values over 256 buckets: by the pigeonhole principle some two share an index.
    const byIndex = new Map<string, string[]>();
    for (let i = 0; i < 300; i++) {
      const email = `u${i}@x.io`;
      const idx = tiny.indexFor("email", email);
      byIndex.set(idx, [...(byIndex.get(idx) ?? []), email]);
    }
    const target = [...byIndex.values()].find((emails) => emails.length > 1)![0]!;
    const sameIndex = await db.query(`SELECT count(*)::int AS n FROM ${t} WHERE email_idx = $1`, [
      tiny.indexFor("email", target),
    ]);
    expect(sameIndex.rows[0].n).toBeGreaterThan(1);
    const found = await r.findByBlindIndex<{ email: string }>(t, "email", target);
    expect(found.map((f) => f.email)).toEqual([target]);
    await db.query(`DROP TABLE ${t}`);
  });

  it("index key rotation: old and new keys during re-index, then the new key alone", async () => {
    const rows = await db.query(`SELECT * FROM ${TABLE}`);
    const rotated = createRecordCipher(envelope, schema, {
      blindIndex: createBlindIndexer({ keys: [INDEX_KEY_2, INDEX_KEY_1] }),
    });
    const during = encryptedPg(db, rotated);
    expect(await during.findByBlindIndex(TABLE, "email", "bob@x.io")).toHaveLength(1);
    // Re-index: open each row, write the index under the current key.
    for (const row of rows.rows) {
      const opened = await rotated.open<Record<string, unknown>>(row);
      const idx = rotated.indexesOf(opened);
      await db.query(`UPDATE ${TABLE} SET email_idx = $1 WHERE id = $2`, [idx.email_idx, row.id]);
    }
    const after = encryptedPg(
      db,
      createRecordCipher(envelope, schema, {
        blindIndex: createBlindIndexer({ keys: INDEX_KEY_2 }),
      }),
    );
    expect(await after.findByBlindIndex(TABLE, "email", "bob@x.io")).toHaveLength(1);
    expect(await after.findByBlindIndex(TABLE, "email", "ann.lee@example.com")).toHaveLength(1);
    const oldOnly = encryptedPg(db, users);
    expect(await oldOnly.findByBlindIndex(TABLE, "email", "bob@x.io")).toEqual([]);
  });

  it("master key rotation: update moves a stale row whole, and a concurrent write survives", async () => {
    const t = "records_pg_rotation";
    await db.query(
      `CREATE TABLE ${t} (id text PRIMARY KEY, email text, email_idx text, phone text, ssn text)`,
    );
    const oldKey = counted();
    const newKey = counted();
    const spec = { ...schema, table: t };
    const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
    const onOld = createRecordCipher(envelopeWith(oldKey), spec, { blindIndex });
    const before = encryptedPg(db, onOld);
    for (const id of ["a", "b"])
      await before.insert(t, { id, email: `${id}@x.io`, phone: "1", ssn: "2" });
    const rotated = createRecordCipher(envelopeWith(newKey, [oldKey]), spec, { blindIndex });
    const keysOf = async (id: string) => {
      const row = (await db.query(`SELECT * FROM ${t} WHERE id = $1`, [id])).rows[0];
      return ["email", "phone", "ssn"].map((f) => inspectEnvelope(row[f]).entries[0]?.keyRef);
    };

    expect(await encryptedPg(db, rotated).update(t, "a", { phone: "3" })).toMatchObject({
      email: "a@x.io",
      phone: "3",
      ssn: "2",
    });
    expect(await keysOf("a")).toEqual([newKey.keyRef, newKey.keyRef, newKey.keyRef]);
    await expect(before.findById(t, "a")).rejects.toMatchObject({
      code: "ENVELOPE_NO_MATCHING_KEY",
    });

    // A process still on the old key changes b's email between this update's read and write:
    // the re-sealed write must not put the old email back.
    let raced = false;
    const racy: Queryable = {
      async query(text, values) {
        if (!raced && text.startsWith("UPDATE")) {
          raced = true;
          await before.update(t, "b", { email: "b2@x.io" });
        }
        return db.query(text, values);
      },
    };
    expect(await encryptedPg(racy, rotated).update(t, "b", { phone: "3" })).toMatchObject({
      email: "b2@x.io",
      phone: "3",
      ssn: "2",
    });
    expect(raced).toBe(true);
    expect(await keysOf("b")).toEqual([newKey.keyRef, newKey.keyRef, newKey.keyRef]);
    await db.query(`DROP TABLE ${t}`);
  });

  it("a client-generated uuid id, a pg.Client, and clear errors", async () => {
    const t = "records_pg_uuid";
    await db.query(`CREATE TABLE ${t} (id uuid PRIMARY KEY, secret text)`);
    const client = await db.connect();
    try {
      const r = encryptedPg(
        client,
        createRecordCipher(envelope, { table: t, encrypted: ["secret"] }),
      );
      const id = randomUUID();
      expect(await r.insert(t, { id, secret: { nested: [1, "two"] } })).toEqual({
        id,
        secret: { nested: [1, "two"] },
      });
      await expect(r.insert(t, { secret: "no id" })).rejects.toThrow(/has no sequence/);
      await expect(r.findById("records_unknown", 1)).rejects.toThrow(/No record cipher/);
      await expect(r.findByBlindIndex(t, "secret", "x")).rejects.toThrow(/no blind index/);
    } finally {
      client.release();
      await db.query(`DROP TABLE ${t}`);
    }
  });
});

describe("encryptedPg checks the schema against the table's columns", () => {
  const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
  const statements: string[] = [];
  const watched: Queryable = {
    query: (text, values) => {
      statements.push(text);
      return db.query(text, values);
    },
  };

  it("a misspelt encrypted field is refused before anything is written (the real column would get plaintext)", async () => {
    const typo = createRecordCipher(envelope, { table: TABLE, encrypted: ["emial", "phone"] });
    const before = (await db.query(`SELECT count(*)::int AS n FROM ${TABLE}`)).rows[0].n;
    kms.reset();
    const error = await encryptedPg(db, typo)
      .insert(TABLE, { email: "typo@example.com", phone: "+1 555 0123" })
      .catch((e) => e);
    expect(error).toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
      details: { table: TABLE, field: "emial" },
    });
    expect(error.message).toMatch(/no column "emial".*Did you mean "email"\?/);
    expect(kms.calls.wrap).toBe(0);
    expect((await db.query(`SELECT count(*)::int AS n FROM ${TABLE}`)).rows[0].n).toBe(before);
    expect(await dumpContains(db, TABLE, "typo@example.com")).toBe(false);
    // Reads are refused too (they would return the ciphertext of "email" as its value).
    await expect(encryptedPg(db, typo).findMany(TABLE)).rejects.toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
    });
  });

  it("a missing blind index column or id column is refused", async () => {
    const noIndex = createRecordCipher(
      envelope,
      { table: TABLE, encrypted: ["email"], blindIndexes: { email: { column: "email_hash" } } },
      { blindIndex },
    );
    await expect(encryptedPg(db, noIndex).findById(TABLE, 1)).rejects.toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
      details: { field: "email_hash" },
    });
    const noId = createRecordCipher(envelope, {
      table: TABLE,
      idField: "uid",
      encrypted: ["email"],
    });
    await expect(encryptedPg(db, noId).findById(TABLE, 1)).rejects.toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
      details: { field: "uid" },
    });
  });

  it("a correct schema is checked once per cipher and table, reading no row", async () => {
    const users = createRecordCipher(envelope, schema, { blindIndex });
    statements.length = 0;
    const repo = encryptedPg(watched, users);
    const a = await repo.insert<{ id: number }>(TABLE, { email: "once@example.com" });
    await repo.findById(TABLE, a.id);
    await encryptedPg(watched, users).findByBlindIndex(TABLE, "email", "once@example.com");
    expect(statements.filter((s) => s.includes("WHERE false"))).toHaveLength(1);
  });
});
