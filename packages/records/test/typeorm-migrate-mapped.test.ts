// `migrateTable({ records: { fieldOfColumn } })` on an entity whose properties live under
// other column names (@Column({ name })): the migrated rows open through the TypeORM
// subscriber and encryptEntity's findBy finds them by blind index.
import { createCipheriv, randomBytes, randomUUID } from "node:crypto";
import { connect, dropStateTables, legacyDecoder, migrateTable } from "@envelope/batch-rewrap";
import { localAesProvider } from "@envelope/core";
import { DataSource, EntitySchema } from "typeorm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, createRecordCipher, type RecordSchema } from "../src/index.js";
import { encryptEntity } from "../src/typeorm.js";
import { envelopeWith, INDEX_KEY_1, MYSQL_URL, PG_URL, usePgSchema } from "./support.js";

usePgSchema();

class Patient {
  id!: string;
  ssn!: string | null;
  ssn_idx?: string | null;
}

const legacyKey = randomBytes(32);
const gcmJson = (text: string) => {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", legacyKey, iv);
  const encrypted = Buffer.concat([c.update(text), c.final()]);
  return JSON.stringify({
    iv: iv.toString("hex"),
    authTag: c.getAuthTag().toString("hex"),
    encrypted: encrypted.toString("hex"),
  });
};

describe.each([
  { type: "postgres" as const, url: PG_URL },
  { type: "mariadb" as const, url: MYSQL_URL },
])("migrate a TypeORM entity with mapped column names on $type", ({ type, url }) => {
  const TABLE = `records_typeorm_map_${randomBytes(4).toString("hex")}`;
  const patients = new EntitySchema<Patient>({
    name: "Patient",
    target: Patient,
    tableName: TABLE,
    columns: {
      id: { type: String, length: 36, primary: true, name: "patient_id" },
      ssn: { type: "text", nullable: true, name: "ssn_enc" },
      ssn_idx: { type: String, length: 64, nullable: true, name: "ssn_bidx" },
    },
  });
  const appKey = randomBytes(32).toString("hex");
  const schema: RecordSchema<"ssn"> = {
    table: "patients",
    encrypted: ["ssn"],
    blindIndexes: { ssn: {} },
    pad: { ssn: 16 },
  };
  let ds: DataSource;

  beforeAll(async () => {
    ds = await new DataSource({
      type,
      url,
      entities: [patients],
      synchronize: true,
      logging: false,
    }).initialize();
  });
  afterAll(async () => {
    await ds.query(`DROP TABLE IF EXISTS ${ds.driver.escape(TABLE)}`);
    await ds.destroy();
  });

  it("opens the migrated values and finds them by blind index", async () => {
    const ssns = ["123-45-6789", "987-65-4321", "555-01-0000"];
    const ids = ssns.map(() => randomUUID());
    const p = (i: number) => (type === "postgres" ? `$${i}` : "?");
    for (const [i, ssn] of ssns.entries()) {
      await ds.query(
        `INSERT INTO ${ds.driver.escape(TABLE)} (patient_id, ssn_enc) VALUES (${p(1)}, ${p(2)})`,
        [ids[i], gcmJson(ssn)],
      );
    }
    const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
    const db = await connect(url);
    const prefix = `${TABLE}_st`;
    try {
      const report = await migrateTable({
        db,
        table: TABLE,
        primaryKey: "patient_id",
        columns: ["ssn_enc"],
        to: localAesProvider({ keys: appKey }),
        from: legacyDecoder({ format: "aes-256-gcm-json", key: { bytes: legacyKey } }),
        stateTablePrefix: prefix,
        records: {
          schema,
          blindIndex,
          fieldOfColumn: { patient_id: "id", ssn_enc: "ssn", ssn_bidx: "ssn_idx" },
        },
        apply: true,
      });
      expect(report.run.failed).toBe(0);
      expect(report.run.rewrapped).toBe(ssns.length);
    } finally {
      await dropStateTables(db, prefix);
      await db.close();
    }

    const envelope = envelopeWith(localAesProvider({ keys: appKey }));
    const people = encryptEntity(ds, Patient, createRecordCipher(envelope, schema, { blindIndex }));
    const found = await people.findBy("ssn", ssns[1]!);
    expect(found.map((x) => [x.id, x.ssn])).toEqual([[ids[1], ssns[1]]]);
    const all = await ds.getRepository(Patient).find();
    expect(new Map(all.map((x) => [x.id, x.ssn]))).toEqual(
      new Map(ids.map((id, i) => [id, ssns[i]])),
    );
  });
});
