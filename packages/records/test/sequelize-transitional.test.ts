// The Sequelize integration over a table that still holds legacy values (the takeover of
// examples/sequelize-migration): reads through the transitional read, updates of a row
// holding a legacy value re-seal it whole with a compare-and-swap on the legacy value.
import { randomBytes, randomUUID } from "node:crypto";
import { legacyDecoder } from "@envelope/batch-rewrap";
import { type Envelope, EnvelopeError, localAesProvider } from "@envelope/core";
import { DataTypes, Model, type ModelStatic, QueryTypes, Sequelize } from "sequelize";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRecordCipher, type LegacyReadEvent, transitionalRead } from "../src/index.js";
import { EncryptedText, encryptModel } from "../src/sequelize.js";
import { handRolledGcmJson } from "./legacy-values.js";
import { envelopeWith, MYSQL_URL, PG_URL, usePgSchema } from "./support.js";

usePgSchema();

type Row = Record<string, unknown>;

describe.each([
  { dialect: "postgres", url: PG_URL },
  { dialect: "mariadb (mysql2)", url: MYSQL_URL },
])("Sequelize transitional read on $dialect", ({ url }) => {
  const sequelize = new Sequelize(url, { logging: false });
  const TABLE = `records_sqlz_legacy_${randomBytes(4).toString("hex")}`;
  const legacyKey = randomBytes(32);
  const envelope: Envelope = envelopeWith(
    localAesProvider({ keys: randomBytes(32).toString("hex") }),
  );
  const events: LegacyReadEvent[] = [];
  const transitional = transitionalRead({
    decoders: [legacyDecoder({ format: "aes-256-gcm-json", key: { bytes: legacyKey } })],
    onLegacyRead: (e) => events.push(e),
  });
  class User extends Model {}
  User.init(
    {
      id: { type: DataTypes.STRING(64), primaryKey: true },
      email: EncryptedText,
      ssn: EncryptedText,
      name: DataTypes.STRING,
    },
    { sequelize, modelName: "LegacyUser", tableName: TABLE, timestamps: false },
  );
  encryptModel(
    User as ModelStatic<Model>,
    createRecordCipher(envelope, { table: TABLE, encrypted: ["email", "ssn"] }, { transitional }),
  );
  const q = (n: string) => sequelize.getQueryInterface().quoteIdentifier(n);
  const insertLegacy = async (id: string, email: string, ssn: string) =>
    sequelize.query(`INSERT INTO ${q(TABLE)} (id, email, ssn, name) VALUES (:id, :e, :s, 'x')`, {
      replacements: {
        id,
        e: handRolledGcmJson(legacyKey, email),
        s: handRolledGcmJson(legacyKey, ssn),
      },
    });
  const stored = async (id: string) =>
    (
      (await sequelize.query(`SELECT * FROM ${q(TABLE)} WHERE id = :id`, {
        replacements: { id },
        type: QueryTypes.SELECT,
      })) as Row[]
    )[0]!;

  beforeAll(async () => {
    await User.sync({ force: true });
  });
  afterAll(async () => {
    await sequelize.getQueryInterface().dropTable(TABLE);
    await sequelize.close();
  });

  it("finds open legacy values (audited) and envelopes alike", async () => {
    const id = randomUUID();
    await insertLegacy(id, "ann@example.com", "123-45-6789");
    events.length = 0;
    const ann = await User.findByPk(id);
    expect(ann?.get("email")).toBe("ann@example.com");
    expect(ann?.get("ssn")).toBe("123-45-6789");
    expect(events.map((e) => [e.column, e.id, e.format]).sort()).toEqual([
      ["email", id, "aes-256-gcm-json"],
      ["ssn", id, "aes-256-gcm-json"],
    ]);
    const [raw] = (await User.findAll({ where: { id }, raw: true })) as unknown as Row[];
    expect(raw?.ssn).toBe("123-45-6789");
  });

  it("an update of a row holding legacy values re-seals it whole (CAS on the legacy value)", async () => {
    const id = randomUUID();
    await insertLegacy(id, "bob@example.com", "987-65-4321");
    const bob = (await User.findByPk(id))!;
    await bob.update({ email: "bob@new.example" });
    const row = await stored(id);
    expect(String(row.email)).toMatch(/^ev1:/);
    expect(String(row.ssn)).toMatch(/^ev1:/);
    const again = (await User.findByPk(id))!;
    expect([again.get("email"), again.get("ssn")]).toEqual(["bob@new.example", "987-65-4321"]);
  });

  it("a legacy value changed by another writer meanwhile is not overwritten with a stale one", async () => {
    const id = randomUUID();
    await insertLegacy(id, "cy@example.com", "111-11-1111");
    const cy = (await User.findByPk(id))!;
    // Another writer (say, `envelope migrate`) rewrites ssn between the read of the
    // guarded update and its write: the first write must miss, the retry sees the new value.
    let raced = false;
    const race = async (options: { type?: string }) => {
      if (raced || options.type !== QueryTypes.UPDATE) return; // the guarded write
      raced = true;
      await sequelize.query(`UPDATE ${q(TABLE)} SET ssn = :s WHERE id = :id`, {
        replacements: { id, s: handRolledGcmJson(legacyKey, "222-22-2222") },
      });
    };
    sequelize.addHook("beforeQuery", "race", race as never);
    try {
      await cy.update({ email: "cy@new.example" });
    } finally {
      sequelize.removeHook("beforeQuery", "race");
    }
    expect(raced).toBe(true);
    const again = (await User.findByPk(id))!;
    expect([again.get("email"), again.get("ssn")]).toEqual(["cy@new.example", "222-22-2222"]);
  });

  it("a value no decoder accepts is a typed error, never returned raw", async () => {
    const id = randomUUID();
    await sequelize.query(
      `INSERT INTO ${q(TABLE)} (id, email, name) VALUES (:id, 'raw@x.io', 'x')`,
      {
        replacements: { id },
      },
    );
    const error = await User.findByPk(id).catch((e: unknown) => e);
    expect(EnvelopeError.isInstance(error) && error.code).toBe("ENVELOPE_BAD_FORMAT");
  });
});
