import { randomUUID } from "node:crypto";
import { EnvelopeError } from "@envelope/core";
import { eq, inArray } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { pgTable, serial, text } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encryptedBytes, encryptedText } from "../src/drizzle.js";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { counted, dumpContains, envelopeWith, INDEX_KEY_1, pool } from "./support.js";

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
  await pg.query(`DROP TABLE IF EXISTS ${TABLE}, records_drizzle_counter`);
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
