import { randomBytes, randomUUID } from "node:crypto";
import { DataTypes, Model, type ModelStatic, Sequelize } from "sequelize";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { EncryptedText, encryptModel } from "../src/sequelize.js";
import { counted, envelopeWith, INDEX_KEY_1, MYSQL_URL, PG_URL, usePgSchema } from "./support.js";

usePgSchema();

const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });

type Row = Record<string, unknown>;
const plain = (m: Model | null) => m?.get({ plain: true }) as Row | undefined;

describe.each([
  { dialect: "postgres", url: PG_URL },
  { dialect: "mariadb (mysql2)", url: MYSQL_URL },
])("Sequelize v6 finds whose attributes leave out the id, on $dialect", ({ url }) => {
  const sequelize = new Sequelize(url, { logging: false });
  const suffix = randomBytes(4).toString("hex");
  const TABLE = `sel_sqlz_users_${suffix}`;
  const MAPPED = `sel_sqlz_mapped_${suffix}`;
  const NOTES = `sel_sqlz_notes_${suffix}`;
  class User extends Model {}
  User.init(
    {
      id: { type: DataTypes.STRING(64), primaryKey: true, defaultValue: DataTypes.UUIDV4 },
      email: EncryptedText,
      email_idx: DataTypes.STRING(64),
      phone: EncryptedText,
      name: DataTypes.STRING,
    },
    { sequelize, modelName: "SelUser", tableName: TABLE, timestamps: false },
  );
  const users = encryptModel(
    User as ModelStatic<Model>,
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
  // The id and an encrypted attribute stored under other column names.
  class Mapped extends Model {}
  Mapped.init(
    {
      key: { type: DataTypes.STRING(64), primaryKey: true, field: "key_col" },
      ssn: { type: EncryptedText, field: "ssn_enc" },
      label: DataTypes.STRING,
    },
    { sequelize, modelName: "SelMapped", tableName: MAPPED, timestamps: false },
  );
  encryptModel(
    Mapped as ModelStatic<Model>,
    createRecordCipher(envelopeWith(counted()), {
      table: MAPPED,
      encrypted: ["ssn"] as const,
      idField: "key",
    }),
  );
  class Note extends Model {}
  Note.init(
    {
      id: { type: DataTypes.STRING(64), primaryKey: true, defaultValue: DataTypes.UUIDV4 },
      body: EncryptedText,
      userId: DataTypes.STRING(64),
    },
    { sequelize, modelName: "SelNote", tableName: NOTES, timestamps: false },
  );
  encryptModel(
    Note as ModelStatic<Model>,
    createRecordCipher(envelopeWith(counted()), { table: NOTES, encrypted: ["body"] as const }),
  );
  User.hasMany(Note, { foreignKey: "userId", as: "notes" });
  let id = "";

  beforeAll(async () => {
    await User.sync({ force: true });
    await Mapped.sync({ force: true });
    await Note.sync({ force: true });
    const ann = await User.create({ email: "sel@x.io", phone: "555 0100", name: "Sel" });
    id = ann.get("id") as string;
    await Note.create({ body: "note one", userId: id });
    await Mapped.create({ key: "k1", ssn: "078-05-1120", label: "one" });
  });
  afterAll(async () => {
    for (const t of [NOTES, MAPPED, TABLE]) await sequelize.getQueryInterface().dropTable(t);
    await sequelize.close();
  });

  it("findAll / findOne / findByPk with attributes return opened instances without the id", async () => {
    const where = { name: "Sel" };
    const [one] = await User.findAll({ where, attributes: ["email"] });
    expect(plain(one!)).toEqual({ email: "sel@x.io" });
    expect(one!.get("id")).toBeUndefined();
    expect(one!.changed()).toBe(false);
    expect(plain(await User.findOne({ where, attributes: ["phone", "name"] }))).toEqual({
      phone: "555 0100",
      name: "Sel",
    });
    expect(plain(await User.findByPk(id, { attributes: ["email", "phone"] }))).toEqual({
      email: "sel@x.io",
      phone: "555 0100",
    });
    expect((await users.findBy("email", "SEL@x.io", { attributes: ["email"] })).map(plain)).toEqual(
      [{ email: "sel@x.io" }],
    );
    const { rows, count } = await User.findAndCountAll({ where, attributes: ["phone"] });
    expect(count).toBe(1);
    expect(rows.map(plain)).toEqual([{ phone: "555 0100" }]);
    // raw: true, as before
    expect(await User.findAll({ where, attributes: ["email"], raw: true })).toEqual([
      { email: "sel@x.io" },
    ]);
  });

  it("attributes: { exclude } that leaves out the id; the id is kept when asked for", async () => {
    const where = { name: "Sel" };
    const [slim] = await User.findAll({ where, attributes: { exclude: ["id", "email_idx"] } });
    expect(plain(slim!)).toEqual({ email: "sel@x.io", phone: "555 0100", name: "Sel" });
    expect(
      plain(await User.findOne({ where, attributes: { exclude: ["id", "phone", "email_idx"] } })),
    ).toEqual({ email: "sel@x.io", name: "Sel" });
    expect(
      plain(await User.findByPk(id, { attributes: { exclude: ["id", "email", "email_idx"] } })),
    ).toEqual({ phone: "555 0100", name: "Sel" });
    expect(plain(await User.findByPk(id, { attributes: ["id", "email"] }))).toEqual({
      id,
      email: "sel@x.io",
    });
    // Selections without an encrypted attribute are left alone.
    expect(plain(await User.findByPk(id, { attributes: ["name"] }))).toEqual({ name: "Sel" });
  });

  it("an id and an encrypted attribute under other column names; an include selecting no id", async () => {
    expect(plain(await Mapped.findOne({ where: { label: "one" }, attributes: ["ssn"] }))).toEqual({
      ssn: "078-05-1120",
    });
    expect(
      plain(await Mapped.findByPk("k1", { attributes: { exclude: ["key", "label"] } })),
    ).toEqual({ ssn: "078-05-1120" });
    const withNotes = await User.findByPk(id, {
      attributes: ["email"],
      include: [{ model: Note, as: "notes", attributes: ["body"] }],
    });
    expect(withNotes?.get("email")).toBe("sel@x.io");
    const notes = withNotes?.get("notes") as Model[];
    expect(notes.map(plain)).toEqual([{ body: "note one" }]);
    const [excluding] = await User.findAll({
      where: { id },
      attributes: ["phone"],
      include: [{ model: Note, as: "notes", attributes: { exclude: ["id", "userId"] } }],
    });
    expect(plain(excluding!)).toEqual({ phone: "555 0100", notes: [{ body: "note one" }] });
    // A separate include needs the id to load its rows: it stays on the result.
    const separate = await User.findByPk(id, {
      attributes: ["email"],
      include: [{ model: Note, as: "notes", separate: true, attributes: ["body"] }],
    });
    expect(separate?.get("email")).toBe("sel@x.io");
    expect(separate?.get("id")).toBe(id);
    expect((separate!.get("notes") as Model[]).map((n) => n.get("body"))).toEqual(["note one"]);
  });

  it("a missing row is still null / empty", async () => {
    expect(await User.findByPk(randomUUID(), { attributes: ["email"] })).toBeNull();
    expect(await User.findAll({ where: { name: "nobody" }, attributes: ["email"] })).toEqual([]);
  });
});
