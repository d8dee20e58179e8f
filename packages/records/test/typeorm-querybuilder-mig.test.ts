// TypeORM QueryBuilder on an encrypted entity: where, having, orderBy, groupBy, join
// conditions, update().set(), delete().where() and insert().orUpdate() either work correctly
// or are refused with a typed error.
import { randomBytes, randomUUID } from "node:crypto";
import { EnvelopeError, localAesProvider } from "@envelope/core";
import { Brackets, DataSource, EntitySchema } from "typeorm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { encryptEntity } from "../src/typeorm.js";
import { envelopeWith, INDEX_KEY_1, MYSQL_URL, PG_URL, usePgSchema } from "./support.js";

usePgSchema();

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
      // A where given as a function: TypeORM calls it and uses the SQL it returns.
      () => qb().where(() => "m.email = :e", { e: "qb@x.io" }),
      () =>
        qb()
          .where("m.id > 0")
          .andWhere(() => "LOWER(m.phone) = '1'"),
      () =>
        qb().where(
          (outer) =>
            `m.id IN ${outer.subQuery().select("o.id").from(Member, "o").where("o.email = :e").getQuery()}`,
          { e: "qb@x.io" },
        ),
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
    const byFunction = await qb()
      .where(() => "m.id = :id AND m.email IS NOT NULL", { id: ann.id })
      .getMany();
    expect(byFunction.map((m) => m.email)).toEqual(["qb@x.io"]);
  });

  it("having, orderBy, groupBy and join conditions naming an encrypted column are refused; on plain columns they work", async () => {
    const repo = ds.getRepository(Member);
    const dan = await repo.save(repo.create({ email: "dan@x.io", phone: "4", code: "dan" }));
    const qb = () => repo.createQueryBuilder("m");
    const grouped = () => qb().select("m.code").groupBy("m.code");
    const refusals = [
      () => grouped().having("MAX(m.email) = :e", { e: "dan@x.io" }),
      () => grouped().having("COUNT(*) > 0").andHaving("MIN(phone) > :p", { p: "1" }),
      () => grouped().having("COUNT(*) > 0").orHaving("MIN(m.email) < 'a'"),
      () => qb().orderBy("m.email"),
      () => qb().orderBy({ "m.phone": "DESC" }),
      () => qb().orderBy("m.code").addOrderBy("email", "ASC", "NULLS LAST"),
      () => qb().select("m.email").groupBy("m.email"),
      () => grouped().addGroupBy("m.phone"),
      () => qb().leftJoin(Member, "o", "o.email = m.email"),
      () => qb().innerJoinAndSelect(Member, "o", "o.id = m.id AND o.phone = :p", { p: "4" }),
      () => qb().leftJoinAndMapOne("m.code", Member, "o", "o.id <> m.id AND m.email = o.email"),
      () => ds.createQueryBuilder().update(Member).set({ code: "x" }).orderBy("email"),
      () => repo.find({ order: { email: "ASC" } }),
    ];
    for (const refuse of refusals) expect(await codeOf(refuse)).toBe("ENVELOPE_BAD_INPUT");
    let error: unknown;
    try {
      qb().orderBy("m.phone");
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ details: { table: TABLE, field: "phone" } });
    expect(String(error)).toContain("orderBy");

    // Allowed: the same clauses on plain columns, a join on the id, IS NULL.
    const joined = await qb()
      .innerJoinAndSelect(Member, "o", "o.id = m.id AND o.email IS NOT NULL")
      .where("m.id = :id", { id: dan.id })
      .orderBy("m.code", "DESC")
      .addOrderBy("m.id")
      .getMany();
    expect(joined.map((m) => m.email)).toEqual(["dan@x.io"]);
    const counted = await qb()
      .select("m.code", "code")
      .addSelect("COUNT(*)", "n")
      .where("m.id = :id", { id: dan.id })
      .groupBy("m.code")
      .having("COUNT(m.id) > 0")
      .getRawMany();
    expect(counted.map((r) => r.code)).toEqual(["dan"]);
    expect(await repo.find({ where: { id: dan.id }, order: { code: "ASC" } })).toHaveLength(1);
  });

  it("a string literal or parameter equal to an encrypted column's name is no reference; real references still are", async () => {
    const repo = ds.getRepository(Member);
    const eve = await repo.save(repo.create({ email: "eve@x.io", phone: "email", code: "email" }));
    const qb = () => repo.createQueryBuilder("m").where("m.id = :id", { id: eve.id });
    const found = async (q: ReturnType<typeof qb>) => (await q.getMany()).map((m) => m.email);
    // Literals ('' escapes a quote), parameter values and parameter names: allowed.
    expect(await found(qb().andWhere("m.code = 'email'"))).toEqual(["eve@x.io"]);
    expect(await found(qb().andWhere("m.code <> 'it''s m.email = ''phone'''"))).toEqual([
      "eve@x.io",
    ]);
    expect(await found(qb().andWhere("m.code = :v", { v: "email" }))).toEqual(["eve@x.io"]);
    expect(await found(qb().andWhere("m.code = :email", { email: "email" }))).toEqual(["eve@x.io"]);
    expect(await found(qb().andWhere({ code: "email" }))).toEqual(["eve@x.io"]);
    expect(await found(qb().innerJoin(Member, "o", "o.id = m.id AND o.code = 'phone'"))).toEqual(
      [],
    );
    const grouped = await qb()
      .select("m.code", "code")
      .groupBy("m.code")
      .having("MAX(m.code) = 'email'")
      .getRawMany();
    expect(grouped.map((r) => r.code)).toEqual(["email"]);

    // A reference outside the literals is still refused, quoted as the dialect quotes it.
    const quoted = type === "postgres" ? '"m"."email"' : "`m`.`email`";
    const refusals = [
      "m.code = 'email' OR m.email = :v",
      "m.code = 'a''' OR email = :v",
      `${quoted} = :v`,
      `m.code = 'x' AND ${quoted} IS NOT NULL AND ${quoted} <> :v`,
      // Where lexing depends on the dialect (backslash escapes, comments), literals count.
      "m.code = 'a\\' OR m.email = :v OR m.code = '\\'",
      "m.code = :v /* ' */ OR m.email = :v /* ' */",
      "m.code = 'phone' -- it's email",
    ];
    for (const sql of refusals) {
      expect(await codeOf(() => qb().andWhere(sql, { v: "x" })), sql).toBe("ENVELOPE_BAD_INPUT");
    }
    expect(await codeOf(() => qb().having(`MAX(m.code) = 'x' OR MAX(${quoted}) = :v`))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
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
    // repository.increment / decrement: SQL arithmetic on a sealed value (a function in set()).
    expect(await codeOf(() => repo.increment({ id: bob.id }, "phone", 1))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await codeOf(() => repo.decrement({ id: bob.id }, "email", 1))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
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
