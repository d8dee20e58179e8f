/**
 * Found by the attacker review of 6 December 2026 (fixed the same day; both are now refused
 * with ENVELOPE_BAD_INPUT): the bulk update paths of Sequelize and TypeORM let the APPLICATION
 * change a row's primary key while its encrypted values stay sealed under the old id's
 * context. The write succeeds silently; every later read of the row fails
 * (ENVELOPE_DECRYPT_FAILED) and every update is refused, until the id is changed back.
 * Not a confidentiality issue (nothing opens under the wrong context), but silent breakage
 * which the record cipher (update refuses an id change), encryptedPg and Drizzle refused.
 *   Sequelize: Model.update({ id: newId }, { where: { id } }) — beforeBulkUpdate only refuses
 *     encrypted / blind index attributes.
 *   TypeORM: repository.update(id, { id: newId }) — beforeUpdate without databaseEntity only
 *     refuses encrypted / blind index columns.
 * Asserted: refused with a typed ENVELOPE_BAD_INPUT, nothing written.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { DataTypes, Model, type ModelStatic, Sequelize } from "sequelize";
import { DataSource, EntitySchema } from "typeorm";
import { afterAll, describe, expect, it } from "vitest";
import { createRecordCipher } from "../src/index.js";
import { EncryptedText, encryptModel } from "../src/sequelize.js";
import { encryptEntity } from "../src/typeorm.js";
import { appEnvelope, codeOf } from "./attack-support.js";
import { PG_URL, usePgSchema } from "./support.js";

usePgSchema();

/** A refused change, or a row that still opens under its new id. */
async function refusedOrReadable(change: Promise<unknown>, read: () => Promise<unknown>) {
  const code = await codeOf(change);
  if (code === "ENVELOPE_BAD_INPUT") return "refused";
  expect(code).toBe("resolved");
  const readCode = await codeOf(read());
  return readCode === "resolved" ? "readable" : `changed, then reads fail: ${readCode}`;
}

describe("an application id change through a bulk update (PostgreSQL)", () => {
  const suffix = randomBytes(4).toString("hex");

  describe("Sequelize Model.update({ id })", () => {
    const sequelize = new Sequelize(PG_URL, { logging: false });
    const TABLE = `ormatk_pk_sqlz_${suffix}`;
    class U extends Model {}
    U.init(
      { id: { type: DataTypes.STRING(64), primaryKey: true }, phone: EncryptedText },
      { sequelize, modelName: "PkU", tableName: TABLE },
    );
    encryptModel(
      U as ModelStatic<Model>,
      createRecordCipher(appEnvelope(), { table: TABLE, encrypted: ["phone"] }),
    );
    afterAll(async () => {
      await sequelize.getQueryInterface().dropTable(TABLE);
      await sequelize.close();
    });

    it("is refused typed, or the row still opens under its new id", async () => {
      await U.sync({ force: true });
      const id = randomUUID();
      await U.create({ id, phone: "+1 555 0100" });
      const other = randomUUID();
      expect(
        await refusedOrReadable(U.update({ id: other }, { where: { id } }), () =>
          U.findByPk(other),
        ),
      ).toBe("refused");
    });
  });

  describe("TypeORM repository.update(id, { id })", () => {
    const TABLE = `ormatk_pk_typeorm_${suffix}`;
    class P {
      id!: string;
      phone!: string | null;
    }
    const Ps = new EntitySchema<P>({
      name: "PkP",
      target: P,
      tableName: TABLE,
      columns: {
        id: { type: String, length: 64, primary: true },
        phone: { type: "text", nullable: true },
      },
    });
    let ds: DataSource;
    afterAll(async () => {
      await ds.query(`DROP TABLE IF EXISTS "${TABLE}"`);
      await ds.destroy();
    });

    it("is refused typed, or the row still opens under its new id", async () => {
      ds = await new DataSource({
        type: "postgres",
        url: PG_URL,
        entities: [Ps],
        synchronize: true,
        logging: false,
      }).initialize();
      encryptEntity(
        ds,
        P,
        createRecordCipher(appEnvelope(), { table: TABLE, encrypted: ["phone"] }),
      );
      const repo = ds.getRepository(P);
      const id = randomUUID();
      await repo.save({ id, phone: "+1 555 0100" });
      const other = randomUUID();
      expect(
        await refusedOrReadable(repo.update(id, { id: other }), () =>
          repo.findOneBy({ id: other }),
        ),
      ).toBe("refused");
    });
  });
});
