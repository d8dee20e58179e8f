// TypeORM QueryBuilder on an encrypted entity: where, update().set(), delete().where() and
// insert().orUpdate() either work correctly or are refused with a typed error.
import { randomBytes, randomUUID } from "node:crypto";
import { EnvelopeError, localAesProvider } from "@envelope/core";
import { Brackets, DataSource, EntitySchema } from "typeorm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { encryptEntity } from "../src/typeorm.js";
import { envelopeWith, INDEX_KEY_1, PG_URL } from "./support.js";

const MYSQL_URL = process.env.RECORDS_TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";

class Member {
  id!: string;
  email!: string | null;
  email_idx?: string | null;
  phone!: string | null;
  code?: string | null;
}

/** The error code of a call that throws synchronously or rejects. */
async function codeOf(call: () => unknown): Promise<string> {
  try {
    await call();
  } catch (e) {
    return EnvelopeError.isInstance(e) ? e.code : `not an EnvelopeError: ${String(e)}`;
  }
  return "resolved";
}

describe.each([
  { type: "postgres" as const, url: PG_URL },
  { type: "mariadb" as const, url: MYSQL_URL },
])("TypeORM QueryBuilder on $type", ({ type, url }) => {
  const TABLE = `records_typeorm_qb_${randomBytes(4).toString("hex")}`;
  const members = new EntitySchema<Member>({
    name: "Member",
    target: Member,
    tableName: TABLE,
    columns: {
      id: { type: "uuid", primary: true, generated: "uuid" },
      email: { type: "text", nullable: true },
      email_idx: { type: String, length: 64, nullable: true },
      phone: { type: "text", nullable: true },
      // A unique key besides the primary key (orUpdate on MySQL/MariaDB must refuse).
      code: { type: String, length: 32, nullable: true, unique: true },
    },
  });
  let ds: DataSource;
  let people: ReturnType<typeof encryptEntity<Member, "email" | "phone">>;
  const stored = async (id: string) =>
    (
      (await ds.query(
        `SELECT * FROM ${ds.driver.escape(TABLE)} WHERE id = ${type === "postgres" ? "$1" : "?"}`,
        [id],
      )) as Record<string, unknown>[]
    )[0]!;
  const dumpHas = async (needle: string) =>
    JSON.stringify(await ds.query(`SELECT * FROM ${ds.driver.escape(TABLE)}`)).includes(needle);

  beforeAll(async () => {
    ds = await new DataSource({
      type,
      url,
      entities: [members],
      synchronize: true,
      logging: false,
    }).initialize();
    const envelope = envelopeWith(localAesProvider({ keys: randomBytes(32).toString("hex") }));
    const cipher = createRecordCipher(
      envelope,
      {
        table: TABLE,
        encrypted: ["email", "phone"],
        blindIndexes: { email: { normalize: "email" } },
      },
      { blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }) },
    );
    people = encryptEntity(ds, Member, cipher);
  });
  afterAll(async () => {
    await ds.query(`DROP TABLE IF EXISTS ${ds.driver.escape(TABLE)}`);
    await ds.destroy();
  });

  it("where on an encrypted column is refused (SQL strings, objects, Brackets); IS NULL and the blind index work", async () => {
    const repo = ds.getRepository(Member);
    const ann = await repo.save(repo.create({ email: "qb@x.io", phone: "1" }));
    const qb = () => repo.createQueryBuilder("m");
    const refusals = [
      () => qb().where("m.email = :e", { e: "qb@x.io" }),
      () => qb().where("email = :e", { e: "qb@x.io" }),
      () => qb().where("m.id IS NOT NULL").andWhere("LOWER(m.phone) = :p", { p: "1" }),
      () => qb().where("m.id = :id", { id: ann.id }).orWhere({ email: "qb@x.io" }),
      () => qb().where(new Brackets((b) => b.where("m.email LIKE :e", { e: "%x%" }))),
    ];
    for (const refuse of refusals) expect(await codeOf(refuse)).toBe("ENVELOPE_BAD_INPUT");
    const error = await codeOf(() => qb().where("m.email = :e", { e: "qb@x.io" }));
    expect(error).toBe("ENVELOPE_BAD_INPUT");

    // Allowed: a null check, the blind index (a parameter may be called :email), plain columns.
    const nulls = await qb().where("m.email IS NOT NULL AND m.id = :id", { id: ann.id }).getMany();
    expect(nulls.map((m) => m.email)).toEqual(["qb@x.io"]);
    const byIndex = await qb()
      .where("m.email_idx IN (:...email)", {
        email: people.cipher.candidatesFor("email", "QB@x.io"),
      })
      .getMany();
    expect(byIndex.map((m) => [m.id, m.email])).toEqual([[ann.id, "qb@x.io"]]);
  });

  it("update().set() of an encrypted column is refused (listeners on or off); plain columns work", async () => {
    const repo = ds.getRepository(Member);
    const bob = await repo.save(repo.create({ email: "bob@x.io", phone: "2" }));
    const update = () => ds.createQueryBuilder().update(Member);
    expect(
      await codeOf(() =>
        update().set({ email: "new@x.io" }).where("id = :id", { id: bob.id }).execute(),
      ),
    ).toBe("ENVELOPE_BAD_INPUT");
    expect(
      await codeOf(() =>
        update()
          .set({ phone: "3" })
          .callListeners(false)
          .where("id = :id", { id: bob.id })
          .execute(),
      ),
    ).toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(() => update().set({ email_idx: "00000000" }))).toBe("ENVELOPE_BAD_INPUT");
    expect(
      await codeOf(() => update().set({ code: "b" }).where("email = :e", { e: "bob@x.io" })),
    ).toBe("ENVELOPE_BAD_INPUT");
    await update().set({ code: "bob" }).where("id = :id", { id: bob.id }).execute();
    expect(await repo.findOneBy({ id: bob.id })).toMatchObject({ email: "bob@x.io", code: "bob" });
    expect(await dumpHas("new@x.io")).toBe(false);
    // save() still writes through the guarded set (sealed values pass).
    bob.email = "bob2@x.io";
    await repo.save(bob);
    expect((await people.findBy("email", "bob2@x.io")).map((m) => m.id)).toEqual([bob.id]);
  });

  it("delete().where() on an encrypted column is refused; on plain columns it deletes", async () => {
    const repo = ds.getRepository(Member);
    const cat = await repo.save(repo.create({ email: "cat@x.io", phone: null }));
    const del = () => ds.createQueryBuilder().delete().from(Member);
    expect(await codeOf(() => del().where("email = :e", { e: "cat@x.io" }).execute())).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await codeOf(() => del().where({ email: "cat@x.io" }).execute())).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await codeOf(() => repo.delete({ email: "cat@x.io" }))).toBe("ENVELOPE_BAD_INPUT");
    await del().where("id = :id", { id: cat.id }).execute();
    expect(await repo.findOneBy({ id: cat.id })).toBeNull();
  });

  it("insert().orUpdate() of an encrypted column: on the primary key it re-seals and moves the index (PostgreSQL); other keys are refused", async () => {
    const id = randomUUID();
    const insert = (email: string) =>
      ds.createQueryBuilder().insert().into(Member).values({ id, email, phone: "9" });
    expect(await codeOf(() => insert("o1@x.io").orUpdate(["email"], ["code"]))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await codeOf(() => insert("o1@x.io").orUpdate(["email_idx"], ["id"]))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    if (type === "mariadb") {
      // ON DUPLICATE KEY UPDATE fires on the unique `code` too: refused whatever the target.
      expect(await codeOf(() => insert("o1@x.io").orUpdate(["email", "phone"], ["id"]))).toBe(
        "ENVELOPE_BAD_INPUT",
      );
      return;
    }
    await insert("o1@x.io").orUpdate(["email", "phone"], ["id"]).execute();
    await insert("o2@x.io").orUpdate(["email", "phone"], ["id"]).execute();
    expect(await ds.getRepository(Member).findOneBy({ id })).toMatchObject({ email: "o2@x.io" });
    expect((await people.findBy("email", "o2@x.io")).map((m) => m.id)).toEqual([id]);
    expect(await people.findBy("email", "o1@x.io")).toEqual([]);
    expect(String((await stored(id)).email)).toMatch(/^ev1:/);
  });
});
