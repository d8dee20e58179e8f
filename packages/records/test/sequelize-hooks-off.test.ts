import { randomBytes, randomUUID } from "node:crypto";
import { EnvelopeError } from "@envelope/core";
import { DataTypes, Model, type ModelStatic, QueryTypes, Sequelize } from "sequelize";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { EncryptedText, encryptModel } from "../src/sequelize.js";
import { counted, envelopeWith, INDEX_KEY_1, MYSQL_URL, PG_URL, usePgSchema } from "./support.js";

usePgSchema();

const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });

type Row = Record<string, unknown>;
const errorOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    if (EnvelopeError.isInstance(e)) return { code: e.code, message: e.message };
    return { code: `not an EnvelopeError: ${String(e)}`, message: "" };
  }
  return { code: "resolved", message: "" };
};
const codeOf = async (p: Promise<unknown>) => (await errorOf(p)).code;

describe.each([
  { dialect: "postgres", url: PG_URL },
  { dialect: "mariadb (mysql2)", url: MYSQL_URL },
])("Sequelize v6 writes that skip the hooks, on $dialect", ({ url }) => {
  const sequelize = new Sequelize(url, { logging: false });
  const TABLE = `grd_sqlz_members_${randomBytes(4).toString("hex")}`;
  const q = (name: string) => sequelize.getQueryInterface().quoteIdentifier(name);
  class Member extends Model {}
  Member.init(
    {
      id: { type: DataTypes.STRING(64), primaryKey: true, defaultValue: DataTypes.UUIDV4 },
      email: EncryptedText,
      email_idx: DataTypes.STRING(64),
      // Stored under another column name: checked by its column too.
      phone: { type: EncryptedText, field: "phone_enc" },
      name: DataTypes.STRING,
    },
    { sequelize, modelName: "GuardMember", tableName: TABLE },
  );
  const members = encryptModel(
    Member as ModelStatic<Model>,
    createRecordCipher(
      envelopeWith(counted()),
      {
        table: TABLE,
        encrypted: ["email", "phone"] as const,
        blindIndexes: { email: { normalize: "email" as const } },
      },
      { blindIndex },
    ),
  );
  const rows = async () =>
    (await sequelize.query(`SELECT * FROM ${q(TABLE)}`, { type: QueryTypes.SELECT })) as Row[];
  const dumpHas = async (needle: string) =>
    (await rows()).some((r) => JSON.stringify(r).includes(needle));
  const off = { hooks: false };
  const stamps = () => ({ createdAt: new Date(), updatedAt: new Date() });

  beforeAll(async () => {
    await Member.sync({ force: true });
  });
  afterAll(async () => {
    await sequelize.getQueryInterface().dropTable(TABLE);
    await sequelize.close();
  });

  it("hooks: false with plaintext (create, bulkCreate, save of a new or a loaded instance, Model.update, upsert) is refused; nothing is written", async () => {
    const refusal = await errorOf(Member.create({ email: "c@x.io" }, off));
    expect(refusal.code).toBe("ENVELOPE_BAD_INPUT");
    expect(refusal.message).toMatch(/hooks/);
    expect(refusal.message).not.toMatch(/c@x\.io/);
    expect(await codeOf(Member.bulkCreate([{ email: "bulk@x.io" }], off))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await codeOf(Member.bulkCreate([{ phone: "555 0101" }], off))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await codeOf(Member.build({ email: "build@x.io" }).save(off))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await codeOf(Member.upsert({ id: randomUUID(), email: "ups@x.io" }, off))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    const kept = await Member.create({ email: "kept@x.io", phone: "1" });
    const id = kept.get("id") as string;
    kept.set("phone", "555 0102");
    expect(await codeOf(kept.save(off))).toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(Member.update({ email: "upd@x.io" }, { where: { id }, ...off }))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    // The `ev1:` prefix alone is not a sealed value.
    expect(await codeOf(Member.create({ email: "ev1:fake@x.io" }, off))).toBe("ENVELOPE_BAD_INPUT");
    for (const needle of ["c@x.io", "bulk@", "555 0101", "build@", "ups@", "555 0102", "upd@"]) {
      expect(await dumpHas(needle)).toBe(false);
    }
    expect(await dumpHas("fake@x.io")).toBe(false);
    expect((await rows()).map((r) => r.id)).toEqual([id]);
    expect((await Member.findByPk(id))?.get("phone")).toBe("1");
  });

  it("SQL values (literal, fn) for an encrypted attribute are refused with hooks off or on; nothing is written", async () => {
    const literal = sequelize.literal("'lit@x.io'");
    const fn = sequelize.fn("lower", "FN@X.IO");
    expect(await codeOf(Member.create({ email: literal }, off))).toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(Member.create({ phone: fn }, off))).toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(Member.create({ email: literal }))).toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(Member.bulkCreate([{ email: literal }], off))).toBe("ENVELOPE_BAD_INPUT");
    const row = await Member.create({ email: "row@x.io" });
    const where = { id: row.get("id") as string };
    expect(await codeOf(Member.update({ email: fn }, { where, ...off }))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await codeOf(Member.update({ phone: literal }, { where }))).toBe("ENVELOPE_BAD_INPUT");
    expect(await dumpHas("lit@x.io")).toBe(false);
    expect(await dumpHas("fn@x.io")).toBe(false);
    expect((await Member.findByPk(where.id))?.get("email")).toBe("row@x.io");
  });

  it("SQL values (literal, fn, col, cast, where) for an encrypted attribute without a blind index are refused with hooks on: create, bulkCreate, save, instance.update; nothing is sealed or written", async () => {
    const sqlValues = [
      sequelize.literal("'lit-phone'"),
      sequelize.fn("lower", "FN-PHONE"),
      sequelize.col("name"),
      sequelize.cast("cast-phone", "text"),
      sequelize.where(sequelize.col("name"), "where-phone"),
    ];
    const before = (await rows()).length;
    for (const value of sqlValues) {
      const refusal = await errorOf(Member.create({ phone: value, name: "sqlv" }));
      expect(refusal.code).toBe("ENVELOPE_BAD_INPUT");
      expect(refusal.message).toMatch(/SQL value/);
      expect(refusal.message).toMatch(/phone/);
      expect(await codeOf(Member.build({ phone: value }).save())).toBe("ENVELOPE_BAD_INPUT");
      expect(
        await codeOf(Member.bulkCreate([{ phone: "555 0110" }, { email: "b@x.io", phone: value }])),
      ).toBe("ENVELOPE_BAD_INPUT");
      expect(await codeOf(Member.bulkCreate([{ phone: value }], { individualHooks: true }))).toBe(
        "ENVELOPE_BAD_INPUT",
      );
      expect(await codeOf(Member.create({ email: value }))).toBe("ENVELOPE_BAD_INPUT");
    }
    expect((await rows()).length).toBe(before);
    expect(await dumpHas("555 0110")).toBe(false);
    const kept = await Member.create({ email: "sqlv@x.io", phone: "555 0111", name: "sqlv" });
    const id = kept.get("id") as string;
    const stored = (await rows()).find((r) => r.id === id);
    for (const value of sqlValues) {
      expect(await codeOf(kept.update({ phone: value }))).toBe("ENVELOPE_BAD_INPUT");
      expect(await codeOf(kept.update({ email: value }))).toBe("ENVELOPE_BAD_INPUT");
      kept.set("phone", value);
      expect(await codeOf(kept.save())).toBe("ENVELOPE_BAD_INPUT");
      kept.set("phone", "555 0111");
      expect(await codeOf(Member.update({ phone: value }, { where: { id } }))).toBe(
        "ENVELOPE_BAD_INPUT",
      );
    }
    expect((await rows()).find((r) => r.id === id)).toEqual(stored);
    const again = await Member.findByPk(id);
    expect(again?.get("phone")).toBe("555 0111");
    expect(again?.get("email")).toBe("sqlv@x.io");
  });

  it("a blind index set without its field is refused (create, bulkCreate, instance.update, Model.update)", async () => {
    const forged = members.cipher.indexFor("email", "victim@x.io");
    expect(await codeOf(Member.create({ email_idx: forged }))).toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(Member.create({ email_idx: forged }, off))).toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(Member.bulkCreate([{ email_idx: forged }], off))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    const row = await Member.create({ email: null, name: "no email" });
    expect(await codeOf(row.update({ email_idx: forged }))).toBe("ENVELOPE_BAD_INPUT");
    const where = { id: row.get("id") as string };
    expect(await codeOf(Member.update({ email_idx: forged }, { where, ...off }))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await members.findBy("email", "victim@x.io")).toEqual([]);
    expect((await rows()).filter((r) => r.email_idx === forged)).toEqual([]);
  });

  it("increment / decrement of an encrypted attribute is refused and the stored value is unchanged", async () => {
    const m = await Member.create({ email: "inc@x.io", phone: "5551", name: "inc" });
    const before = (await rows()).find((r) => r.id === m.get("id"));
    const { code, message } = await errorOf(
      Member.increment("email", { by: 1, where: { id: m.get("id") } }),
    );
    expect(code).toBe("ENVELOPE_BAD_INPUT");
    expect(message).toContain("arithmetic");
    expect(await codeOf(m.decrement({ phone: 2 }))).toBe("ENVELOPE_BAD_INPUT");
    const after = (await rows()).find((r) => r.id === m.get("id"));
    expect(after?.email).toEqual(before?.email);
    expect(after?.phone_enc).toEqual(before?.phone_enc);
    // A plain attribute passes the guard (the database itself refuses arithmetic on text).
    const plain = await codeOf(Member.increment("name", { by: 1, where: { id: m.get("id") } }));
    expect(plain).toMatch(/^not an EnvelopeError: SequelizeDatabaseError/);
  });

  it("queryInterface.bulkInsert into the model's table with plaintext is refused", async () => {
    const qi = sequelize.getQueryInterface();
    expect(
      await codeOf(qi.bulkInsert(TABLE, [{ id: randomUUID(), email: "raw@x.io", ...stamps() }])),
    ).toBe("ENVELOPE_BAD_INPUT");
    expect(
      await codeOf(
        qi.bulkInsert({ tableName: TABLE }, [
          { id: randomUUID(), phone_enc: "555 0150", ...stamps() },
        ]),
      ),
    ).toBe("ENVELOPE_BAD_INPUT");
    // Needles with "@" or a space: neither occurs in the UUIDs, hex blind indexes, base64
    // envelopes or timestamps that the other rows hold, so a match can only be the plaintext.
    expect(await dumpHas("raw@x.io")).toBe(false);
    expect(await dumpHas("555 0150")).toBe(false);
  });

  it("normal paths still work: create, bulkCreate (plain and individualHooks), save, update, transactions, pre-sealed bulkInsert", async () => {
    const a = await Member.create({ email: "a@x.io", phone: "1", name: "A" });
    await Member.bulkCreate([{ email: "b@x.io" }, { email: "c2@x.io", phone: "3" }]);
    await Member.bulkCreate([{ email: "d@x.io" }], { individualHooks: true, validate: true });
    a.set("phone", "2");
    await a.save();
    await a.update({ email: "a2@x.io" });
    await Member.update({ name: "plain attribute" }, { where: { id: a.get("id") as string } });
    await sequelize.transaction(async (transaction) => {
      const t = await Member.create({ email: "t@x.io" }, { transaction });
      await t.update({ phone: "9" }, { transaction });
    });
    // A row sealed by the cipher passes even through the raw queryInterface.
    const id = randomUUID();
    const sealed = await members.cipher.seal({ id, email: "e@x.io", phone: "5" });
    await sequelize.getQueryInterface().bulkInsert(TABLE, [
      {
        id,
        email: sealed.email,
        email_idx: sealed.email_idx,
        phone_enc: sealed.phone,
        ...stamps(),
      },
    ]);
    // Plain attributes through the raw queryInterface are not the guard's business.
    await Member.create({ name: "only plain" }, off);

    for (const email of ["a2@x.io", "b@x.io", "c2@x.io", "d@x.io", "t@x.io", "e@x.io"]) {
      expect((await members.findBy("email", email)).map((m) => m.get("email"))).toEqual([email]);
    }
    expect((await Member.findByPk(a.get("id") as string))?.get("phone")).toBe("2");
    expect((await Member.findByPk(id))?.get("phone")).toBe("5");
    for (const r of await rows()) {
      for (const value of [r.email, r.phone_enc]) {
        if (value !== null) expect(String(value)).toMatch(/^ev1:/);
      }
    }
  });
});
