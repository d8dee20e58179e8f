/**
 * The database-writing attacker with an encrypt-only key against encryptModel (Sequelize v6),
 * on PostgreSQL and MariaDB. Each test asserts the secure behaviour.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { DataTypes, Model, type ModelStatic, Sequelize } from "sequelize";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { EncryptedText, encryptModel } from "../src/sequelize.js";
import { appEnvelope, codeOf, knownKeyReads, MYSQL_URL, plant } from "./attack-support.js";
import { INDEX_KEY_1, PG_URL, usePgSchema } from "./support.js";

usePgSchema();

type Row = Record<string, unknown>;
const FIELDS = ["email", "phone", "ssn"] as const;
const MISMATCH = "ENVELOPE_COMMITMENT_MISMATCH";

describe.each([
  { dialect: "postgres", url: PG_URL },
  { dialect: "mariadb", url: MYSQL_URL },
])("attacks on Sequelize ($dialect)", ({ url }) => {
  const sequelize = new Sequelize(url, { logging: false });
  const TABLE = `ormatk_sqlz_${randomBytes(4).toString("hex")}`;
  const q = (n: string) => sequelize.getQueryInterface().quoteIdentifier(n);
  class User extends Model {}
  User.init(
    {
      id: { type: DataTypes.STRING(64), primaryKey: true, defaultValue: DataTypes.UUIDV4 },
      email: EncryptedText,
      email_idx: DataTypes.STRING(64),
      phone: EncryptedText,
      ssn: EncryptedText,
      name: DataTypes.STRING,
    },
    { sequelize, modelName: "AtkUser", tableName: TABLE },
  );
  const users = encryptModel(
    User as ModelStatic<Model>,
    createRecordCipher(
      appEnvelope(),
      { table: TABLE, encrypted: [...FIELDS], blindIndexes: { email: { normalize: "email" } } },
      { blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }) },
    ),
  );

  /** The attacker's write: raw SQL, no hooks. */
  const poke = async (id: string, set: Row) => {
    const cols = Object.keys(set);
    await sequelize.query(
      `UPDATE ${q(TABLE)} SET ${cols.map((c) => `${q(c)} = :${c}`).join(", ")} WHERE id = :whereId`,
      { replacements: { ...set, whereId: id } },
    );
  };
  const stored = async (id: string): Promise<Row> => {
    const [rows] = await sequelize.query(`SELECT * FROM ${q(TABLE)} WHERE id = :id`, {
      replacements: { id },
    });
    return (rows as Row[])[0]!;
  };
  const create = async (values: Row) => {
    const id = randomUUID();
    await User.create({ id, ...values });
    return id;
  };

  beforeAll(async () => {
    await User.sync({ force: true });
  });
  afterAll(async () => {
    await sequelize.getQueryInterface().dropTable(TABLE);
    await sequelize.close();
  });

  describe("1. planted data key, then the app's partial update", () => {
    it("planted first field, instance loaded after the plant: update({ phone }) seals nothing under the known key", async () => {
      const id = await create({ email: "ann@example.com", phone: "+1 555 0100" });
      const { sealed, known } = await plant(TABLE, id, "email", "ann@example.com");
      await poke(id, { email: sealed });
      const ann = (await User.findByPk(id))!;
      await ann.update({ phone: "+1 555 0199" });
      const row = await stored(id);
      expect(await knownKeyReads(known, TABLE, row, FIELDS)).toEqual({
        email: MISMATCH,
        phone: MISMATCH,
        ssn: "null",
      });
      expect((await User.findByPk(id))!.get({ plain: true })).toMatchObject({
        email: "ann@example.com",
        phone: "+1 555 0199",
      });
    });

    it("instance loaded BEFORE the plant (stale in memory), then save(): the stored planted key is not reused", async () => {
      const id = await create({ email: "bob@example.com", phone: "+1 555 0101" });
      const bob = (await User.findByPk(id))!;
      const { sealed, known } = await plant(TABLE, id, "email", "bob@example.com");
      await poke(id, { email: sealed });
      bob.set("ssn", "078-05-1120");
      await bob.save();
      const reads = await knownKeyReads(known, TABLE, await stored(id), FIELDS);
      expect(reads.ssn).toBe(MISMATCH);
      expect(reads.email).toBe(MISMATCH);
    });

    it("planted second field (first is the app's own key): the new value is under the app's key", async () => {
      const id = await create({ email: "cy@example.com", phone: "+1 555 0102" });
      const { sealed, known } = await plant(TABLE, id, "phone", "+1 555 6666");
      await poke(id, { phone: sealed });
      await (await User.findByPk(id))!.update({ ssn: "078-05-1121" });
      const reads = await knownKeyReads(known, TABLE, await stored(id), FIELDS);
      expect(reads.ssn).toBe(MISMATCH);
      expect(reads.email).toBe(MISMATCH);
    });
  });

  describe("2. planted field not selected, or planted into a null column", () => {
    it("attributes: ['id', 'phone'] (email not selected, email planted): update({ phone }) is not under the known key", async () => {
      const id = await create({ email: "dee@example.com", phone: "+1 555 0103" });
      const { sealed, known } = await plant(TABLE, id, "email", "dee@example.com");
      await poke(id, { email: sealed });
      const dee = (await User.findOne({ where: { id }, attributes: ["id", "phone"] }))!;
      await dee.update({ phone: "+1 555 0198" });
      const reads = await knownKeyReads(known, TABLE, await stored(id), FIELDS);
      expect(reads.phone).toBe(MISMATCH);
      expect(reads.email).toBe(MISMATCH);
    });

    it("attributes: ['id'] only, then update({ ssn }): not under the known key", async () => {
      const id = await create({ email: "eve@example.com", phone: "+1 555 0104" });
      const { sealed, known } = await plant(TABLE, id, "email", "eve@example.com");
      await poke(id, { email: sealed });
      const eve = (await User.findOne({ where: { id }, attributes: ["id"] }))!;
      await eve.update({ ssn: "078-05-1122" });
      const reads = await knownKeyReads(known, TABLE, await stored(id), FIELDS);
      expect(reads.ssn).toBe(MISMATCH);
    });

    it("email was null; the attacker plants one: update({ phone }) is not under the known key", async () => {
      const id = await create({ email: null, phone: "+1 555 0105" });
      const { sealed, known } = await plant(TABLE, id, "email", "planted@evil.example");
      await poke(id, { email: sealed });
      await (await User.findByPk(id))!.update({ phone: "+1 555 0197" });
      const reads = await knownKeyReads(known, TABLE, await stored(id), FIELDS);
      expect(reads.phone).toBe(MISMATCH);
      expect(reads.email).toBe(MISMATCH);
    });

    it("every field null but a planted one, update via a raw-read id: not under the known key", async () => {
      const id = await create({ email: null, phone: null });
      const { sealed, known } = await plant(TABLE, id, "ssn", "000-00-0000");
      await poke(id, { ssn: sealed });
      const [raw] = (await User.findAll({ where: { id }, raw: true })) as unknown as Row[];
      expect(raw!.ssn).toBe("000-00-0000"); // forgeries read as genuine (no signatures)
      await User.build(raw!, { isNewRecord: false }).update({ phone: "+1 555 0196" });
      const reads = await knownKeyReads(known, TABLE, await stored(id), FIELDS);
      expect(reads.phone).toBe(MISMATCH);
    });
  });

  describe("3. cross-row paste", () => {
    it("row X's sealed email pasted into row Y: every read of Y fails typed, never X's email or null", async () => {
      const x = await create({ email: "xavier@example.com", phone: "+1 555 0110" });
      const y = await create({ email: "yann@example.com", phone: "+1 555 0111" });
      await poke(y, { email: (await stored(x)).email });
      expect(await codeOf(User.findByPk(y))).toBe("ENVELOPE_DECRYPT_FAILED");
      expect(await codeOf(User.findAll({ where: { id: [x, y] } }))).toBe("ENVELOPE_DECRYPT_FAILED");
      expect(await codeOf(User.findAll({ where: { id: [x, y] }, raw: true }))).toBe(
        "ENVELOPE_DECRYPT_FAILED",
      );
      expect(await codeOf(User.findOne({ where: { id: y }, attributes: ["id", "email"] }))).toBe(
        "ENVELOPE_DECRYPT_FAILED",
      );
      // Not selecting the pasted column reads the rest.
      const partial = await User.findOne({ where: { id: y }, attributes: ["id", "phone"] });
      expect(partial!.get("phone")).toBe("+1 555 0111");
    });

    it("X's email and email_idx pasted into Y: findBy(X's email) rejects typed, never returns Y as X", async () => {
      const x = await create({ email: "xena@example.com" });
      const y = await create({ email: "yuri@example.com" });
      const sx = await stored(x);
      await poke(y, { email: sx.email, email_idx: sx.email_idx });
      expect(await codeOf(users.findBy("email", "xena@example.com"))).toBe(
        "ENVELOPE_DECRYPT_FAILED",
      );
    });

    it("an update of Y with a pasted field is refused typed and writes nothing", async () => {
      const x = await create({ email: "xu@example.com" });
      const y = await create({ email: "yo@example.com", phone: "+1 555 0112" });
      const yInstance = (await User.findByPk(y))!;
      await poke(y, { email: (await stored(x)).email });
      const before = await stored(y);
      expect(await codeOf(yInstance.update({ phone: "+1 555 0113" }))).toBe(
        "ENVELOPE_DECRYPT_FAILED",
      );
      expect(await stored(y)).toEqual(before);
    });
  });

  describe("4. primary key change", () => {
    it("instance.update({ id, phone }): Sequelize ignores a set of a loaded primary key; the phone lands under the original id, readable", async () => {
      const id = await create({ email: "pk@example.com", phone: "+1 555 0120" });
      const i = (await User.findByPk(id))!;
      const other = randomUUID();
      await i.update({ id: other, phone: "+1 555 0121" });
      expect(await User.findByPk(other)).toBeNull();
      expect((await User.findByPk(id))!.get({ plain: true })).toMatchObject({
        email: "pk@example.com",
        phone: "+1 555 0121",
      });
    });

    it("the attacker renames a row's id: its values do not open under the new id (typed)", async () => {
      const id = await create({ email: "mv@example.com" });
      const other = randomUUID();
      await poke(id, { id: other });
      expect(await codeOf(User.findByPk(other))).toBe("ENVELOPE_DECRYPT_FAILED");
    });
  });

  describe("5. blind index tampering", () => {
    it("Y's email_idx pointed at X's: findBy(X's email) returns X only", async () => {
      const x = await create({ email: "xia@example.com" });
      const y = await create({ email: "yara@example.com" });
      await poke(y, { email_idx: (await stored(x)).email_idx });
      const found = await users.findBy("email", "XIA@example.com");
      expect(found.map((r) => r.get("id"))).toEqual([x]);
      expect(found[0]!.get("email")).toBe("xia@example.com");
      // And Y is no longer found by its own email (the index is the attacker's to break).
      expect(await users.findBy("email", "yara@example.com")).toEqual([]);
    });

    it("an update of Y's email recomputes its index from the value it seals", async () => {
      const x = await create({ email: "xo@example.com" });
      const y = await create({ email: "ya@example.com" });
      await poke(y, { email_idx: (await stored(x)).email_idx });
      await (await User.findByPk(y))!.update({ email: "ya2@example.com" });
      expect((await users.findBy("email", "ya2@example.com")).map((r) => r.get("id"))).toEqual([y]);
      expect((await users.findBy("email", "xo@example.com")).map((r) => r.get("id"))).toEqual([x]);
    });
  });
});
