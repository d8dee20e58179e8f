import { randomBytes } from "node:crypto";
import { EnvelopeError, localAesProvider } from "@envelope/core";
import { asc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { integer, pgTable, text } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encryptedRepository, encryptedText } from "../src/drizzle.js";
import { createBlindIndexer, createRecordCipher, encryptedPg } from "../src/index.js";
import { envelopeWith, INDEX_KEY_1, pool, usePgSchema, watchedUnwraps } from "./support.js";

usePgSchema();

/**
 * List reads of the pg and Drizzle helpers on a real PostgreSQL: the rows go through
 * `openMany` (one unwrap per record, the cipher's concurrency), and a row that does not
 * open fails the whole read with its typed error.
 */
const TABLE = `records_list_${randomBytes(4).toString("hex")}`;
const ROWS = 30;
const db = pool();
const key = localAesProvider({ keys: randomBytes(32) });
const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
const schema = {
  table: TABLE,
  encrypted: ["email", "phone"],
  blindIndexes: { email: { normalize: "email" } },
} as const;
const people = Array.from({ length: ROWS }, (_, i) => ({
  id: i + 1,
  email: `p${i}@example.com`,
  phone: i % 5 === 0 ? null : `+1 555 ${String(i).padStart(4, "0")}`,
  team: i % 2 === 0 ? "even" : "odd",
}));

/** A cipher on a fresh Envelope (a cold unwrap cache, as in another process). */
function coldCipher(concurrency: number) {
  const watched = watchedUnwraps(key, 5);
  const cipher = createRecordCipher(envelopeWith(watched.provider), schema, {
    blindIndex,
    concurrency,
  });
  return { cipher, seen: watched.seen };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return EnvelopeError.isInstance(e) ? e.code : `untyped: ${String(e)}`;
  }
  return "resolved";
}

beforeAll(async () => {
  await db.query(`CREATE TABLE ${TABLE} (
    id int PRIMARY KEY, email text, email_idx text, phone text, team text)`);
  const sealer = encryptedPg(db, createRecordCipher(envelopeWith(key), schema, { blindIndex }));
  for (const p of people) await sealer.insert(TABLE, p);
});

afterAll(async () => {
  await db.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await db.end();
});

describe("encryptedPg list reads (real PostgreSQL)", () => {
  it("findMany opens every row with one unwrap per record, at most `concurrency` in flight", async () => {
    const { cipher, seen } = coldCipher(4);
    const repo = encryptedPg(db, cipher);
    const all = await repo.findMany(TABLE, { orderBy: "id" });
    expect(all).toEqual(people.map((p) => ({ ...p, email_idx: expect.any(String) })));
    expect(seen.unwraps).toBe(ROWS);
    expect(seen.max).toBeGreaterThan(1);
    expect(seen.max).toBeLessThanOrEqual(4);
  });

  it("findMany filters, sorts and pages on plain columns; refuses encrypted ones", async () => {
    const repo = encryptedPg(db, coldCipher(8).cipher);
    const odd = await repo.findMany<{ id: number; email: string }>(TABLE, {
      where: { team: "odd" },
      orderBy: "id",
      descending: true,
      limit: 3,
      offset: 1,
    });
    expect(odd.map((r) => [r.id, r.email])).toEqual([
      [28, "p27@example.com"],
      [26, "p25@example.com"],
      [24, "p23@example.com"],
    ]);
    expect(await repo.findMany(TABLE, { where: { team: null } })).toEqual([]);
    expect(await codeOf(repo.findMany(TABLE, { where: { email: "p1@example.com" } }))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await codeOf(repo.findMany(TABLE, { orderBy: "phone" }))).toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(repo.findMany(TABLE, { limit: -1 }))).toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(repo.findMany(TABLE, { where: "1=1" as never }))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
  });

  it("a row that does not open fails the whole list read (typed), never a silent partial list", async () => {
    const { cipher } = coldCipher(8);
    const repo = encryptedPg(db, cipher);
    // Row 3 gets row 2's email: a value from another row (its context names id 2).
    const { rows } = await db.query(`SELECT email FROM ${TABLE} WHERE id = 2`);
    const { rows: saved } = await db.query(`SELECT email FROM ${TABLE} WHERE id = 3`);
    await db.query(`UPDATE ${TABLE} SET email = $1 WHERE id = 3`, [rows[0].email]);
    try {
      expect(await codeOf(repo.findMany(TABLE))).toBe("ENVELOPE_DECRYPT_FAILED");
      // The same rows through openMany: only row 3 fails.
      const { rows: stored } = await db.query(`SELECT * FROM ${TABLE} ORDER BY id`);
      const results = await cipher.openMany(stored);
      expect(results.filter((r) => !r.ok)).toHaveLength(1);
      expect(results[2]).toMatchObject({ ok: false, error: { code: "ENVELOPE_DECRYPT_FAILED" } });
      // Rows the failing one does not concern still read.
      expect(await repo.findMany(TABLE, { where: { id: 4 } })).toHaveLength(1);
    } finally {
      await db.query(`UPDATE ${TABLE} SET email = $1 WHERE id = 3`, [saved[0].email]);
    }
  });

  it("findByBlindIndex opens its candidates through openMany too", async () => {
    const { cipher, seen } = coldCipher(2);
    const found = await encryptedPg(db, cipher).findByBlindIndex(TABLE, "email", "P7@Example.com");
    expect(found).toMatchObject([{ id: 8, email: "p7@example.com" }]);
    expect(seen.unwraps).toBe(1);
  });
});

describe("Drizzle repository list reads (real PostgreSQL)", () => {
  const table = pgTable(TABLE, {
    id: integer("id").primaryKey(),
    email: encryptedText("email"),
    email_idx: text("email_idx"),
    phone: encryptedText("phone"),
    team: text("team"),
  });

  it("find opens every row with one unwrap per record, at most `concurrency` in flight", async () => {
    const { cipher, seen } = coldCipher(4);
    const repo = encryptedRepository(drizzle(db), table, cipher);
    const even = await repo.find(eq(table.team, "even"), { orderBy: [asc(table.id)] });
    expect(even.map((r) => r.email)).toEqual(
      people.filter((p) => p.team === "even").map((p) => p.email),
    );
    expect(seen.unwraps).toBe(ROWS / 2);
    expect(seen.max).toBeGreaterThan(1);
    expect(seen.max).toBeLessThanOrEqual(4);
  });

  it("a row that does not open fails the whole find with its typed error", async () => {
    const repo = encryptedRepository(drizzle(db), table, coldCipher(8).cipher);
    const { rows: saved } = await db.query(`SELECT phone FROM ${TABLE} WHERE id = 10`);
    await db.query(`UPDATE ${TABLE} SET phone = 'ev1:not-an-envelope' WHERE id = 10`);
    try {
      expect(await codeOf(repo.find())).toBe("ENVELOPE_BAD_FORMAT");
      expect(await repo.find(eq(table.id, 9))).toHaveLength(1);
    } finally {
      await db.query(`UPDATE ${TABLE} SET phone = $1 WHERE id = 10`, [saved[0].phone]);
    }
  });
});
