// @envelope/records beyond the smoke: the record cipher round trip and its context binding,
// blind indexes (normalized, keyed, rotated), and encryptedPg's guarded update after a master
// key rotation, with a concurrent write that must survive, on PGlite and on PostgreSQL.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Envelope, inspectEnvelope, localAesProvider } from "@envelope/core";
import { createBlindIndexer, createRecordCipher, encryptedPg } from "@envelope/records";

const PG_URL = process.env.ENVELOPE_SMOKE_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = {
  table: "users",
  encrypted: ["email", "phone", "ssn"],
  blindIndexes: { email: { normalize: "email" } },
};
const indexKey = () => randomBytes(32).toString("hex");
const aesEnvelope = (key = localAesProvider({ keys: randomBytes(32) }), old = []) =>
  new Envelope({ encrypt: key, decrypt: old });

/** The error code `promise` rejects with. */
async function codeOf(promise) {
  try {
    await promise;
  } catch (error) {
    return error?.code ?? String(error);
  }
  throw new Error("expected a rejection");
}

export function recordsTests({ describe, it, before, after }) {
  describe("@envelope/records: record cipher and blind index", () => {
    const key = indexKey();
    const users = createRecordCipher(aesEnvelope(), schema, {
      blindIndex: createBlindIndexer({ keys: key }),
    });
    const ann = {
      id: "1",
      email: "Ann@Example.invalid",
      phone: "+1 555 0100",
      ssn: "1",
      name: "A",
    };

    it("seal → open: every encrypted field an ev1: value under one data key, the rest plain", async () => {
      const row = await users.seal(ann);
      assert.equal(row.name, "A");
      const sealed = [row.email, row.phone, row.ssn];
      assert.ok(sealed.every((v) => typeof v === "string" && v.startsWith("ev1:")));
      const entries = sealed.map((v) => JSON.stringify(inspectEnvelope(v).entries));
      assert.equal(new Set(entries).size, 1, "one wrapped data key for the record");
      assert.equal(row.email_idx, users.indexFor("email", "ann@example.invalid"));
      assert.deepEqual(await users.open(row), { ...ann, email_idx: row.email_idx });
    });

    it("a field moved into another record, or under another id, does not open", async () => {
      const a = await users.seal(ann);
      const b = await users.seal({ ...ann, id: "2", phone: "+1 555 0199" });
      assert.equal(await codeOf(users.openField({ ...b, phone: a.phone }, "phone")), CODE_MOVED);
      assert.equal(await codeOf(users.openField({ ...a, id: "2" }, "phone")), CODE_MOVED);
    });

    it("blind index: normalized and keyed; during a rotation each key gives a candidate", () => {
      const idx = users.indexFor("email", "ann@example.invalid");
      assert.match(idx, /^[0-9a-f]{8}$/);
      assert.equal(users.indexFor("email", "  ANN@example.INVALID"), idx);
      const other = createRecordCipher(aesEnvelope(), schema, {
        blindIndex: createBlindIndexer({ keys: indexKey() }),
      });
      assert.notEqual(other.indexFor("email", "ann@example.invalid"), idx);
      const rotating = createRecordCipher(aesEnvelope(), schema, {
        blindIndex: createBlindIndexer({ keys: [indexKey(), key] }),
      });
      assert.equal(rotating.candidatesFor("email", "ann@example.invalid").length, 2);
      assert.ok(rotating.candidatesFor("email", "ann@example.invalid").includes(idx));
    });
  });

  for (const database of DATABASES) {
    describe(`@envelope/records: encryptedPg on ${database.name}`, () => {
      if (database.off()) {
        it.skip(`${database.name} (${database.off()})`, async () => {});
        return;
      }
      let db;
      before(async () => {
        db = await database.open();
      });
      after(() => db?.close());
      pgTests(it, () => db);
    });
  }
}

// What opening a field under another record's context rejects with: GCM's authentication
// fails, because the context (table, column, id) is authenticated data.
const CODE_MOVED = "ENVELOPE_DECRYPT_FAILED";

const DATABASES = [
  {
    name: "PGlite (embedded)",
    off: () => undefined,
    async open() {
      const { PGlite } = await import("@electric-sql/pglite");
      const db = new PGlite();
      return { query: (text, values) => db.query(text, values), close: () => db.close() };
    },
  },
  {
    name: "PostgreSQL (pg)",
    off: () => (process.env.ENVELOPE_SMOKE_PG === "off" ? "ENVELOPE_SMOKE_PG=off" : undefined),
    async open() {
      const { default: pg } = await import("pg");
      const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
      return { query: (text, values) => pool.query(text, values), close: () => pool.end() };
    },
  },
];

