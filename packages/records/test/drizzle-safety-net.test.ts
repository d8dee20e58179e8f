/**
 * encryptedRepository keeps the safety net the README promises: every encrypted field is an
 * encryptedText / encryptedBytes column, the cipher is for this table, and a `where` naming
 * an encrypted column is refused before any SQL (an `sql` template would otherwise send the
 * plaintext as a parameter).
 */
import { EnvelopeError } from "@envelope/core";
import { and, asc, eq, isNotNull, isNull, like, or, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { pgSchema, pgTable, text } from "drizzle-orm/pg-core";
import type pgLib from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encryptedBytes, encryptedRepository, encryptedText } from "../src/drizzle.js";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { counted, envelopeWith, INDEX_KEY_1, pool, usePgSchema } from "./support.js";

usePgSchema();

const TABLE = "records_drizzle_net_users";
const pg = pool();
/** Every statement Drizzle sends, with its parameters. */
const sent: string[] = [];
const recording = {
  async query(config: string | { text: string; values?: unknown[] }, values?: unknown[]) {
    const text = typeof config === "string" ? config : config.text;
    const params = typeof config === "string" ? values : (config.values ?? values);
    sent.push(JSON.stringify([text, params ?? []]));
    return pg.query(config as string, values);
  },
};
const db = drizzle({ client: recording as unknown as pgLib.Pool });

const usersTable = pgTable(TABLE, {
  id: text("id").primaryKey(),
  email: encryptedText("email"),
  email_idx: text("email_idx"),
  photo: encryptedBytes("photo"),
  name: text("name"),
});
const schema = {
  table: TABLE,
  encrypted: ["email"],
  blindIndexes: { email: { normalize: "email" } },
} as const;
const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
const envelope = envelopeWith(counted());
const users = createRecordCipher(envelope, schema, { blindIndex });
const repo = encryptedRepository(db, usersTable, users);

const errorOf = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
};
const rejectionOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

beforeAll(async () => {
  await pg.query(
    `CREATE TABLE ${TABLE} (id text PRIMARY KEY, email text, email_idx text, photo bytea, name text)`,
  );
  await repo.insert([
    { id: "a", email: "ann@x.io", name: "Ann" },
    { id: "b", email: null, name: "Ben" },
  ]);
});

afterAll(async () => {
  await pg.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await pg.end();
});

describe("encryptedRepository refuses a table without the safety net", () => {
  it("an encrypted field declared as a plain text() column: ENVELOPE_BAD_CONFIG naming it", () => {
    const noEnc = pgTable(TABLE, {
      id: text("id").primaryKey(),
      email: text("email"),
      email_idx: text("email_idx"),
      name: text("name"),
    });
    const error = errorOf(() => encryptedRepository(db, noEnc, users));
    expect(EnvelopeError.isInstance(error), String(error)).toBe(true);
    expect(error).toMatchObject({ code: "ENVELOPE_BAD_CONFIG", details: { field: "email" } });
    expect((error as Error).message).toMatch(/"email"/);
    expect((error as Error).message).toMatch(/encryptedText\("email"\)/);
  });

  it("a second encrypted field in a plain column is named too", () => {
    const both = createRecordCipher(envelope, { table: TABLE, encrypted: ["email", "name"] });
    const error = errorOf(() => encryptedRepository(db, usersTable, both));
    expect(error).toMatchObject({ code: "ENVELOPE_BAD_CONFIG", details: { field: "name" } });
  });

  it("a cipher made for another table: ENVELOPE_BAD_CONFIG naming both tables", () => {
    const customers = createRecordCipher(
      envelope,
      { ...schema, table: "customers" },
      { blindIndex },
    );
    const error = errorOf(() => encryptedRepository(db, usersTable, customers));
    expect(EnvelopeError.isInstance(error), String(error)).toBe(true);
    expect(error).toMatchObject({ code: "ENVELOPE_BAD_CONFIG" });
    expect((error as Error).message).toMatch(/"customers"/);
    expect((error as Error).message).toContain(`"${TABLE}"`);
  });

  it("a schema-qualified Drizzle table takes a cipher named either way", () => {
    const qualified = pgSchema("records_net_app").table(TABLE, {
      id: text("id").primaryKey(),
      email: encryptedText("email"),
      email_idx: text("email_idx"),
    });
    for (const table of [TABLE, `records_net_app.${TABLE}`]) {
      const cipher = createRecordCipher(envelope, { ...schema, table }, { blindIndex });
      expect(() => encryptedRepository(db, qualified, cipher)).not.toThrow();
    }
    const other = createRecordCipher(
      envelope,
      { ...schema, table: `other_app.${TABLE}` },
      { blindIndex },
    );
    expect(errorOf(() => encryptedRepository(db, qualified, other))).toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
    });
  });

  it("encryptedBytes columns are accepted for a binary cipher", () => {
    const photos = createRecordCipher(
      envelope,
      { table: TABLE, encrypted: ["photo"] },
      { output: "binary" },
    );
    expect(() => encryptedRepository(db, usersTable, photos)).not.toThrow();
  });
});

