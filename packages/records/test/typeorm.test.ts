import { randomBytes, randomUUID } from "node:crypto";
import { EnvelopeError, inspectEnvelope, type KeyProvider } from "@envelope/core";
import { DataSource, EntitySchema, type EntitySubscriberInterface, IsNull, Not } from "typeorm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { encryptEntity } from "../src/typeorm.js";
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
class Person {
  id!: string;
  email!: string | null;
  email_idx?: string | null;
  phone!: string | null;
  name?: string | null;
}

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return EnvelopeError.isInstance(e) ? e.code : `not an EnvelopeError: ${String(e)}`;
  }
  return "resolved";
};

/** A provider whose unwraps take a while, counting how many run at once. */
function slowUnwraps(inner: KeyProvider) {
  const seen = { inFlight: 0, max: 0 };
  const provider: KeyProvider = {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    wrap: (k, r) => inner.wrap(k, r),
    async unwrap(entry, request) {
      seen.inFlight++;
      seen.max = Math.max(seen.max, seen.inFlight);
      await new Promise((r) => setTimeout(r, 5));
      try {
        return await inner.unwrap(entry, request);
      } finally {
        seen.inFlight--;
      }
    },
  };
  return { provider, seen };
}

describe.each([
  { type: "postgres" as const, url: PG_URL },
  { type: "mariadb" as const, url: MYSQL_URL },
])("TypeORM on $type", ({ type, url }) => {
  const TABLE = `records_typeorm_people_${randomBytes(4).toString("hex")}`;
  const schema = {
    table: TABLE,
    encrypted: ["email", "phone"] as const,
    blindIndexes: { email: { normalize: "email" as const } },
  };
  const People = new EntitySchema<Person>({
    name: "Person",
    target: Person,
    tableName: TABLE,
    columns: {
      id: { type: "uuid", primary: true, generated: "uuid" },
      email: { type: "text", nullable: true },
      email_idx: { type: String, length: 64, nullable: true },
      phone: { type: "text", nullable: true },
      name: { type: String, length: 64, nullable: true },
    },
  });
  const open = (sync = false) =>
    new DataSource({
      type,
      url,
      entities: [People],
      synchronize: sync,
      logging: false,
    }).initialize();
  const kms = counted();
  const oldKms = counted();
  const newKms = counted();
  let ds: DataSource;
  let people: ReturnType<typeof encryptEntity<Person, "email" | "phone">>;
  const stored = async (id: string): Promise<Row> => {
    const q = ds.createQueryRunner();
    try {
      const rows = await ds.query(
        `SELECT * FROM ${ds.driver.escape(TABLE)} WHERE id = ${type === "postgres" ? "$1" : "?"}`,
        [id],
      );
      return rows[0] as Row;
    } finally {
      await q.release();
    }
  };
  const dumpHas = async (needle: string) => {
    const rows = (await ds.query(`SELECT * FROM ${ds.driver.escape(TABLE)}`)) as Row[];
    return rows.some((r) => JSON.stringify(r).includes(needle));
  };

  beforeAll(async () => {
    ds = await open(true);
    people = encryptEntity(
      ds,
      Person,
      createRecordCipher(envelopeWith(kms), schema, { blindIndex }),
    );
  });
  afterAll(async () => {
    await ds.query(`DROP TABLE IF EXISTS ${ds.driver.escape(TABLE)}`);
    await ds.destroy();
  });

  it("save seals (one KMS call, a generated uuid given first); finds return plaintext; findBy uses the index", async () => {
    const repo = ds.getRepository(Person);
    kms.reset();
    const ann = await repo.save(
      repo.create({ email: "Ann@Example.com", phone: "+1 555 0100", name: "Ann" }),
    );
    expect(kms.calls.wrap).toBe(1);
    expect(ann).toMatchObject({ email: "Ann@Example.com", phone: "+1 555 0100" });
    expect(ann.id).toMatch(/^[0-9a-f-]{36}$/);
    const row = await stored(ann.id);
    expect(String(row.email)).toMatch(/^ev1:/);
    expect(await dumpHas("Ann@Example")).toBe(false);
    expect(await dumpHas("555 0100")).toBe(false);
    expect(await repo.findOneBy({ id: ann.id })).toMatchObject({
      email: "Ann@Example.com",
      phone: "+1 555 0100",
    });
    expect((await repo.find({ where: { name: "Ann" } }))[0]?.phone).toBe("+1 555 0100");
    const found = await people.findBy("email", "  ann@example.COM");
    expect(found.map((p) => p.id)).toEqual([ann.id]);
    await repo.insert({ id: randomUUID(), email: "ins@x.io", phone: null });
    expect((await people.findBy("email", "ins@x.io"))[0]?.phone).toBeNull();
  });

  it("save of a change re-seals that field only (no KMS call); the index follows the email", async () => {
    const repo = ds.getRepository(Person);
    const bob = await repo.save(repo.create({ email: "bob@x.io", phone: "1", name: "Bob" }));
    const before = await stored(bob.id);
    const loaded = (await repo.findOneBy({ id: bob.id }))!;
    kms.reset();
    loaded.phone = "2";
    loaded.name = "Bobby";
    await repo.save(loaded);
    expect(kms.calls).toEqual({ wrap: 0, unwrap: 0, generateDataKey: 0 });
    expect(loaded.phone).toBe("2"); // plaintext back on the entity
    const after = await stored(bob.id);
    expect(after.email).toBe(before.email);
    expect(after.phone).not.toBe(before.phone);
    expect(after.name).toBe("Bobby");
    await repo.save({ id: bob.id, email: "robert@x.io" });
    expect(await people.findBy("email", "bob@x.io")).toEqual([]);
    expect((await people.findBy("email", "robert@x.io"))[0]).toMatchObject({ phone: "2" });
  });

  it("transactions: rollback leaves nothing; findBy in the transaction sees its writes", async () => {
    const id = randomUUID();
    await expect(
      ds.transaction(async (manager) => {
        await manager.save(Person, { id, email: "tx@x.io", phone: "1" });
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect(await ds.getRepository(Person).findOneBy({ id })).toBeNull();
    await ds.transaction(async (manager) => {
      await manager.save(Person, { id, email: "tx@x.io", phone: "1" });
      await manager.save(Person, { id, phone: "2" });
      expect((await people.findBy("email", "tx@x.io", { manager }))[0]?.phone).toBe("2");
    });
    expect((await ds.getRepository(Person).findOneBy({ id }))?.phone).toBe("2");
  });

  it("update(criteria, values) of encrypted columns is refused; plain columns still work", async () => {
    const repo = ds.getRepository(Person);
    const e = await repo.save(repo.create({ email: "e@x.io", phone: "1" }));
    expect(await codeOf(repo.update({ id: e.id }, { email: "x@x.io" }))).toBe("ENVELOPE_BAD_INPUT");
    await repo.update({ id: e.id }, { name: "plain is fine" });
    expect(await repo.findOneBy({ id: e.id })).toMatchObject({
      email: "e@x.io",
      name: "plain is fine",
    });
    expect(await dumpHas("x@x.io")).toBe(false);
  });

  it("upsert seals like an insert; its update branch moves the blind index too", async () => {
    const repo = ds.getRepository(Person);
    const id = randomUUID();
    await repo.upsert({ id, email: "up1@x.io", phone: "1" }, ["id"]);
    // TypeORM picks the columns to overwrite before the subscriber adds email_idx: the
    // wrapped upsert names email_idx, so the update branch writes the new index.
    await repo.upsert({ id, email: "up2@x.io", phone: "2" }, ["id"]);
    expect(await repo.findOneBy({ id })).toMatchObject({ email: "up2@x.io", phone: "2" });
    expect((await people.findBy("email", "up2@x.io"))[0]?.id).toBe(id);
    expect(await people.findBy("email", "up1@x.io")).toEqual([]);
    // Through a transaction's manager, and an upsert that leaves email alone keeps its index.
    await ds.transaction((m) => m.upsert(Person, [{ id, email: "up3@x.io", phone: "3" }], ["id"]));
    await repo.upsert({ id, phone: "4" }, ["id"]);
    expect((await people.findBy("email", "up3@x.io"))[0]).toMatchObject({ id, phone: "4" });
    await repo.upsert({ id, email: null, phone: "5" }, ["id"]);
    expect((await stored(id)).email_idx).toBeNull();
    expect(await dumpHas("up3@x.io")).toBe(false);
  });

  it("where on an encrypted column is refused (typed, pointing to findBy); IsNull is allowed", async () => {
    const repo = ds.getRepository(Person);
    const e = await repo.save(repo.create({ email: "w@x.io", phone: null }));
    expect(await codeOf(repo.findBy({ email: "w@x.io" }))).toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(repo.findOne({ where: [{ id: "none" }, { email: "w@x.io" }] }))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await codeOf(repo.count({ where: { email: "w@x.io" } }))).toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(ds.manager.exists(Person, { where: { phone: "1" } }))).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    const error = await repo.findBy({ email: "w@x.io" }).catch((x: unknown) => x);
    expect(String((error as Error).message)).toContain('findBy("email", value)');
    expect(String((error as Error).message)).not.toContain("w@x.io");
    const withNull = await repo.findBy({ id: e.id, phone: IsNull() });
    expect(withNull.map((p) => p.id)).toEqual([e.id]);
    expect(await repo.count({ where: { id: e.id, phone: Not(IsNull()) } })).toBe(0);
    expect((await people.findBy("email", "W@x.io"))[0]?.id).toBe(e.id);
  });

  it("a value from another row (wrong context) fails with a typed error, never the raw value", async () => {
    const repo = ds.getRepository(Person);
    const x = await repo.save(repo.create({ email: "x@x.io", phone: "1" }));
    const y = await repo.save(repo.create({ email: "y@x.io", phone: "2" }));
    const p = type === "postgres" ? ["$1", "$2"] : ["?", "?"];
    await ds.query(`UPDATE ${ds.driver.escape(TABLE)} SET email = ${p[0]} WHERE id = ${p[1]}`, [
      (await stored(x.id)).email,
      y.id,
    ]);
    expect(await codeOf(repo.findOneBy({ id: y.id }))).toBe("ENVELOPE_DECRYPT_FAILED");
    await ds.query(`UPDATE ${ds.driver.escape(TABLE)} SET phone = ${p[0]} WHERE id = ${p[1]}`, [
      "+1 555 plaintext",
      x.id,
    ]);
    expect(await codeOf(repo.findOneBy({ id: x.id }))).toBe("ENVELOPE_BAD_FORMAT");
    await ds.query(`DELETE FROM ${ds.driver.escape(TABLE)} WHERE id IN (${p[0]}, ${p[1]})`, [
      x.id,
      y.id,
    ]);
  });

  it("master key rotation: a write between save's read and its update is not overwritten", async () => {
    const oldDs = await open();
    const newDs = await open();
    try {
      encryptEntity(
        oldDs,
        Person,
        createRecordCipher(envelopeWith(oldKms), schema, { blindIndex }),
      );
      const rotated = encryptEntity(
        newDs,
        Person,
        createRecordCipher(envelopeWith(newKms, [oldKms]), schema, { blindIndex }),
      );
      const a = await oldDs
        .getRepository(Person)
        .save({ id: randomUUID(), email: "a1@x.io", phone: "1" });
      // When save loads the row to diff it, the old process changes the email: the loaded
      // copy is stale. The update must seal the newer email, and move the row to the new key.
      let armed = true;
      const racer: EntitySubscriberInterface<Person> = {
        listenTo: () => Person,
        async afterLoad() {
          if (!armed) return;
          armed = false;
          await oldDs.getRepository(Person).save({ id: a.id, email: "a2@x.io" });
        },
      };
      newDs.subscribers.push(racer);
      await newDs.getRepository(Person).save({ id: a.id, phone: "2" });
      expect(armed).toBe(false);
      const row = await stored(a.id);
      expect(
        ["email", "phone"].map((f) => inspectEnvelope(row[f] as string).entries[0]?.keyRef),
      ).toEqual([newKms.keyRef, newKms.keyRef]);
      expect(await newDs.getRepository(Person).findOneBy({ id: a.id })).toMatchObject({
        email: "a2@x.io",
        phone: "2",
      });
      expect(await rotated.findBy("email", "a2@x.io")).toHaveLength(1);
      // The same move without a transaction could not lock the row: refused, nothing written.
      const b = await oldDs
        .getRepository(Person)
        .save({ id: randomUUID(), email: "b@x.io", phone: "1" });
      expect(
        await codeOf(
          newDs.getRepository(Person).save({ id: b.id, phone: "2" }, { transaction: false }),
        ),
      ).toBe("ENVELOPE_BAD_INPUT");
      expect(await oldDs.getRepository(Person).findOneBy({ id: b.id })).toMatchObject({
        phone: "1",
      });
    } finally {
      await oldDs.destroy();
      await newDs.destroy();
    }
  });

  it("a find of many rows opens them with bounded concurrency (cold cache)", async () => {
    const inner = counted();
    const seeded = await open();
    const { provider, seen } = slowUnwraps(inner);
    const cold = await open();
    try {
      const t = encryptEntity(
        seeded,
        Person,
        createRecordCipher(envelopeWith(inner), schema, { blindIndex }),
      );
      const rows = Array.from({ length: 40 }, (_, i) => ({
        id: randomUUID(),
        email: `bulk${i}@x.io`,
        phone: `${i}`,
        name: "bulk",
      }));
      await seeded.getRepository(Person).save(rows);
      expect(t.cipher.schema.table).toBe(TABLE);
      encryptEntity(
        cold,
        Person,
        createRecordCipher(envelopeWith(provider), schema, { blindIndex }),
      );
      const found = await cold.getRepository(Person).find({ where: { name: "bulk" } });
      expect(found.map((p) => p.phone).sort()).toEqual(rows.map((r) => r.phone).sort());
      expect(seen.max).toBeGreaterThan(1);
      expect(seen.max).toBeLessThanOrEqual(16);
    } finally {
      await seeded.destroy();
      await cold.destroy();
    }
  });

  it("a find opens its rows in one openMany: one unwrap per record, the cipher's concurrency across finds; a bad row fails only its own find", async () => {
    const inner = counted();
    const seeded = await open();
    const cold = await open();
    const tag = randomBytes(3).toString("hex");
    try {
      encryptEntity(
        seeded,
        Person,
        createRecordCipher(envelopeWith(inner), schema, { blindIndex }),
      );
      const rows = Array.from({ length: 30 }, (_, i) => ({
        id: randomUUID(),
        email: `batch${i}@x.io`,
        phone: `${i}`,
        name: i < 20 ? `a-${tag}` : `b-${tag}`,
      }));
      await seeded.getRepository(Person).save(rows);
      const watched = watchedUnwraps(inner, 5);
      const envelope = envelopeWith(watched.provider);
      encryptEntity(
        cold,
        Person,
        createRecordCipher(envelope, schema, { blindIndex, concurrency: 4 }),
      );
      const repo = cold.getRepository(Person);
      const found = await repo.find({ where: { name: `a-${tag}` } });
      expect(found.map((p) => p.phone).sort()).toEqual(
        rows
          .slice(0, 20)
          .map((r) => r.phone)
          .sort(),
      );
      expect(watched.seen.unwraps).toBe(20);
      expect(watched.seen.max).toBeGreaterThan(1);
      expect(watched.seen.max).toBeLessThanOrEqual(4);

      // Two finds at once on a cold cache: the bound holds for both together.
      envelope.clearCaches();
      watched.reset();
      const [a, b] = await Promise.all([
        repo.find({ where: { name: `a-${tag}` } }),
        repo.find({ where: { name: `b-${tag}` } }),
      ]);
      expect(a.length + b.length).toBe(30);
      expect(watched.seen.unwraps).toBe(30);
      expect(watched.seen.max).toBeLessThanOrEqual(4);

      // Row 21 (of find b) holds row 20's email: find b fails with the typed error, find a reads.
      const p = type === "postgres" ? ["$1", "$2"] : ["?", "?"];
      await cold.query(
        `UPDATE ${cold.driver.escape(TABLE)} SET email = ${p[0]} WHERE id = ${p[1]}`,
        [(await stored(rows[20]!.id)).email, rows[21]!.id],
      );
      const [okFind, badFind] = await Promise.allSettled([
        repo.find({ where: { name: `a-${tag}` } }),
        repo.find({ where: { name: `b-${tag}` } }),
      ]);
      expect(okFind.status === "fulfilled" && okFind.value.length).toBe(20);
      expect(badFind.status).toBe("rejected");
      expect(await codeOf(Promise.reject((badFind as PromiseRejectedResult).reason))).toBe(
        "ENVELOPE_DECRYPT_FAILED",
      );
    } finally {
      await seeded.destroy();
      await cold.destroy();
    }
  });

  it("refuses an entity that lacks a column the cipher names", () => {
    expect(() =>
      encryptEntity(
        ds,
        Person,
        createRecordCipher(envelopeWith(kms), { table: TABLE, encrypted: ["ssn"] }),
      ),
    ).toThrow(expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }));
  });
});
