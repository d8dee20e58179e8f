import { randomBytes, randomUUID } from "node:crypto";
import { EnvelopeError } from "@envelope/core";
import { DataSource, EntitySchema } from "typeorm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { encryptEntity } from "../src/typeorm.js";
import { counted, envelopeWith, INDEX_KEY_1, MYSQL_URL, PG_URL, usePgSchema } from "./support.js";

usePgSchema();

const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });

type Row = Record<string, unknown>;
class Member {
  id!: string;
  email!: string | null;
  email_idx?: string | null;
  phone!: string | null;
  name?: string | null;
}

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
  { type: "postgres" as const, url: PG_URL },
  { type: "mariadb" as const, url: MYSQL_URL },
])("TypeORM inserts that skip the subscriber, on $type", ({ type, url }) => {
  const suffix = randomBytes(4).toString("hex");
  const TABLE = `grd_typeorm_members_${suffix}`;
  const STAGING = `grd_typeorm_staging_${suffix}`;
  const Members = new EntitySchema<Member>({
    name: "GuardMember",
    target: Member,
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
  let members: ReturnType<typeof encryptEntity<Member, "email" | "phone">>;
  const rows = async () => (await ds.query(`SELECT * FROM ${ds.driver.escape(TABLE)}`)) as Row[];
  const dumpHas = async (needle: string) =>
    (await rows()).some((r) => JSON.stringify(r).includes(needle));
  const plain = (email: string): Member => ({ id: randomUUID(), email, phone: "+1 555 0100" });

  beforeAll(async () => {
    ds = await new DataSource({ type, url, entities: [Members], synchronize: true }).initialize();
    members = encryptEntity(
      ds,
      Member,
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
    await ds.query(
      `CREATE TABLE ${ds.driver.escape(STAGING)} (id varchar(36) PRIMARY KEY, email text)`,
    );
  });
  afterAll(async () => {
    await ds.query(`DROP TABLE IF EXISTS ${ds.driver.escape(TABLE)}`);
    await ds.query(`DROP TABLE IF EXISTS ${ds.driver.escape(STAGING)}`);
    await ds.destroy();
  });

  it("save(e, { listeners: false }) of plaintext is refused with a typed error; nothing is written", async () => {
    const repo = ds.getRepository(Member);
    const refusal = await errorOf(repo.save(plain("nolisten@x.io"), { listeners: false }));
    expect(refusal.code).toBe("ENVELOPE_BAD_INPUT");
    expect(refusal.message).toMatch(/listeners/);
    expect(refusal.message).toMatch(/save\(\)/);
    expect(refusal.message).not.toMatch(/nolisten/); // the plaintext is not echoed
    expect(await dumpHas("nolisten@x.io")).toBe(false);
    expect(await dumpHas("555 0100")).toBe(false);
    // save of a stored entity with listeners off is an UPDATE: refused by the set() guard.
    const kept = await repo.save(repo.create({ email: "kept@x.io", phone: "1" }));
    expect(
      await codeOf(repo.save({ id: kept.id, email: "changed@x.io" }, { listeners: false })),
    ).toBe("ENVELOPE_BAD_INPUT");
    expect(await dumpHas("changed@x.io")).toBe(false);
    await repo.delete({ id: kept.id });
  });

  it("QueryBuilder insert().callListeners(false), one row or many, is refused; nothing is written", async () => {
    const insert = () => ds.createQueryBuilder().insert().into(Member);
    expect(await codeOf(insert().values(plain("qb@x.io")).callListeners(false).execute())).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    // Many rows, the plaintext one last: the whole statement is refused, not just that row.
    const sealed = await members.cipher.seal({ id: randomUUID(), email: "ok@x.io", phone: null });
    expect(
      await codeOf(
        insert()
          .values([sealed as Member, plain("many@x.io")])
          .callListeners(false)
          .execute(),
      ),
    ).toBe("ENVELOPE_BAD_INPUT");
    // Only the phone in plaintext (a column without a blind index).
    const phoneOnly = { id: randomUUID(), email: null, phone: "555 0199" };
    expect(await codeOf(insert().values(phoneOnly).callListeners(false).execute())).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await rows()).toEqual([]);
    expect(await dumpHas("555 0199")).toBe(false);
  });

  it("values that only look sealed, raw SQL values and a blind index alone are refused, listeners on or off", async () => {
    const insert = () => ds.createQueryBuilder().insert().into(Member);
    // The `ev1:` prefix is not enough: the value must decode as an envelope.
    const fake = { id: randomUUID(), email: "ev1:plain@x.io", phone: null };
    expect(await codeOf(insert().values(fake).callListeners(false).execute())).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    // A function value is SQL TypeORM inserts as it is.
    const sql = { id: randomUUID(), email: () => "'sqlplain@x.io'", phone: null };
    expect(
      await codeOf(
        insert()
          .values(sql as never)
          .callListeners(false)
          .execute(),
      ),
    ).toBe("ENVELOPE_BAD_INPUT");
    // A blind index without its field: a row findBy would find with no value to open.
    const indexOnly = { id: randomUUID(), email_idx: "0123abcd", phone: null };
    expect(await codeOf(insert().values(indexOnly).callListeners(false).execute())).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await codeOf(ds.getRepository(Member).insert(indexOnly))).toBe("ENVELOPE_BAD_INPUT");
    expect(await rows()).toEqual([]);
  });

  it("an upsert (orUpdate) with callListeners(false) and INSERT … SELECT are refused", async () => {
    const upsert = ds
      .createQueryBuilder()
      .insert()
      .into(Member)
      .values(plain("upsertplain@x.io"))
      .orUpdate(["email", "phone"], ["id"])
      .callListeners(false);
    expect(await codeOf(upsert.execute())).toBe("ENVELOPE_BAD_INPUT");
    await ds.query(
      `INSERT INTO ${ds.driver.escape(STAGING)} (id, email) VALUES ('${randomUUID()}', 'staged@x.io')`,
    );
    const fromSelect = ds
      .createQueryBuilder()
      .insert()
      .into(Member, ["id", "email"])
      .valuesFromSelect((qb) => qb.select("s.id").addSelect("s.email").from(STAGING, "s"));
    expect(await codeOf(fromSelect.execute())).toBe("ENVELOPE_BAD_INPUT");
    expect(await rows()).toEqual([]);
  });

  it("normal paths still work: save, insert, QueryBuilder inserts with listeners, upsert, transactions, pre-sealed values", async () => {
    const repo = ds.getRepository(Member);
    const a = await repo.save(repo.create({ email: "a@x.io", phone: "1" }));
    await repo.insert({ id: randomUUID(), email: "b@x.io", phone: null });
    await ds
      .createQueryBuilder()
      .insert()
      .into(Member)
      .values([plain("c@x.io"), plain("d@x.io")])
      .execute();
    const e = randomUUID();
    await repo.upsert({ id: e, email: "e1@x.io", phone: "1" }, ["id"]);
    await repo.upsert({ id: e, email: "e2@x.io", phone: "2" }, ["id"]);
    const f = randomUUID();
    await ds.transaction((m) => m.save(Member, { id: f, email: "f@x.io", phone: null }));
    await ds.transaction((m) => m.insert(Member, { id: randomUUID(), email: null, phone: null }));
    // Values sealed by the cipher pass with listeners off: that is what the subscriber writes.
    const g = randomUUID();
    const sealed = await members.cipher.seal({ id: g, email: "g@x.io", phone: "7" });
    await ds
      .createQueryBuilder()
      .insert()
      .into(Member)
      .values(sealed)
      .callListeners(false)
      .execute();
    // getSql() sends nothing: not checked.
    const sql = ds.createQueryBuilder().insert().into(Member).values(plain("sql@x.io")).getSql();
    expect(sql).toMatch(/INSERT/);

    expect(await repo.findOneBy({ id: a.id })).toMatchObject({ email: "a@x.io", phone: "1" });
    for (const email of ["b@x.io", "c@x.io", "d@x.io", "e2@x.io", "f@x.io", "g@x.io"]) {
      expect((await members.findBy("email", email)).map((m) => m.email)).toEqual([email]);
    }
    expect((await repo.findOneBy({ id: g }))?.phone).toBe("7");
    for (const r of await rows()) {
      for (const value of [r.email, r.phone]) {
        if (value !== null) expect(String(value)).toMatch(/^ev1:/);
      }
    }
  });
});