/** The tests over one database; each makes and drops its own uniquely named table. */
function pgTests(it, database) {
  async function withTable(columns, fn) {
    const db = database();
    const table = `envelope_rt_${randomBytes(4).toString("hex")}`;
    await db.query(`CREATE TABLE ${table} (${columns})`);
    try {
      await fn(db, table);
    } finally {
      await db.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
  const USERS =
    "id serial PRIMARY KEY, email text, email_idx text, phone text, ssn text, name text";

  it("insert seals, findById / findByBlindIndex / findMany open, nothing stored in clear", async () => {
    await withTable(USERS, async (db, table) => {
      const cipher = createRecordCipher(
        aesEnvelope(),
        { ...schema, table },
        {
          blindIndex: createBlindIndexer({ keys: indexKey() }),
        },
      );
      const repo = encryptedPg(db, cipher);
      const ann = await repo.insert(table, {
        email: "Ann@Example.invalid",
        phone: "+1 555 0100",
        ssn: "078-05-1120",
        name: "Ann",
      });
      assert.equal(typeof ann.id, "number");
      await repo.insert(table, { email: "bob@example.invalid", phone: "2", name: "Bob" });
      const { rows } = await db.query(`SELECT t::text AS line FROM ${table} t`);
      assert.ok(
        rows.every((r) => !/ann@|555 0100|078-05/i.test(r.line)),
        "no plaintext stored",
      );
      assert.deepEqual(await repo.findById(table, ann.id), ann);
      assert.deepEqual(await repo.findByBlindIndex(table, "email", " ANN@example.invalid"), [ann]);
      assert.deepEqual(await repo.findByBlindIndex(table, "email", "nobody@example.invalid"), []);
      const all = await repo.findMany(table, { orderBy: "id" });
      assert.deepEqual(
        all.map((u) => u.name),
        ["Ann", "Bob"],
      );
    });
  });

  it("update re-seals only the changed field, under the record's data key", async () => {
    await withTable(USERS, async (db, table) => {
      const repo = encryptedPg(
        db,
        createRecordCipher(
          aesEnvelope(),
          { ...schema, table },
          {
            blindIndex: createBlindIndexer({ keys: indexKey() }),
          },
        ),
      );
      const bob = await repo.insert(table, { email: "bob@example.invalid", phone: "1", ssn: "2" });
      const read = async () =>
        (await db.query(`SELECT * FROM ${table} WHERE id = $1`, [bob.id])).rows[0];
      const before = await read();
      const after = await repo.update(table, bob.id, { phone: "3" });
      assert.equal(after.phone, "3");
      assert.equal(after.email, "bob@example.invalid");
      const stored = await read();
      assert.equal(stored.email, before.email, "email not rewritten");
      assert.equal(stored.ssn, before.ssn, "ssn not rewritten");
      assert.notEqual(stored.phone, before.phone);
      const entries = [stored.email, stored.phone].map((v) =>
        JSON.stringify(inspectEnvelope(v).entries),
      );
      assert.equal(entries[0], entries[1], "the new phone is under the record's data key");
      assert.equal(await repo.update(table, -1, { phone: "x" }), undefined);
    });
  });

  it("guarded update: after a master key rotation the row moves whole; a concurrent write survives", async () => {
    await withTable(
      "id text PRIMARY KEY, email text, email_idx text, phone text, ssn text",
      async (db, table) => {
        const oldKey = localAesProvider({ keys: randomBytes(32) });
        const newKey = localAesProvider({ keys: randomBytes(32) });
        const spec = { ...schema, table };
        const blindIndex = createBlindIndexer({ keys: indexKey() });
        const onOld = encryptedPg(
          db,
          createRecordCipher(aesEnvelope(oldKey), spec, { blindIndex }),
        );
        for (const id of ["a", "b"]) {
          await onOld.insert(table, { id, email: `${id}@example.invalid`, phone: "1", ssn: "2" });
        }
        const rotated = createRecordCipher(aesEnvelope(newKey, [oldKey]), spec, { blindIndex });
        const keysOf = async (id) => {
          const row = (await db.query(`SELECT * FROM ${table} WHERE id = $1`, [id])).rows[0];
          return ["email", "phone", "ssn"].map((f) => inspectEnvelope(row[f]).entries[0].keyRef);
        };
        const everyFieldNew = [newKey.keyRef, newKey.keyRef, newKey.keyRef];

        const a = await encryptedPg(db, rotated).update(table, "a", { phone: "3" });
        assert.deepEqual([a.email, a.phone, a.ssn], ["a@example.invalid", "3", "2"]);
        assert.deepEqual(await keysOf("a"), everyFieldNew);
        assert.equal(await codeOf(onOld.findById(table, "a")), "ENVELOPE_NO_MATCHING_KEY");

        // A process still on the old key changes b's email between this update's read and its
        // write: the compare-and-swap must notice, read again, and not put the old email back.
        let raced = false;
        const racy = {
          async query(text, values) {
            if (!raced && text.startsWith("UPDATE")) {
              raced = true;
              await onOld.update(table, "b", { email: "b2@example.invalid" });
            }
            return db.query(text, values);
          },
        };
        const b = await encryptedPg(racy, rotated).update(table, "b", { phone: "3" });
        assert.ok(raced, "the concurrent write happened");
        assert.deepEqual([b.email, b.phone, b.ssn], ["b2@example.invalid", "3", "2"]);
        assert.deepEqual(await keysOf("b"), everyFieldNew);
        const found = await encryptedPg(db, rotated).findByBlindIndex(
          table,
          "email",
          "B2@example.invalid",
        );
        assert.equal(found.length, 1, "the blind index follows the concurrent email change");
      },
    );
  });
}
