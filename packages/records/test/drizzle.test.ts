import { randomUUID } from "node:crypto";
import { EnvelopeError, inspectEnvelope } from "@envelope/core";
import { asc, desc, eq, inArray, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { integer, pgTable, serial, text } from "drizzle-orm/pg-core";
import type pgLib from "pg";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { encryptedBytes, encryptedRepository, encryptedText } from "../src/drizzle.js";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { counted, dumpContains, envelopeWith, INDEX_KEY_1, pool, usePgSchema } from "./support.js";

usePgSchema();

const TABLE = "records_drizzle_users";
const users = pgTable(TABLE, {
  id: text("id").primaryKey(),
  email: encryptedText("email"),
  email_idx: text("email_idx"),
  phone: encryptedText("phone"),
  avatar: encryptedBytes("avatar"),
  name: text("name"),
});
const counters = pgTable("records_drizzle_counter", {
  id: serial("id").primaryKey(),
  note: encryptedText("note"),
});

const pg = pool();
const db = drizzle(pg);
const kms = counted();
const envelope = envelopeWith(kms);
const cipher = createRecordCipher(
  envelope,
  { table: TABLE, encrypted: ["email", "phone"], blindIndexes: { email: { normalize: "email" } } },
  { blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }) },
);
const avatars = createRecordCipher(
  envelope,
  { table: TABLE, encrypted: ["avatar"] },
  {
    output: "binary",
  },
);

beforeAll(async () => {
  await pg.query(`CREATE TABLE ${TABLE} (id text PRIMARY KEY, email text, email_idx text,
    phone text, avatar bytea, name text)`);
  await pg.query("CREATE TABLE records_drizzle_counter (id serial PRIMARY KEY, note text)");
});

afterAll(async () => {
  await pg.query(`DROP TABLE IF EXISTS ${TABLE}, records_drizzle_counter`);
  await pg.end();
});

describe("Drizzle (drizzle-orm/node-postgres, real PostgreSQL)", () => {
  it("seal → insert, select by blind index → open, update one field", async () => {
    const id = randomUUID();
    const sealed = await cipher.seal({
      id,
      email: "Zoe@Example.com",
      phone: "+44 20",
      name: "Zoe",
    });
    await db.insert(users).values(sealed);
    expect(await dumpContains(pg, TABLE, "Zoe@Example")).toBe(false);
    expect(await dumpContains(pg, TABLE, "+44 20")).toBe(false);

    const rows = await db
      .select()
      .from(users)
      .where(inArray(users.email_idx, cipher.candidatesFor("email", "zoe@example.COM")));
    expect(rows).toHaveLength(1);
    const zoe = await cipher.open<{ email: string; phone: string; name: string }>(rows[0]!);
    expect(zoe).toMatchObject({ id, email: "Zoe@Example.com", phone: "+44 20", name: "Zoe" });

    kms.reset();
    const patch = await cipher.update(rows[0]!, { phone: "+44 21" });
    await db.update(users).set(patch).where(eq(users.id, id));
    expect(kms.calls).toEqual({ wrap: 0, unwrap: 0, generateDataKey: 0 });
    const [again] = await db.select().from(users).where(eq(users.id, id));
    expect(await cipher.openField(again!, "phone")).toBe("+44 21");
  });

  it("a bytea column with a binary cipher round-trips bytes", async () => {
    const id = randomUUID();
    const picture = Buffer.from([0, 1, 2, 255]);
    await db.insert(users).values(await avatars.seal({ id, avatar: picture }));
    const [row] = await db.select().from(users).where(eq(users.id, id));
    expect(Buffer.isBuffer(row!.avatar)).toBe(true);
    expect(await avatars.openField(row!, "avatar")).toStrictEqual(picture);
  });

  it("the column refuses plaintext and malformed values instead of storing them", async () => {
    const attempt = async (values: Record<string, unknown>) => {
      try {
        await db.insert(users).values(values as typeof users.$inferInsert);
      } catch (e) {
        // Drizzle wraps driver-side failures; ours is thrown before the query is built.
        return EnvelopeError.isInstance(e) ? e.code : "other";
      }
      return "stored";
    };
    expect(await attempt({ id: "p1", email: "plain@text.io" })).toBe("ENVELOPE_BAD_INPUT");
    expect(await attempt({ id: "p2", email: "ev1:AQE" })).toBe("ENVELOPE_BAD_FORMAT");
    expect(await attempt({ id: "p3", avatar: "not bytes" })).toBe("ENVELOPE_BAD_INPUT");
    const { rows } = await pg.query(`SELECT id FROM ${TABLE} WHERE id LIKE 'p%'`);
    expect(rows).toEqual([]);
  });

  it("a serial id: reserve it with nextval, then seal and insert", async () => {
    const notes = createRecordCipher(envelope, {
      table: "records_drizzle_counter",
      encrypted: ["note"],
    });
    const { rows } = await pg.query(
      "SELECT nextval(pg_get_serial_sequence('records_drizzle_counter', 'id'))::int AS id",
    );
    const id = rows[0].id as number;
    await db.insert(counters).values(await notes.seal({ id, note: "secret note" }));
    const [row] = await db.select().from(counters).where(eq(counters.id, id));
    expect(await notes.open(row!)).toEqual({ id, note: "secret note" });
  });
});

