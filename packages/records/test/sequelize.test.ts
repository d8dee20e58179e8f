import { randomBytes, randomUUID } from "node:crypto";
import { decodeEnvelope, EnvelopeError, fromText, inspectEnvelope } from "@envelope/core";
import {
  col,
  DataTypes,
  Model,
  type ModelStatic,
  QueryTypes,
  Sequelize,
  AggregateError as SequelizeAggregateError,
} from "sequelize";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { EncryptedText, encryptModel } from "../src/sequelize.js";
import {
  counted,
  envelopeWith,
  INDEX_KEY_1,
  MYSQL_URL,
  PG_URL,
  usePgSchema,
  watchedUnwraps,
} from "./support.js";

usePgSchema();

const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });

type Row = Record<string, unknown>;
const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return EnvelopeError.isInstance(e) ? e.code : `not an EnvelopeError: ${String(e)}`;
  }
  return "resolved";
};

describe.each([
  { dialect: "postgres", url: PG_URL },
  { dialect: "mariadb (mysql2)", url: MYSQL_URL },
])("Sequelize v6 on $dialect", ({ url }) => {
  const sequelize = new Sequelize(url, { logging: false });
  const suffix = randomBytes(4).toString("hex");
  const TABLE = `records_sqlz_users_${suffix}`;
  const NOTES = `records_sqlz_notes_${suffix}`;
  const SERIAL = `records_sqlz_serial_${suffix}`;
  const q = (name: string) => sequelize.getQueryInterface().quoteIdentifier(name);
  const schema = {
    table: TABLE,
    encrypted: ["email", "phone"] as const,
    blindIndexes: { email: { normalize: "email" as const } },
  };
  const attributes = {
    id: { type: DataTypes.STRING(64), primaryKey: true, defaultValue: DataTypes.UUIDV4 },
    email: { type: EncryptedText, validate: { isEmail: true } },
    email_idx: DataTypes.STRING(64),
    phone: EncryptedText,
    name: DataTypes.STRING,
  };
  const kms = counted();
  const oldKms = counted();
  const newKms = counted();
  const afterUpdateSaw: unknown[] = [];

  /** A model class on the table, as one process would define it with its own Envelope. */
  const defineUsers = (name: string, envelope = envelopeWith(kms)) => {
    class U extends Model {}
    U.init(attributes, { sequelize, modelName: name, tableName: TABLE });
    const users = encryptModel(
      U as ModelStatic<Model>,
      createRecordCipher(envelope, schema, { blindIndex }),
    );
    return { U, users };
  };
  const { U: User, users } = defineUsers("User");
  User.addHook("afterUpdate", (i: Model) => {
    afterUpdateSaw.push(i.get("phone"));
  });
  class Note extends Model {}
  Note.init(
    {
      id: { type: DataTypes.STRING(64), primaryKey: true },
      body: EncryptedText,
      userId: DataTypes.STRING(64),
    },
    { sequelize, modelName: "Note", tableName: NOTES },
  );
  encryptModel(
    Note as ModelStatic<Model>,
    createRecordCipher(envelopeWith(kms), { table: NOTES, encrypted: ["body"] }),
  );
  User.hasMany(Note, { foreignKey: "userId", as: "notes" });

  const stored = async (id: string): Promise<Row> => {
    const rows = await sequelize.query(`SELECT * FROM ${q(TABLE)} WHERE id = :id`, {
      replacements: { id },
      type: QueryTypes.SELECT,
    });
    return rows[0] as Row;
  };
  const dumpHas = async (needle: string) => {
    const rows = (await sequelize.query(`SELECT * FROM ${q(TABLE)}`, {
      type: QueryTypes.SELECT,
    })) as Row[];
    return rows.some((r) => JSON.stringify(r).includes(needle));
  };

  beforeAll(async () => {
    await User.sync({ force: true });
    await Note.sync({ force: true });
  });
  afterAll(async () => {
    await sequelize.getQueryInterface().dropTable(NOTES);
    await sequelize.getQueryInterface().dropTable(TABLE);
    await sequelize.getQueryInterface().dropTable(SERIAL);
    await sequelize.close();
  });

  it("create seals (one KMS call per record); every find returns plaintext; findBy uses the index", async () => {
    kms.reset();
    const ann = await User.create({ email: "Ann@Example.com", phone: "+1 555 0100", name: "Ann" });
    expect(kms.calls.wrap).toBe(1);
    expect(ann.get("email")).toBe("Ann@Example.com");
    expect(ann.changed()).toBe(false);
    const id = ann.get("id") as string;
    const row = await stored(id);
    expect(String(row.email)).toMatch(/^ev1:/);
    expect(row.email_idx).toBe(users.cipher.indexFor("email", "ann@example.com"));
    expect(await dumpHas("Ann@Example")).toBe(false);
    expect(await dumpHas("555 0100")).toBe(false);

    expect((await User.findByPk(id))?.get({ plain: true })).toMatchObject({
      email: "Ann@Example.com",
      phone: "+1 555 0100",
    });
    expect((await User.findOne({ where: { name: "Ann" } }))?.get("phone")).toBe("+1 555 0100");
    expect((await User.findAll({ where: { id } }))[0]?.get("email")).toBe("Ann@Example.com");
    const found = await users.findBy("email", "  ann@example.COM");
    expect(found.map((u) => u.get("id"))).toEqual([id]);
  });

  it("raw: true rows are opened; a selection without the id still opens", async () => {
    const ann = await User.create({ email: "raw@x.io", phone: "7", name: "Raw" });
    const id = ann.get("id") as string;
    const [raw] = (await User.findAll({ where: { id }, raw: true })) as unknown as Row[];
    expect(raw).toMatchObject({ id, email: "raw@x.io", phone: "7" });
    const [slim] = (await User.findAll({
      where: { name: "Raw" },
      attributes: ["email"],
      raw: true,
    })) as unknown as Row[];
    expect(slim).toEqual({ email: "raw@x.io" });
    const byIndex = await users.findBy("email", "raw@x.io", { raw: true });
    expect(byIndex).toHaveLength(1);
  });

  it("bulkCreate: one data key per row, validators see plaintext, instances come back plaintext", async () => {
    kms.reset();
    const made = await User.bulkCreate(
      [0, 1, 2].map((i) => ({ email: `bulk${i}@x.io`, phone: `${i}`, name: "Bulk" })),
      { validate: true },
    );
    expect(kms.calls.wrap).toBe(3);
    expect(made.map((m) => m.get("email"))).toEqual(["bulk0@x.io", "bulk1@x.io", "bulk2@x.io"]);
    const bodies = await Promise.all(
      made.map(async (m) => (await stored(m.get("id") as string)).email),
    );
    const wrapped = bodies.map((b) =>
      Buffer.from(decodeEnvelope(fromText(b as string)).entries[0]!.wrapped).toString("hex"),
    );
    expect(new Set(wrapped).size).toBe(3); // three data keys
    await expect(
      User.bulkCreate([{ email: "not an email", phone: "1" }], { validate: true }),
    ).rejects.toBeInstanceOf(SequelizeAggregateError);
    const viaHooks = await User.bulkCreate([{ email: "ind@x.io", phone: "5" }], {
      individualHooks: true,
    });
    expect(viaHooks[0]?.get("email")).toBe("ind@x.io");
    expect((await users.findBy("email", "ind@x.io"))[0]?.get("phone")).toBe("5");
  });

  it("instance.update re-seals the changed field only (no KMS call) and afterUpdate hooks see plaintext", async () => {
    const bob = await User.create({ email: "bob@x.io", phone: "1", name: "Bob" });
    const id = bob.get("id") as string;
    const before = await stored(id);
    kms.reset();
    afterUpdateSaw.length = 0;
    await bob.update({ phone: "2", name: "Bobby" });
    expect(kms.calls).toEqual({ wrap: 0, unwrap: 0, generateDataKey: 0 });
    expect(afterUpdateSaw).toEqual(["2"]);
    expect(bob.get("phone")).toBe("2");
    expect(bob.changed()).toBe(false);
    const after = await stored(id);
    expect(after.email).toBe(before.email);
    expect(after.phone).not.toBe(before.phone);
    expect(after.name).toBe("Bobby");

    bob.set("email", "robert@x.io");
    await bob.save();
    expect((await stored(id)).email_idx).toBe(users.cipher.indexFor("email", "robert@x.io"));
    expect(await users.findBy("email", "bob@x.io")).toEqual([]);
    expect((await users.findBy("email", "robert@x.io"))[0]?.get("phone")).toBe("2");
    await bob.update({ phone: null });
    expect((await stored(id)).phone).toBeNull();
  });

  it("a create that fails leaves sealed values on the instance; saving it again seals the plaintext once", async () => {
    const taken = await User.create({ email: "taken@x.io", phone: "1" });
    const dup = User.build({ id: taken.get("id"), email: "dup@x.io", phone: "2" });
    await expect(dup.save()).rejects.toThrow(); // duplicate primary key
    expect(String(dup.get("email"))).toMatch(/^ev1:/); // never plaintext, but not transparent
    dup.setDataValue("id", randomUUID()); // set() keeps a primary key once given
    await dup.save();
    expect(dup.get("email")).toBe("dup@x.io");
    expect((await User.findByPk(dup.get("id") as string))?.get("email")).toBe("dup@x.io");
  });

  it("findAll opens many rows with bounded concurrency (cold cache)", async () => {
    const seen = { inFlight: 0, max: 0 };
    const inner = counted();
    const slow = {
      ...inner,
      handles: inner.handles,
      wrap: inner.wrap,
      async unwrap(...args: Parameters<typeof inner.unwrap>) {
        seen.inFlight++;
        seen.max = Math.max(seen.max, seen.inFlight);
        await new Promise((r) => setTimeout(r, 5));
        try {
          return await inner.unwrap(...args);
        } finally {
          seen.inFlight--;
        }
      },
    };
    const { U: Seeder } = defineUsers(`Seed${suffix}`, envelopeWith(inner));
    const { U: Cold } = defineUsers(`Cold${suffix}`, envelopeWith(slow));
    await Seeder.bulkCreate(
      Array.from({ length: 40 }, (_, i) => ({
        email: `many${i}@x.io`,
        phone: `${i}`,
        name: "many",
      })),
    );
    const found = await Cold.findAll({ where: { name: "many" } });
    expect(found.map((f) => f.get("phone")).sort()).toEqual(
      Array.from({ length: 40 }, (_, i) => `${i}`).sort(),
    );
    expect(seen.max).toBeGreaterThan(1);
    expect(seen.max).toBeLessThanOrEqual(16);
  });

  it("findAll opens through openMany per model: one unwrap per record, the cipher's concurrency, includes too; a bad row fails the find", async () => {
    const inner = counted();
    const tag = randomBytes(3).toString("hex");
    const { U: Seeder } = defineUsers(`SeedMany${suffix}`, envelopeWith(inner));
    const seeded = await Seeder.bulkCreate(
      Array.from({ length: 24 }, (_, i) => ({ email: `om${i}@x.io`, phone: `${i}`, name: tag })),
    );
    const owner = (await User.create({ email: "owner@x.io", phone: "0" })).get("id") as string;
    await Note.bulkCreate(
      Array.from({ length: 6 }, (_, i) => ({ id: randomUUID(), body: `note ${i}`, userId: owner })),
    );
    const watched = watchedUnwraps(inner, 5);
    const envelope = envelopeWith(watched.provider);
    class ColdUser extends Model {}
    ColdUser.init(attributes, { sequelize, modelName: `ColdMany${suffix}`, tableName: TABLE });
    encryptModel(
      ColdUser as ModelStatic<Model>,
      createRecordCipher(envelope, schema, { blindIndex, concurrency: 4 }),
    );
    const found = await ColdUser.findAll({ where: { name: tag } });
    expect(found.map((u) => u.get("phone")).sort()).toEqual(
      Array.from({ length: 24 }, (_, i) => `${i}`).sort(),
    );
    expect(found.every((u) => u.changed() === false)).toBe(true);
    expect(watched.seen.unwraps).toBe(24);
    expect(watched.seen.max).toBeGreaterThan(1);
    expect(watched.seen.max).toBeLessThanOrEqual(4);

    // An included encrypted model opens in the same find (its own cipher, after the users).
    const [withNotes] = await User.findAll({
      where: { id: owner },
      include: [{ model: Note, as: "notes" }],
    });
    expect((withNotes!.get("notes") as Model[]).map((n) => n.get("body")).sort()).toEqual(
      Array.from({ length: 6 }, (_, i) => `note ${i}`),
    );

    // One row holding another row's phone: the whole findAll rejects with the typed error.
    await sequelize.query(`UPDATE ${q(TABLE)} SET phone = :phone WHERE id = :id`, {
      replacements: {
        phone: (await stored(seeded[0]!.get("id") as string)).phone,
        id: seeded[1]!.get("id"),
      },
    });
    expect(await codeOf(ColdUser.findAll({ where: { name: tag } }))).toBe(
      "ENVELOPE_DECRYPT_FAILED",
    );
    expect(await codeOf(ColdUser.findAll({ where: { name: tag }, raw: true }))).toBe(
      "ENVELOPE_DECRYPT_FAILED",
    );
    await sequelize.query(`DELETE FROM ${q(TABLE)} WHERE id = :id`, {
      replacements: { id: seeded[1]!.get("id") },
    });
  });

  it("reload gives plaintext and a clean instance", async () => {
    const cy = await User.create({ email: "cy@x.io", phone: "1" });
    const other = await User.findByPk(cy.get("id") as string);
    await other!.update({ phone: "9" });
    await cy.reload();
    expect(cy.get("phone")).toBe("9");
    expect(cy.changed()).toBe(false);
  });

  it("transactions: rollback leaves nothing, commit keeps both writes", async () => {
    const id = randomUUID();
    await expect(
      sequelize.transaction(async (transaction) => {
        const d = await User.create({ id, email: "tx@x.io", phone: "1" }, { transaction });
        await d.update({ phone: "2" }, { transaction });
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect(await User.findByPk(id)).toBeNull();
    await sequelize.transaction(async (transaction) => {
      const d = await User.create({ id, email: "tx@x.io", phone: "1" }, { transaction });
      await d.update({ phone: "2" }, { transaction });
      const seen = await User.findByPk(id, { transaction });
      expect(seen?.get("phone")).toBe("2");
    });
    expect((await User.findByPk(id))?.get("phone")).toBe("2");
  });

  it("include: an encrypted associated model is opened too", async () => {
    const u = await User.create({ email: "inc@x.io", phone: "1" });
    await Note.create({ id: randomUUID(), body: "private note", userId: u.get("id") });
    const [withNotes] = await User.findAll({
      where: { id: u.get("id") as string },
      include: [{ model: Note, as: "notes" }],
    });
    const notes = withNotes!.get("notes") as Model[];
    expect(notes.map((n) => n.get("body"))).toEqual(["private note"]);
  });

  it("refuses what cannot be sealed per row, and plaintext that bypasses the hooks", async () => {
    const e = await User.create({ email: "e@x.io", phone: "1" });
    const id = e.get("id") as string;
    expect(await codeOf(User.update({ email: "x@x.io" }, { where: { id } }))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await codeOf(User.findAll({ where: { email: "e@x.io" } }))).toBe("ENVELOPE_BAD_INPUT");
    // Sorting or grouping by ciphertext is meaningless: refused before any SQL.
    for (const order of [["email"], [["email", "DESC"]], [[col("phone"), "ASC"]], "email"]) {
      expect(await codeOf(User.findAll({ order: order as never }))).toBe("ENVELOPE_BAD_INPUT");
    }
    expect(await codeOf(User.findAll({ group: ["email"], attributes: ["email"] }))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await User.findAll({ where: { id }, order: [["id", "DESC"]] })).toHaveLength(1);
    expect(await codeOf(User.upsert({ id, email: "u@x.io" }))).toBe("ENVELOPE_BAD_INPUT");
    // hooks: false skips the sealing: the EncryptedText type refuses the plaintext.
    expect(
      await codeOf(User.create({ id: "plain-1", email: "plain@x.io" }, { hooks: false })),
    ).toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(User.update({ email: "p@x.io" }, { where: { id }, hooks: false }))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await User.findByPk("plain-1")).toBeNull();
    expect(await dumpHas("plain@x.io")).toBe(false);
    expect(await dumpHas("p@x.io")).toBe(false);
  });

  it("a value from another row (wrong context) fails with a typed error, never the raw value", async () => {
    const x = await User.create({ email: "x@x.io", phone: "1" });
    const y = await User.create({ email: "y@x.io", phone: "2" });
    await sequelize.query(`UPDATE ${q(TABLE)} SET email = :email WHERE id = :id`, {
      replacements: { email: (await stored(x.get("id") as string)).email, id: y.get("id") },
    });
    expect(await codeOf(User.findByPk(y.get("id") as string))).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(await codeOf(User.findAll({ where: { id: y.get("id") as string }, raw: true }))).toBe(
      "ENVELOPE_DECRYPT_FAILED",
    );
    expect(await codeOf(y.reload())).toBe("ENVELOPE_DECRYPT_FAILED");
    await sequelize.query(`UPDATE ${q(TABLE)} SET phone = :plain WHERE id = :id`, {
      replacements: { plain: "+1 555 plaintext", id: x.get("id") },
    });
    expect(await codeOf(User.findByPk(x.get("id") as string))).toBe("ENVELOPE_BAD_FORMAT");
  });

  it("master key rotation: a stale read cannot overwrite the row, and the row moves whole to the new key", async () => {
    const { U: OldUser } = defineUsers(`Old${suffix}`, envelopeWith(oldKms));
    const { U: NewUser, users: newUsers } = defineUsers(
      `New${suffix}`,
      envelopeWith(newKms, [oldKms]),
    );
    const keysOf = async (id: string) => {
      const row = await stored(id);
      return ["email", "phone"].map((f) => inspectEnvelope(row[f] as string).entries[0]?.keyRef);
    };
    const a = await OldUser.create({ email: "a1@x.io", phone: "1" });
    const id = a.get("id") as string;
    // The new process reads the row, then the old one changes the email: the new process's
    // copy is stale. Its phone update must keep the newer email, and move the row.
    const stale = await NewUser.findByPk(id);
    await a.update({ email: "a2@x.io" });
    await stale!.update({ phone: "2" });
    expect(await keysOf(id)).toEqual([newKms.keyRef, newKms.keyRef]);
    expect((await NewUser.findByPk(id))?.get({ plain: true })).toMatchObject({
      email: "a2@x.io",
      phone: "2",
    });

    // A write lands between the guarded update's read and its write: the compare-and-swap
    // misses, the update re-reads and retries, and the concurrent email survives.
    const b = await OldUser.create({ email: "b1@x.io", phone: "1" });
    const bId = b.get("id") as string;
    const original = NewUser.update.bind(NewUser);
    let raced = 0;
    (NewUser as { update: unknown }).update = async (...args: Parameters<typeof original>) => {
      if (raced++ === 0) await b.update({ email: "b2@x.io" });
      return original(...args);
    };
    const fresh = await NewUser.findByPk(bId);
    await fresh!.update({ phone: "3" });
    expect(raced).toBe(2);
    expect((await NewUser.findByPk(bId))?.get({ plain: true })).toMatchObject({
      email: "b2@x.io",
      phone: "3",
    });
    expect(await keysOf(bId)).toEqual([newKms.keyRef, newKms.keyRef]);
    expect(await newUsers.findBy("email", "b2@x.io")).toHaveLength(1);
  });

  it("an autoincrement id is reserved on PostgreSQL, and must be given on MariaDB", async () => {
    class Counter extends Model {}
    Counter.init(
      {
        id: { type: DataTypes.INTEGER, autoIncrement: true, primaryKey: true },
        note: EncryptedText,
      },
      { sequelize, tableName: SERIAL, timestamps: false },
    );
    encryptModel(
      Counter as ModelStatic<Model>,
      createRecordCipher(envelopeWith(kms), { table: SERIAL, encrypted: ["note"] }),
    );
    await Counter.sync({ force: true });
    if (sequelize.getDialect() === "postgres") {
      const c = await Counter.create({ note: "serial secret" });
      expect(typeof c.get("id")).toBe("number");
      expect((await Counter.findByPk(c.get("id") as number))?.get("note")).toBe("serial secret");
    } else {
      expect(await codeOf(Counter.create({ note: "serial secret" }))).toBe("ENVELOPE_BAD_INPUT");
      const c = await Counter.create({ id: 41, note: "given id" });
      expect((await Counter.findByPk(41))?.get("note")).toBe("given id");
      expect(c.get("note")).toBe("given id");
    }
  });

  it("refuses a model that lacks the EncryptedText type or a cipher column", () => {
    class Loose extends Model {}
    Loose.init(
      { id: { type: DataTypes.STRING, primaryKey: true }, email: DataTypes.TEXT },
      { sequelize, tableName: `loose_${suffix}` },
    );
    expect(() =>
      encryptModel(
        Loose as ModelStatic<Model>,
        createRecordCipher(envelopeWith(kms), { table: "loose", encrypted: ["email"] }),
      ),
    ).toThrow(expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }));
    expect(() =>
      encryptModel(
        Note as ModelStatic<Model>,
        createRecordCipher(envelopeWith(kms), { table: NOTES, encrypted: ["body"] }),
      ),
    ).toThrow(/already encrypted/);
  });
});
