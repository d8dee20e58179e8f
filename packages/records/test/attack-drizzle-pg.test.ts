/**
 * The database-writing attacker with an encrypt-only key against encryptedRepository
 * (Drizzle) and encryptedPg, on PostgreSQL. Each test asserts the secure behaviour.
 */
import { randomUUID } from "node:crypto";
import { drizzle } from "drizzle-orm/node-postgres";
import { pgTable, text } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encryptedRepository, encryptedText } from "../src/drizzle.js";
import { createBlindIndexer, createRecordCipher, encryptedPg } from "../src/index.js";
import { appEnvelope, codeOf, knownKeyReads, plant } from "./attack-support.js";
import { INDEX_KEY_1, pool, usePgSchema } from "./support.js";

usePgSchema();

type Row = Record<string, unknown>;
const FIELDS = ["email", "phone", "ssn"] as const;
const MISMATCH = "ENVELOPE_COMMITMENT_MISMATCH";
const DRIZZLE = "ormatk_drizzle_users";
const PG = "ormatk_pg_users";

const table = pgTable(DRIZZLE, {
  id: text("id").primaryKey(),
  email: encryptedText("email"),
  email_idx: text("email_idx"),
  phone: encryptedText("phone"),
  ssn: encryptedText("ssn"),
});
const db = pool();
const schemaOf = (t: string) => ({
  table: t,
  encrypted: [...FIELDS],
  blindIndexes: { email: { normalize: "email" as const } },
});
const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });

beforeAll(async () => {
  for (const t of [DRIZZLE, PG]) {
    await db.query(
      `CREATE TABLE ${t} (id text PRIMARY KEY, email text, email_idx text, phone text, ssn text)`,
    );
  }
});
afterAll(async () => {
  await db.query(`DROP TABLE IF EXISTS ${DRIZZLE}, ${PG}`);
  await db.end();
});

/** The two integrations behind one interface, to run every attack on both. */
interface Target {
  name: string;
  table: string;
  insert(r: Row): Promise<unknown>;
  update(id: string, changes: Row): Promise<Row | undefined>;
  findById(id: string): Promise<unknown>;
  list(ids: string[]): Promise<Row[]>;
  findBy(value: string): Promise<Row[]>;
}

const drizzleTarget = (): Target => {
  const repo = encryptedRepository(
    drizzle(db),
    table,
    createRecordCipher(appEnvelope(), schemaOf(DRIZZLE), { blindIndex }),
  );
  return {
    name: "Drizzle encryptedRepository",
    table: DRIZZLE,
    insert: (r) => repo.insert(r as never),
    update: (id, c) => repo.update(id, c as never) as Promise<Row | undefined>,
    findById: (id) => repo.findById(id),
    list: async (ids) => (await repo.find()).filter((r) => ids.includes(r.id)) as Row[],
    findBy: (v) => repo.findBy("email", v) as Promise<Row[]>,
  };
};
const pgTarget = (): Target => {
  const repo = encryptedPg(db, createRecordCipher(appEnvelope(), schemaOf(PG), { blindIndex }));
  return {
    name: "encryptedPg",
    table: PG,
    insert: (r) => repo.insert(PG, r),
    update: (id, c) => repo.update(PG, id, c),
    findById: (id) => repo.findById(PG, id),
    list: (ids) => repo.findMany(PG).then((rows) => rows.filter((r) => ids.includes(String(r.id)))),
    findBy: (v) => repo.findByBlindIndex(PG, "email", v),
  };
};

