/**
 * The database-writing attacker with an encrypt-only key against encryptEntity (TypeORM),
 * on PostgreSQL and MariaDB. Each test asserts the secure behaviour.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { DataSource, EntitySchema, In } from "typeorm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { encryptEntity } from "../src/typeorm.js";
import { appEnvelope, codeOf, knownKeyReads, MYSQL_URL, plant } from "./attack-support.js";
import { INDEX_KEY_1, PG_URL, usePgSchema } from "./support.js";

usePgSchema();

type Row = Record<string, unknown>;
const FIELDS = ["email", "phone", "ssn"] as const;
const MISMATCH = "ENVELOPE_COMMITMENT_MISMATCH";
/** save() goes through (it was refused before the fix of attack-typeorm-resave.test.ts). */
const SAVED = /^resolved$/;

class Victim {
  id!: string;
  email!: string | null;
  email_idx?: string | null;
  phone!: string | null;
  ssn!: string | null;
  name?: string | null;
}

describe.each([
  { type: "postgres" as const, url: PG_URL },
  { type: "mariadb" as const, url: MYSQL_URL },
])("attacks on TypeORM ($type)", ({ type, url }) => {
  const TABLE = `ormatk_typeorm_${randomBytes(4).toString("hex")}`;
  const Victims = new EntitySchema<Victim>({
    name: "Victim",
    target: Victim,
    tableName: TABLE,
    columns: {
      id: { type: String, length: 64, primary: true },
      email: { type: "text", nullable: true },
      email_idx: { type: String, length: 64, nullable: true },
      phone: { type: "text", nullable: true },
      ssn: { type: "text", nullable: true },
      name: { type: String, length: 64, nullable: true },
    },
  });
  let ds: DataSource;
  let victims: ReturnType<typeof encryptEntity<Victim, "email" | "phone" | "ssn">>;
  const p = (i: number) => (type === "postgres" ? `$${i}` : "?");
  const t = () => ds.driver.escape(TABLE);

  /** The attacker's write: raw SQL, no subscriber. */
  const poke = async (id: string, set: Row) => {
    const cols = Object.keys(set);
    await ds.query(
      `UPDATE ${t()} SET ${cols.map((c, i) => `${ds.driver.escape(c)} = ${p(i + 1)}`).join(", ")} WHERE id = ${p(cols.length + 1)}`,
      [...Object.values(set), id],
    );
  };
  const stored = async (id: string): Promise<Row> => {
    const rows = (await ds.query(`SELECT * FROM ${t()} WHERE id = ${p(1)}`, [id])) as Row[];
    return rows[0]!;
  };
  const repo = () => ds.getRepository(Victim);
  const create = async (values: Partial<Victim>) => {
    const id = randomUUID();
    await repo().save(repo().create({ id, ...values }));
    return id;
  };

  beforeAll(async () => {
    ds = await new DataSource({
      type,
      url,
      entities: [Victims],
      synchronize: true,
      logging: false,
    }).initialize();
    victims = encryptEntity(
      ds,
      Victim,
      createRecordCipher(
        appEnvelope(),
        { table: TABLE, encrypted: [...FIELDS], blindIndexes: { email: { normalize: "email" } } },
        { blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }) },
      ),
    );
  });
  afterAll(async () => {
    await ds.query(`DROP TABLE IF EXISTS ${t()}`);
    await ds.destroy();
  });

  describe("1. planted data key, then the app's save", () => {
    it("planted first field, entity loaded after the plant: save of a new phone is not under the known key", async () => {
      const id = await create({ email: "ann@example.com", phone: "+1 555 0100" });
      const { sealed, known } = await plant(TABLE, id, "email", "ann@example.com");
      await poke(id, { email: sealed });
      const ann = (await repo().findOneBy({ id }))!;
      ann.phone = "+1 555 0199";
      // The record moves whole to a fresh key (see attack-typeorm-resave.test.ts): nothing
      // new is under the known key.
      expect(await codeOf(repo().save(ann))).toMatch(SAVED);
      expect((await knownKeyReads(known, TABLE, await stored(id), FIELDS)).phone).toBe(MISMATCH);
    });

    it("entity loaded BEFORE the plant, then save(): the stored planted key is not reused", async () => {
      const id = await create({ email: "bob@example.com", phone: "+1 555 0101" });
      const bob = (await repo().findOneBy({ id }))!;
      const { sealed, known } = await plant(TABLE, id, "email", "bob@example.com");
      await poke(id, { email: sealed });
      bob.ssn = "078-05-1120";
      const saved = await codeOf(repo().save(bob));
      expect(saved).toMatch(SAVED);
      const reads = await knownKeyReads(known, TABLE, await stored(id), FIELDS);
      expect(reads.ssn).toBe(saved === "resolved" ? MISMATCH : "null");
    });

    it("planted second field (first is the app's own key): the new value is not under the known key", async () => {
      const id = await create({ email: "cy@example.com", phone: "+1 555 0102" });
      const { sealed, known } = await plant(TABLE, id, "phone", "+1 555 6666");
      await poke(id, { phone: sealed });
      const cy = (await repo().findOneBy({ id }))!;
      cy.ssn = "078-05-1121";
      await repo().save(cy);
      const reads = await knownKeyReads(known, TABLE, await stored(id), FIELDS);
      expect(reads.ssn).toBe(MISMATCH);
      expect(reads.email).toBe(MISMATCH);
    });

    it("save of a plain object (not loaded): not under the known key", async () => {
      const id = await create({ email: "dan@example.com", phone: "+1 555 0103" });
      const { sealed, known } = await plant(TABLE, id, "email", "dan@example.com");
      await poke(id, { email: sealed });
      expect(await codeOf(repo().save({ id, phone: "+1 555 0198" }))).toMatch(SAVED);
      expect((await knownKeyReads(known, TABLE, await stored(id), FIELDS)).phone).toBe(MISMATCH);
    });
  });

  describe("2. planted field not selected, or planted into a null column", () => {
    it("select: id, phone (email planted, not selected): save of a new phone is not under the known key", async () => {
      const id = await create({ email: "dee@example.com", phone: "+1 555 0104" });
      const { sealed, known } = await plant(TABLE, id, "email", "dee@example.com");
      await poke(id, { email: sealed });
      const dee = (await repo().findOne({ where: { id }, select: { id: true, phone: true } }))!;
      dee.phone = "+1 555 0197";
      expect(await codeOf(repo().save(dee))).toMatch(SAVED);
      expect((await knownKeyReads(known, TABLE, await stored(id), FIELDS)).phone).toBe(MISMATCH);
    });

    it("email was null; the attacker plants one: save of a new phone is not under the known key", async () => {
      const id = await create({ email: null, phone: "+1 555 0105" });
      const { sealed, known } = await plant(TABLE, id, "email", "planted@evil.example");
      await poke(id, { email: sealed });
      const e = (await repo().findOneBy({ id }))!;
      e.phone = "+1 555 0196";
      await repo().save(e);
      const reads = await knownKeyReads(known, TABLE, await stored(id), FIELDS);
      expect(reads.phone).toBe(MISMATCH);
      expect(reads.email).toBe(MISMATCH);
    });

    it("every field null but a planted one: save of a new phone is not under the known key", async () => {
      const id = await create({ email: null, phone: null });
      const { sealed, known } = await plant(TABLE, id, "ssn", "000-00-0000");
      await poke(id, { ssn: sealed });
      await repo().save({ id, phone: "+1 555 0195" });
      const reads = await knownKeyReads(known, TABLE, await stored(id), FIELDS);
      expect(reads.phone).toBe(MISMATCH);
    });
  });

  describe("3. cross-row paste", () => {
    it("row X's sealed email pasted into row Y: reads of Y fail typed, never X's email or null", async () => {
      const x = await create({ email: "xavier@example.com", phone: "+1 555 0110" });
      const y = await create({ email: "yann@example.com", phone: "+1 555 0111" });
      await poke(y, { email: (await stored(x)).email });
      expect(await codeOf(repo().findOneBy({ id: y }))).toBe("ENVELOPE_DECRYPT_FAILED");
      expect(await codeOf(repo().find({ where: { id: In([x, y]) } }))).toBe(
        "ENVELOPE_DECRYPT_FAILED",
      );
      expect(
        await codeOf(repo().find({ where: { id: In([x, y]) }, select: { id: true, email: true } })),
      ).toBe("ENVELOPE_DECRYPT_FAILED");
      expect(await codeOf(repo().createQueryBuilder("v").where("v.id = :y", { y }).getMany())).toBe(
        "ENVELOPE_DECRYPT_FAILED",
      );
    });

    it("X's email and email_idx pasted into Y: findBy(X's email) rejects typed, never returns Y as X", async () => {
      const x = await create({ email: "xena@example.com" });
      const y = await create({ email: "yuri@example.com" });
      const sx = await stored(x);
      await poke(y, { email: sx.email, email_idx: sx.email_idx });
      expect(await codeOf(victims.findBy("email", "xena@example.com"))).toBe(
        "ENVELOPE_DECRYPT_FAILED",
      );
    });

    it("a save of Y with a pasted field is refused typed and writes nothing", async () => {
      const x = await create({ email: "xu@example.com" });
      const y = await create({ email: "yo@example.com", phone: "+1 555 0112" });
      const yEntity = (await repo().findOneBy({ id: y }))!;
      await poke(y, { email: (await stored(x)).email });
      const before = await stored(y);
      yEntity.phone = "+1 555 0113";
      expect(await codeOf(repo().save(yEntity))).toBe("ENVELOPE_DECRYPT_FAILED");
      expect(await stored(y)).toEqual(before);
    });
  });

  describe("4. primary key change", () => {
    it("a loaded entity given a new id and saved: TypeORM inserts a new row, sealed under the new id; both read", async () => {
      const id = await create({ email: "pk@example.com", phone: "+1 555 0120" });
      const e = (await repo().findOneBy({ id }))!;
      const other = randomUUID();
      e.id = other;
      e.phone = "+1 555 0121";
      await repo().save(e);
      expect(await repo().findOneBy({ id: other })).toMatchObject({
        email: "pk@example.com",
        phone: "+1 555 0121",
      });
      expect(await repo().findOneBy({ id })).toMatchObject({ phone: "+1 555 0120" });
    });

    it("repository.update(id, { phone }) (a set for many rows) is refused typed", async () => {
      const id = await create({ phone: "+1 555 0122" });
      expect(await codeOf(repo().update(id, { phone: "+1 555 0123" }))).toBe("ENVELOPE_BAD_INPUT");
    });

    it("the attacker renames a row's id: its values do not open under the new id (typed)", async () => {
      const id = await create({ email: "mv@example.com" });
      const other = randomUUID();
      await poke(id, { id: other });
      expect(await codeOf(repo().findOneBy({ id: other }))).toBe("ENVELOPE_DECRYPT_FAILED");
    });
  });

  describe("5. blind index tampering", () => {
    it("Y's email_idx pointed at X's: findBy(X's email) returns X only", async () => {
      const x = await create({ email: "xia@example.com" });
      const y = await create({ email: "yara@example.com" });
      await poke(y, { email_idx: (await stored(x)).email_idx });
      const found = await victims.findBy("email", "XIA@example.com");
      expect(found.map((r) => r.id)).toEqual([x]);
      expect(found[0]!.email).toBe("xia@example.com");
    });

    it("a save of Y's email recomputes its index from the value it seals", async () => {
      const x = await create({ email: "xo@example.com" });
      const y = await create({ email: "ya@example.com" });
      await poke(y, { email_idx: (await stored(x)).email_idx });
      const e = (await repo().findOneBy({ id: y }))!;
      e.email = "ya2@example.com";
      await repo().save(e);
      expect((await victims.findBy("email", "ya2@example.com")).map((r) => r.id)).toEqual([y]);
      expect((await victims.findBy("email", "xo@example.com")).map((r) => r.id)).toEqual([x]);
    });
  });
});
