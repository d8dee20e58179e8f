import { randomBytes, randomUUID } from "node:crypto";
import { EnvelopeError } from "@envelope/core";
import { DataSource, EntitySchema } from "typeorm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { encryptEntity } from "../src/typeorm.js";
import { counted, envelopeWith, INDEX_KEY_1, MYSQL_URL, PG_URL, usePgSchema } from "./support.js";

usePgSchema();

class Reader {
  id!: string;
  email!: string | null;
  email_idx?: string | null;
  phone!: string | null;
  name?: string | null;
}

const codeOf = async (p: () => Promise<unknown>) => {
  try {
    await p();
  } catch (e) {
    return EnvelopeError.isInstance(e) ? e.code : `not an EnvelopeError: ${String(e)}`;
  }
  return "resolved";
};

describe.each([
  { type: "postgres" as const, url: PG_URL },
  { type: "mariadb" as const, url: MYSQL_URL },
])("TypeORM select expressions on encrypted columns, on $type", ({ type, url }) => {
  const TABLE = `grd_typeorm_readers_${randomBytes(4).toString("hex")}`;
  const Readers = new EntitySchema<Reader>({
    name: "GuardReader",
    target: Reader,
    tableName: TABLE,
    columns: {
      id: { type: "uuid", primary: true, generated: "uuid" },
      email: { type: "text", nullable: true },
      email_idx: { type: String, length: 64, nullable: true },
      phone: { type: "text", nullable: true },
      name: { type: String, length: 64, nullable: true },
    },
  });
  let ds: DataSource;
  let readers: ReturnType<typeof encryptEntity<Reader, "email" | "phone">>;
  const qb = () => ds.getRepository(Reader).createQueryBuilder("m");

  beforeAll(async () => {
    ds = await new DataSource({ type, url, entities: [Readers], synchronize: true }).initialize();
    readers = encryptEntity(
      ds,
      Reader,
      createRecordCipher(
        envelopeWith(counted()),
        {
          table: TABLE,
          encrypted: ["email", "phone"] as const,
          blindIndexes: { email: { normalize: "email" as const } },
        },
        { blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }) },
      ),
    );
    await ds.getRepository(Reader).save([
      { id: randomUUID(), email: "ann@x.io", phone: "1", name: "Ann" },
      { id: randomUUID(), email: null, phone: "2", name: "Bob" },
    ]);
  });
  afterAll(async () => {
    await ds.query(`DROP TABLE IF EXISTS ${ds.driver.escape(TABLE)}`);
    await ds.destroy();
  });

  it("SQL functions or operators applied to an encrypted column are refused before any SQL is sent", async () => {
    const concat = type === "postgres" ? "m.email || '!'" : "CONCAT(m.email, '!')";
    const refused = [
      () => qb().select("UPPER(m.email)", "u").getRawMany(),
      () => qb().select("m.id").addSelect("LENGTH(m.phone)", "n").getRawMany(),
      () => qb().select(["m.id", "LOWER(m.email)"]).getRawMany(),
      () => qb().select(concat, "x").getRawMany(),
      () => qb().select('UPPER("m"."email")', "u").getRawMany(),
      () => qb().select("COUNT(DISTINCT m.email)", "n").getRawOne(),
      () => qb().select("m.id").addSelect("UPPER(m.email)", "u").getMany(),
      // select() before from(): checked when the SELECT is built.
      () => ds.createQueryBuilder().select("UPPER(m.email)", "u").from(Reader, "m").getRawMany(),
    ];
    const codes: string[] = [];
    for (const run of refused) codes.push(await codeOf(run));
    expect(codes).toEqual(refused.map(() => "ENVELOPE_BAD_INPUT"));
  });

  it("the column itself, COUNT, IS NULL, plain columns, names in literals and find's select still work", async () => {
    const all = await qb().select(["m.id", "m.email", "m.phone"]).orderBy("m.name").getMany();
    expect(all.map((r) => r.email)).toEqual(["ann@x.io", null]);
    expect((await qb().select("m").where("m.name = :n", { n: "Bob" }).getOne())?.phone).toBe("2");
    const raw = await qb()
      .select('"m"."email"'.replaceAll('"', type === "postgres" ? '"' : "`"), "e")
      .getRawMany();
    expect(raw).toHaveLength(2);
    expect(Number((await qb().select("COUNT(m.email)", "n").getRawOne())?.n)).toBe(1);
    const missing = await qb()
      .select("m.name", "name")
      .addSelect("m.email IS NULL", "missing")
      .orderBy("m.name")
      .getRawMany();
    expect(missing.map((r) => Boolean(Number(r.missing) || r.missing === true))).toEqual([
      false,
      true,
    ]);
    const upper = await qb()
      .select("UPPER(m.name)", "u")
      .addSelect("'email'", "lit")
      .orderBy("m.name")
      .getRawMany();
    expect(upper.map((r) => r.u)).toEqual(["ANN", "BOB"]);
    expect(await qb().getCount()).toBe(2);
    const found = await ds
      .getRepository(Reader)
      .find({ select: { id: true, email: true }, order: { name: "ASC" } });
    expect(found.map((r) => r.email)).toEqual(["ann@x.io", null]);
    expect((await readers.findBy("email", "ANN@x.io")).map((r) => r.name)).toEqual(["Ann"]);
  });
});