// The repository: application code reads and writes plaintext.
const REPO = "records_drizzle_repo";
const people = pgTable(REPO, {
  id: text("id").primaryKey(),
  email: encryptedText("email"),
  email_idx: text("email_idx"),
  phone: encryptedText("phone"),
  born: encryptedText("born").$type<Date>(),
  name: text("name"),
});
const IDENTITY = "records_drizzle_identity";
const tickets = pgTable(IDENTITY, {
  id: integer("id").primaryKey().generatedAlwaysAsIdentity(),
  body: encryptedText("body"),
  status: text("status"),
});
const peopleSchema = {
  table: REPO,
  encrypted: ["email", "phone", "born"],
  blindIndexes: { email: { normalize: "email" } },
} as const;
const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
const peopleCipher = createRecordCipher(envelope, peopleSchema, { blindIndex });
const repo = encryptedRepository(db, people, peopleCipher);
const raw = async (table: string, id: unknown) =>
  (await pg.query(`SELECT * FROM ${table} WHERE id = $1`, [id])).rows[0];
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e) => (EnvelopeError.isInstance(e) ? e.code : "untyped"),
  );

describe("encryptedRepository (Drizzle, real PostgreSQL)", () => {
  beforeAll(async () => {
    await pg.query(`CREATE TABLE ${REPO} (id text PRIMARY KEY, email text, email_idx text,
      phone text, born text, name text)`);
    await pg.query(`CREATE INDEX ON ${REPO} (email_idx)`);
    await pg.query(`CREATE TABLE ${IDENTITY} (id integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
      body text, status text)`);
  });
  afterAll(async () => {
    await pg.query(`DROP TABLE IF EXISTS ${REPO}, ${IDENTITY}`);
  });

  it("insert takes plaintext (one KMS call per record) and the table holds none", async () => {
    const born = new Date("1990-02-03T00:00:00Z");
    kms.reset();
    const [ann, ben] = await repo.insert([
      { id: "ann", email: "Ann.Lee@Example.com", phone: "+1 555 0100", born, name: "Ann" },
      { id: "ben", email: "ben@x.io", phone: "+1 555 0101", born: null, name: "Ben" },
    ]);
    expect(kms.calls.wrap + kms.calls.generateDataKey).toBe(2);
    expect(kms.calls.unwrap).toBe(0); // the returned rows open from the primed cache
    expectTypeOf(ann!).toEqualTypeOf<typeof people.$inferSelect>();
    expectTypeOf(ann!.born).toEqualTypeOf<Date | null>();
    expect(ann).toEqual({
      id: "ann",
      email: "Ann.Lee@Example.com",
      email_idx: peopleCipher.indexFor("email", "ann.lee@example.com"),
      phone: "+1 555 0100",
      born,
      name: "Ann",
    });
    expect(ben!.born).toBeNull();
    // "1990-02-03", not "1990": four digits turn up in hex blind indexes by chance.
    for (const secret of ["Ann.Lee", "ann.lee", "555 0100", "555 0101", "ben@x", "1990-02-03"]) {
      expect(await dumpContains(pg, REPO, secret)).toBe(false);
    }
    expect(await dumpContains(pg, REPO, "Ann")).toBe(true); // name is not encrypted
    const stored = await raw(REPO, "ann");
    for (const f of ["email", "phone", "born"]) expect(stored[f]).toMatch(/^ev1:/);

    const single = await repo.insert({ id: "cy", email: "cy@x.io", phone: null, name: "Cy" });
    expectTypeOf(single).toEqualTypeOf<typeof people.$inferSelect>();
    expect(single).toMatchObject({ id: "cy", email: "cy@x.io", phone: null, born: null });
  });

  it("find / findOne / findById / findBy return plaintext", async () => {
    const all = await repo.find(undefined, { orderBy: [asc(people.id)] });
    expect(all.map((p) => [p.id, p.email])).toEqual([
      ["ann", "Ann.Lee@Example.com"],
      ["ben", "ben@x.io"],
      ["cy", "cy@x.io"],
    ]);
    expect(await repo.find(eq(people.name, "Ben"))).toEqual([all[1]]);
    expect(await repo.find(undefined, { orderBy: [asc(people.id)], limit: 1, offset: 1 })).toEqual([
      all[1],
    ]);
    expect(await repo.findOne(eq(people.name, "Cy"))).toEqual(all[2]);
    expect(await repo.findOne(eq(people.name, "nobody"))).toBeUndefined();
    expect(await repo.findById("ann")).toEqual(all[0]);
    expect(await repo.findById("nobody")).toBeUndefined();
    expect(await repo.findBy("email", "  ann.lee@EXAMPLE.com")).toEqual([all[0]]);
    expect(await repo.findBy("email", "nobody@example.com")).toEqual([]);
    // @ts-expect-error name is not an encrypted field
    await expect(codeOf(repo.findBy("name", "Ann"))).resolves.toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(repo.findBy("phone", "+1 555 0100"))).toBe("ENVELOPE_BAD_INPUT"); // no index
    // A WHERE with plaintext on an encrypted column is refused by the column, not run.
    expect(await codeOf(repo.find(eq(people.email, "ben@x.io")))).toBe("ENVELOPE_BAD_INPUT");
    // Ordering by ciphertext would be noise: refused, in any form; plain columns work.
    for (const orderBy of [
      [asc(people.email)],
      [people.phone],
      [asc(people.id), desc(people.born)],
      [sql`lower(${people.email})`],
    ]) {
      expect(await codeOf(repo.find(undefined, { orderBy }))).toBe("ENVELOPE_BAD_INPUT");
    }
    const byName = await repo.find(undefined, {
      orderBy: [desc(people.name), asc(people.email_idx)],
    });
    expect(byName.map((p) => p.id)).toEqual(["cy", "ben", "ann"]);
  });

  it("a cold process reads with one unwrap per record", async () => {
    const cold = encryptedRepository(
      db,
      people,
      createRecordCipher(envelopeWith(kms), peopleSchema, { blindIndex }),
    );
    kms.reset();
    expect(await cold.find()).toHaveLength(3);
    expect(kms.calls.unwrap).toBe(3);
  });

  it("update of one field: no KMS call when cached, other columns byte-identical", async () => {
    const before = await raw(REPO, "ann");
    await repo.findById("ann"); // a read puts the data key in the cache (it is there already)
    kms.reset();
    const after = await repo.update("ann", { phone: "+1 555 0199" });
    expect(kms.calls).toEqual({ wrap: 0, unwrap: 0, generateDataKey: 0 });
    expect(after).toMatchObject({ email: "Ann.Lee@Example.com", phone: "+1 555 0199" });
    const stored = await raw(REPO, "ann");
    expect(stored.phone).not.toBe(before.phone);
    expect(await dumpContains(pg, REPO, "555 0199")).toBe(false);
    for (const f of ["email", "email_idx", "born", "name"]) expect(stored[f]).toBe(before[f]);
    // Plain fields and the blind index follow their changes.
    await repo.update("ann", { email: "ann@new.io", name: "Annie" });
    expect(await repo.findBy("email", "ann.lee@example.com")).toEqual([]);
    expect(await repo.findBy("email", "ANN@new.io")).toMatchObject([{ name: "Annie" }]);
    expect(await repo.update("nobody", { phone: "1" })).toBeUndefined();
    expect(await codeOf(repo.update("ann", { id: "other" }))).toBe("ENVELOPE_BAD_INPUT");
  });

  it("nulls stay null on insert and update", async () => {
    const dee = await repo.insert({ id: "dee", email: null, phone: "+1 555 0102" });
    expect(dee).toEqual({
      id: "dee",
      email: null,
      email_idx: null,
      phone: "+1 555 0102",
      born: null,
      name: null,
    });
    expect(await raw(REPO, "dee")).toMatchObject({ email: null, email_idx: null, born: null });
    const cleared = await repo.update("dee", { phone: null });
    expect(cleared?.phone).toBeNull();
    expect((await raw(REPO, "dee")).phone).toBeNull();
    // A record with no sealed field left gets a fresh data key on its next encrypted write.
    expect(await repo.update("dee", { email: "dee@x.io" })).toMatchObject({ email: "dee@x.io" });
    expect(await repo.findBy("email", "dee@x.io")).toHaveLength(1);
  });

  it("a value swapped between rows fails with a typed error", async () => {
    await pg.query(
      `UPDATE ${REPO} SET phone = (SELECT phone FROM ${REPO} WHERE id = 'ben') WHERE id = 'cy'`,
    );
    expect(await codeOf(repo.findById("cy"))).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(await codeOf(repo.find(eq(people.id, "cy")))).toBe("ENVELOPE_DECRYPT_FAILED");
    expect((await repo.findById("ben"))?.phone).toBe("+1 555 0101");
    // Overwriting the foreign value re-seals it under cy's own key without opening it.
    expect(await repo.update("cy", { phone: "1" })).toMatchObject({ id: "cy", phone: "1" });
    // A plaintext value written around the repository is refused on read, too.
    await pg.query(`UPDATE ${REPO} SET phone = '+1 555 0103' WHERE id = 'cy'`);
    expect(await codeOf(repo.findById("cy"))).toBe("ENVELOPE_BAD_FORMAT");
    await pg.query(`DELETE FROM ${REPO} WHERE id = 'cy'`);
  });

  it("truncated indexes collide; findBy drops the false positives after opening", async () => {
    const t = "records_drizzle_collide";
    const tiny = pgTable(t, {
      id: text("id").primaryKey(),
      email: encryptedText("email"),
      email_idx: text("email_idx"),
    });
    await pg.query(`CREATE TABLE ${t} (id text PRIMARY KEY, email text, email_idx text)`);
    const cipher8 = createRecordCipher(
      envelope,
      { table: t, encrypted: ["email"], blindIndexes: { email: { normalize: "email", bits: 8 } } },
      { blindIndex },
    );
    const r = encryptedRepository(db, tiny, cipher8);
    const emails = Array.from({ length: 300 }, (_, i) => `u${i}@x.io`);
    await r.insert(emails.map((email) => ({ id: randomUUID(), email })));
    // 300 values over 256 buckets: by the pigeonhole principle some two share an index.
    const seen = new Map<string, string>();
    const target = emails.find((e) => {
      const idx = cipher8.indexFor("email", e);
      if (seen.has(idx)) return true;
      seen.set(idx, e);
      return false;
    })!;
    const { rows } = await pg.query(`SELECT count(*)::int AS n FROM ${t} WHERE email_idx = $1`, [
      cipher8.indexFor("email", target),
    ]);
    expect(rows[0].n).toBeGreaterThan(1);
    expect((await r.findBy("email", target)).map((u) => u.email)).toEqual([target]);
    await pg.query(`DROP TABLE ${t}`);
  });

  it("an identity id is reserved before sealing", async () => {
    const cipher = createRecordCipher(envelope, { table: IDENTITY, encrypted: ["body"] });
    const t = encryptedRepository(db, tickets, cipher);
    const [one, two] = await t.insert([{ body: "first secret" }, { body: null, status: "open" }]);
    expect(typeof one!.id).toBe("number");
    expect(one).toEqual({ id: one!.id, body: "first secret", status: null });
    expect(two).toEqual({ id: two!.id, body: null, status: "open" });
    expect(await t.findById(one!.id)).toEqual(one);
    expect(await dumpContains(pg, IDENTITY, "first secret")).toBe(false);
    expect(await t.update(two!.id, { body: "second secret" })).toMatchObject({
      body: "second secret",
    });
    const noSequence = encryptedRepository(db, people, peopleCipher);
    expect(await codeOf(noSequence.insert({ email: "x@x.io" } as never))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
  });

  it("master key rotation: update moves a stale row whole, and a concurrent write survives", async () => {
    const oldKey = counted();
    const newKey = counted();
    const onOld = createRecordCipher(envelopeWith(oldKey), peopleSchema, { blindIndex });
    const rotated = createRecordCipher(envelopeWith(newKey, [oldKey]), peopleSchema, {
      blindIndex,
    });
    const before = encryptedRepository(db, people, onOld);
    await before.insert([
      { id: "rot-a", email: "a@x.io", phone: "1", born: new Date(0) },
      { id: "rot-b", email: "b@x.io", phone: "1", born: null },
    ]);
    const keysOf = async (id: string) => {
      const row = await raw(REPO, id);
      return ["email", "phone", "born"].map((f) =>
        row[f] === null ? null : inspectEnvelope(row[f]).entries[0]?.keyRef,
      );
    };

    const a = await encryptedRepository(db, people, rotated).update("rot-a", { phone: "2" });
    expect(a).toMatchObject({ email: "a@x.io", phone: "2", born: new Date(0) });
    expect(await keysOf("rot-a")).toEqual([newKey.keyRef, newKey.keyRef, newKey.keyRef]);

    // A process still on the old key changes b's email between this update's read and its
    // write: the re-sealed write must not put the old email back.
    let raced = false;
    const racy = {
      async query(config: string | { text: string }, values?: unknown[]) {
        const text = typeof config === "string" ? config : config.text;
        if (!raced && /^update/i.test(text)) {
          raced = true;
          await before.update("rot-b", { email: "b2@x.io" });
        }
        return pg.query(config as string, values);
      },
    };
    const racyDb = drizzle({ client: racy as unknown as pgLib.Pool });
    const b = await encryptedRepository(racyDb, people, rotated).update("rot-b", { phone: "2" });
    expect(raced).toBe(true);
    expect(b).toMatchObject({ email: "b2@x.io", phone: "2", born: null });
    expect(await keysOf("rot-b")).toEqual([newKey.keyRef, newKey.keyRef, null]);
    expect(await encryptedRepository(db, people, rotated).findBy("email", "b2@x.io")).toHaveLength(
      1,
    );
  });

  it("refuses a cipher whose fields are not columns of the table", () => {
    const other = createRecordCipher(envelope, { table: REPO, encrypted: ["ssn"] });
    expect(() => encryptedRepository(db, people, other as never)).toThrow(
      expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }),
    );
    // @ts-expect-error ssn is not a column of the table
    expect(() => encryptedRepository(db, people, other)).toThrow(/"ssn"/);
  });
});