describe("a where naming an encrypted column is refused before any SQL", () => {
  it.each([
    ["sql template", () => sql`${usersTable.email} = ${"LEAK@x.com"}`],
    [
      "sql template, nested in and()",
      () => and(eq(usersTable.name, "Ann"), sql`lower(${usersTable.email}) = ${"LEAK@x.com"}`),
    ],
    ["sql template with sql.param", () => sql`${usersTable.email} = ${sql.param("LEAK@x.com")}`],
    ["eq", () => eq(usersTable.email, "LEAK@x.com")],
    ["like", () => like(usersTable.email, "%LEAK%")],
    ["or", () => or(eq(usersTable.name, "LEAK"), eq(usersTable.email, "LEAK@x.com"))],
  ])("%s: find and findOne reject ENVELOPE_BAD_INPUT, no statement sent", async (_, where) => {
    sent.length = 0;
    for (const p of [repo.find(where()), repo.findOne(where()!)]) {
      const error = await rejectionOf(p);
      expect(EnvelopeError.isInstance(error), String(error)).toBe(true);
      expect(error).toMatchObject({ code: "ENVELOPE_BAD_INPUT", details: { field: "email" } });
      expect((error as Error).message).toMatch(/findBy\("email", value\)/);
      expect((error as Error).message).not.toContain("LEAK");
    }
    expect(sent).toEqual([]);
  });

  it("isNull / isNotNull on an encrypted column still run (NULL is stored as NULL)", async () => {
    expect((await repo.find(isNull(usersTable.email))).map((u) => u.id)).toEqual(["b"]);
    const some = await repo.find(and(isNotNull(usersTable.email), eq(usersTable.name, "Ann")), {
      orderBy: [asc(usersTable.id)],
    });
    expect(some).toEqual([
      { id: "a", email: "ann@x.io", email_idx: some[0]!.email_idx, photo: null, name: "Ann" },
    ]);
  });

  it("in the app's own queries the encryptedText column refuses plaintext (insert, eq)", async () => {
    sent.length = 0;
    const own = [
      async () => db.insert(usersTable).values({ id: "leak", email: "LEAK@x.com" }),
      async () => db.select().from(usersTable).where(eq(usersTable.email, "LEAK@x.com")),
    ];
    for (const query of own) {
      expect(await rejectionOf(query())).toMatchObject({ code: "ENVELOPE_BAD_INPUT" });
    }
    expect(sent).toEqual([]);
  });

  it("a where on plain columns and findBy are unchanged", async () => {
    expect((await repo.findOne(eq(usersTable.name, "Ann")))?.email).toBe("ann@x.io");
    expect((await repo.findBy("email", " ANN@x.io")).map((u) => u.id)).toEqual(["a"]);
  });
});
