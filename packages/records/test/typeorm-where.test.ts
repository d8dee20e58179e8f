// where on an encrypted column reached through a relation (find options walk relations),
// on PostgreSQL and MariaDB.
import { randomBytes } from "node:crypto";
import { EnvelopeError, localAesProvider } from "@envelope/core";
import { DataSource, EntitySchema } from "typeorm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRecordCipher } from "../src/index.js";
import { encryptEntity } from "../src/typeorm.js";
import { envelopeWith, MYSQL_URL, PG_URL, usePgSchema } from "./support.js";

usePgSchema();

class Owner {
  id!: string;
  email!: string | null;
  name?: string | null;
}
class Pet {
  id!: string;
  name!: string;
  owner?: Owner | null;
}

describe.each([
  { type: "postgres" as const, url: PG_URL },
  { type: "mariadb" as const, url: MYSQL_URL },
])("TypeORM: where through a relation on $type", ({ type, url }) => {
  const suffix = randomBytes(4).toString("hex");
  const OWNERS = `records_typeorm_owners_${suffix}`;
  const PETS = `records_typeorm_pets_${suffix}`;
  const owners = new EntitySchema<Owner>({
    name: "Owner",
    target: Owner,
    tableName: OWNERS,
    columns: {
      id: { type: "uuid", primary: true, generated: "uuid" },
      email: { type: "text", nullable: true },
      name: { type: String, length: 64, nullable: true },
    },
  });
  const pets = new EntitySchema<Pet>({
    name: "Pet",
    target: Pet,
    tableName: PETS,
    columns: {
      id: { type: "uuid", primary: true, generated: "uuid" },
      name: { type: String, length: 64 },
    },
    relations: { owner: { type: "many-to-one", target: "Owner", nullable: true } },
  });
  let ds: DataSource;
  beforeAll(async () => {
    ds = await new DataSource({
      type,
      url,
      entities: [owners, pets],
      synchronize: true,
      logging: false,
    }).initialize();
    const envelope = envelopeWith(localAesProvider({ keys: randomBytes(32).toString("hex") }));
    encryptEntity(ds, Owner, createRecordCipher(envelope, { table: OWNERS, encrypted: ["email"] }));
  });
  afterAll(async () => {
    await ds.query(`DROP TABLE IF EXISTS ${ds.driver.escape(PETS)}`);
    await ds.query(`DROP TABLE IF EXISTS ${ds.driver.escape(OWNERS)}`);
    await ds.destroy();
  });

  it("refuses where: { owner: { email } }; a where on the owner's plain column works", async () => {
    const ann = await ds.getRepository(Owner).save({ email: "ann@x.io", name: "Ann" });
    await ds.getRepository(Pet).save({ name: "Rex", owner: ann });
    const error = await ds
      .getRepository(Pet)
      .find({ where: { owner: { email: "ann@x.io" } }, relations: { owner: true } })
      .catch((e: unknown) => e);
    expect(EnvelopeError.isInstance(error) && error.code).toBe("ENVELOPE_BAD_INPUT");
    const found = await ds
      .getRepository(Pet)
      .find({ where: { owner: { name: "Ann" } }, relations: { owner: true } });
    expect(found.map((p) => [p.name, p.owner?.email])).toEqual([["Rex", "ann@x.io"]]);
  });
});