describe.each([drizzleTarget(), pgTarget()])("attacks on $name (PostgreSQL)", (target) => {
  const T = target.table;
  const poke = async (id: string, set: Row) => {
    const cols = Object.keys(set);
    await db.query(
      `UPDATE ${T} SET ${cols.map((c, i) => `${c} = $${i + 1}`).join(", ")} WHERE id = $${cols.length + 1}`,
      [...Object.values(set), id],
    );
  };
  const stored = async (id: string): Promise<Row> =>
    (await db.query(`SELECT * FROM ${T} WHERE id = $1`, [id])).rows[0]!;
  const create = async (values: Row) => {
    const id = randomUUID();
    await target.insert({ id, ...values });
    return id;
  };

  describe("1. planted data key, then the app's partial update", () => {
    it("planted first field: update({ phone }) seals nothing under the known key", async () => {
      const id = await create({ email: "ann@example.com", phone: "+1 555 0100" });
      const { sealed, known } = await plant(T, id, "email", "ann@example.com");
      await poke(id, { email: sealed });
      expect(await target.update(id, { phone: "+1 555 0199" })).toMatchObject({
        email: "ann@example.com",
        phone: "+1 555 0199",
      });
      expect(await knownKeyReads(known, T, await stored(id), FIELDS)).toEqual({
        email: MISMATCH,
        phone: MISMATCH,
        ssn: "null",
      });
      // The index follows the re-sealed email: still found.
      expect((await target.findBy("ann@example.com")).map((r) => r.id)).toEqual([id]);
    });

    it("planted second field (first is the app's own key): the new value is not under the known key", async () => {
      const id = await create({ email: "cy@example.com", phone: "+1 555 0102" });
      const { sealed, known } = await plant(T, id, "phone", "+1 555 6666");
      await poke(id, { phone: sealed });
      await target.update(id, { ssn: "078-05-1121" });
      const reads = await knownKeyReads(known, T, await stored(id), FIELDS);
      expect(reads.ssn).toBe(MISMATCH);
      expect(reads.email).toBe(MISMATCH);
    });

    it("a planted field with the wrong context for this row: update refused typed, nothing written", async () => {
      const id = await create({ email: "dot@example.com" });
      const { sealed } = await plant(T, "another-row", "email", "dot@example.com");
      await poke(id, { email: sealed });
      const before = await stored(id);
      expect(await codeOf(target.update(id, { phone: "1" }))).toBe("ENVELOPE_DECRYPT_FAILED");
      expect(await stored(id)).toEqual(before);
    });
  });

  describe("2. planted into a null column", () => {
    it("email was null; the attacker plants one: update({ phone }) is not under the known key", async () => {
      const id = await create({ email: null, phone: "+1 555 0105" });
      const { sealed, known } = await plant(T, id, "email", "planted@evil.example");
      await poke(id, { email: sealed });
      await target.update(id, { phone: "+1 555 0196" });
      const reads = await knownKeyReads(known, T, await stored(id), FIELDS);
      expect(reads.phone).toBe(MISMATCH);
      expect(reads.email).toBe(MISMATCH);
    });

    it("every field null but a planted one: update({ phone }) is not under the known key", async () => {
      const id = await create({ email: null, phone: null });
      const { sealed, known } = await plant(T, id, "ssn", "000-00-0000");
      await poke(id, { ssn: sealed });
      await target.update(id, { phone: "+1 555 0195" });
      expect((await knownKeyReads(known, T, await stored(id), FIELDS)).phone).toBe(MISMATCH);
    });
  });

  describe("3. cross-row paste", () => {
    it("row X's sealed email pasted into row Y: findById, list reads and update of Y fail typed", async () => {
      const x = await create({ email: "xavier@example.com", phone: "+1 555 0110" });
      const y = await create({ email: "yann@example.com", phone: "+1 555 0111" });
      await poke(y, { email: (await stored(x)).email });
      expect(await codeOf(target.findById(y))).toBe("ENVELOPE_DECRYPT_FAILED");
      expect(await codeOf(target.list([x, y]))).toBe("ENVELOPE_DECRYPT_FAILED");
      const before = await stored(y);
      expect(await codeOf(target.update(y, { phone: "1" }))).toBe("ENVELOPE_DECRYPT_FAILED");
      expect(await stored(y)).toEqual(before);
      // Clean up so later list reads of this table are not poisoned.
      await db.query(`DELETE FROM ${T} WHERE id = $1`, [y]);
    });

    it("X's email and email_idx pasted into Y: findBy(X's email) rejects typed, never returns Y as X", async () => {
      const x = await create({ email: "xena@example.com" });
      const y = await create({ email: "yuri@example.com" });
      const sx = await stored(x);
      await poke(y, { email: sx.email, email_idx: sx.email_idx });
      expect(await codeOf(target.findBy("xena@example.com"))).toBe("ENVELOPE_DECRYPT_FAILED");
      await db.query(`DELETE FROM ${T} WHERE id = $1`, [y]);
    });
  });

  describe("4. primary key change", () => {
    it("update(id, { id: other }) is refused typed; the row is unchanged", async () => {
      const id = await create({ email: "pk@example.com", phone: "+1 555 0120" });
      const before = await stored(id);
      expect(await codeOf(target.update(id, { id: randomUUID() }))).toBe("ENVELOPE_BAD_INPUT");
      expect(await codeOf(target.update(id, { id: randomUUID(), phone: "2" }))).toBe(
        "ENVELOPE_BAD_INPUT",
      );
      expect(await stored(id)).toEqual(before);
    });

    it("the attacker renames a row's id: its values do not open under the new id (typed)", async () => {
      const id = await create({ email: "mv@example.com" });
      const other = randomUUID();
      await poke(id, { id: other });
      expect(await codeOf(target.findById(other))).toBe("ENVELOPE_DECRYPT_FAILED");
      await db.query(`DELETE FROM ${T} WHERE id = $1`, [other]);
    });
  });

  describe("5. blind index tampering", () => {
    it("Y's email_idx pointed at X's: findBy(X's email) returns X only", async () => {
      const x = await create({ email: "xia@example.com" });
      const y = await create({ email: "yara@example.com" });
      await poke(y, { email_idx: (await stored(x)).email_idx });
      const found = await target.findBy("XIA@example.com");
      expect(found.map((r) => r.id)).toEqual([x]);
      expect(found[0]!.email).toBe("xia@example.com");
    });

    it("an update of Y's email recomputes its index from the value it seals", async () => {
      const x = await create({ email: "xo@example.com" });
      const y = await create({ email: "ya@example.com" });
      await poke(y, { email_idx: (await stored(x)).email_idx });
      await target.update(y, { email: "ya2@example.com" });
      expect((await target.findBy("ya2@example.com")).map((r) => r.id)).toEqual([y]);
      expect((await target.findBy("xo@example.com")).map((r) => r.id)).toEqual([x]);
    });
  });
});
