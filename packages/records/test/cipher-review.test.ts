import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { legacyDecoder } from "@envelope/batch-rewrap";
import {
  DecryptionError,
  Envelope,
  EnvelopeError,
  fromText,
  localAesProvider,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import {
  blindIndexKeysFrom,
  createBlindIndexer,
  createRecordCipher,
  encryptedPg,
  transitionalRead,
} from "../src/index.js";
import { handRolledGcmJson } from "./legacy-values.js";
import { counted, envelopeWith, INDEX_KEY_1, pool, usePgSchema } from "./support.js";

usePgSchema();

/**
 * Defects an independent review found by following the README literally: each test fails
 * on the code before its fix.
 */

const schema = { table: "records_review", encrypted: ["email", "profile"] } as const;

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<EnvelopeError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (EnvelopeError.isInstance(e)) return e;
    throw e;
  }
  throw new Error("expected a rejection");
}

describe("values JSON would turn into {} are refused at seal time (no silent data loss)", () => {
  const users = () => createRecordCipher(envelopeWith(counted()), schema);

  class Opaque {
    #secret = "kept in a private field";
    get secret() {
      return this.#secret;
    }
  }

  it.each([
    ["a Map", new Map([["k", "secret-value"]]), "a Map"],
    ["a Set", new Set([1, 2]), "a Set"],
    ["a WeakMap", new WeakMap(), "a WeakMap"],
    ["a WeakSet", new WeakSet(), "a WeakSet"],
    ["a Promise", Promise.resolve("secret-value"), "a Promise"],
    ["a RegExp", /secret-value/, "a RegExp"],
    ["an Error", new Error("secret-value"), "an Error"],
    ["an ArrayBuffer", new Uint8Array([1, 2]).buffer, "an ArrayBuffer"],
    ["a class instance with no enumerable data", new Opaque(), "no enumerable property"],
    ["a Map inside an object", { tags: new Map([["k", "secret-value"]]) }, "a Map"],
    ["a Set inside an array", [1, new Set(["secret-value"])], "a Set"],
    ["a function inside an object", { f: () => "secret-value" }, "a function"],
  ])("%s: ENVELOPE_BAD_INPUT naming the field, never the value", async (_, value, what) => {
    const e = await errorOf(users().seal({ id: 1, email: "a@b.c", profile: value }));
    expect(e.code).toBe("ENVELOPE_BAD_INPUT");
    expect(e.message).toContain('"profile"');
    expect(e.message).toContain(what);
    expect(e.message).toMatch(/Convert it to a plain object or array/);
    expect(e.details).toMatchObject({ field: "profile" });
    expect(`${e.message} ${JSON.stringify(e)}`).not.toContain("secret-value");
  });

  it("the reviewer's case: a Map and a Set are refused, not stored as {}, before any KMS call", async () => {
    const kms = counted();
    const c = createRecordCipher(envelopeWith(kms), {
      table: "records_review",
      encrypted: ["a", "b"],
    });
    const e = await errorOf(c.seal({ id: 1, a: new Map([["k", "secret"]]), b: new Set([1, 2]) }));
    expect(e.code).toBe("ENVELOPE_BAD_INPUT");
    expect(e.details.field).toBe("a");
    expect(kms.calls).toEqual({ wrap: 0, unwrap: 0, generateDataKey: 0 });
  });

  it("update refuses them too", async () => {
    const c = users();
    const row = await c.seal({ id: 2, email: "a@b.c", profile: { x: 1 } });
    const e = await errorOf(c.update(row, { profile: { tags: new Set(["x"]) } }));
    expect(e.code).toBe("ENVELOPE_BAD_INPUT");
  });

  it("keeps what worked: Date, bigint, Buffer, Uint8Array, plain, null-prototype, toJSON, nested typed arrays", async () => {
    const c = users();
    const nullProto = Object.assign(Object.create(null), { a: 1 });
    class WithJson {
      toJSON() {
        return { kind: "with-json" };
      }
    }
    class Point {
      constructor(
        public x: number,
        public y: number,
      ) {}
    }
    const cases: [unknown, unknown][] = [
      [new Date(5), new Date(5)],
      [12n, 12n],
      [Buffer.from("hi"), Buffer.from("hi")],
      [new Uint8Array([1, 2]), Buffer.from([1, 2])],
      [{ a: [1, { b: null }] }, { a: [1, { b: null }] }],
      [nullProto, { a: 1 }],
      [new WithJson(), { kind: "with-json" }],
      [new Point(1, 2), { x: 1, y: 2 }],
      [
        { when: new Date(0), bytes: Buffer.from([7]) },
        JSON.parse(JSON.stringify({ when: new Date(0), bytes: Buffer.from([7]) })),
      ],
      [{ u: new Uint8Array([3]) }, { u: { 0: 3 } }],
    ];
    for (const [i, [value, expected]] of cases.entries()) {
      const row = await c.seal({ id: `k${i}`, profile: value });
      expect((await c.open(row)).profile).toEqual(expected);
    }
    // A Map whose owner's toJSON replaces it is not stored, hence not lost.
    const replaced = { map: new Map([["a", 1]]), toJSON: () => ({ a: 1 }) };
    const row = await c.seal({ id: "tj", profile: replaced });
    expect((await c.open(row)).profile).toEqual({ a: 1 });
  });
});

describe("a value that is already sealed is refused (no envelope of an envelope on a rerun)", () => {
  const indexed = {
    table: "records_review",
    encrypted: ["email", "profile"],
    blindIndexes: { email: { normalize: "email" } },
  } as const;
  const users = (options: { allowEnvelopePlaintext?: boolean | string[] } = {}) =>
    createRecordCipher(envelopeWith(counted()), indexed, {
      blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }),
      ...options,
    });

  it("seal of a row it already sealed: ENVELOPE_BAD_INPUT that says how to select unsealed rows", async () => {
    const c = users();
    const once = await c.seal({ id: 1, email: "ann@example.com", profile: { a: 1 } });
    const e = await errorOf(c.seal(once));
    expect(e.code).toBe("ENVELOPE_BAD_INPUT");
    expect(e.message).toContain("already sealed");
    expect(e.message).toContain("WHERE email NOT LIKE 'ev1:%'");
    expect(e.message).toContain("allowEnvelopePlaintext");
    expect(e.details).toEqual({ table: "records_review", field: "email" });
    expect(e.message).not.toContain(once.email);
  });

  it("binary output: a Buffer that is an envelope is refused too", async () => {
    const c = createRecordCipher(envelopeWith(counted()), indexed, {
      blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }),
      output: "binary",
    });
    const once = await c.seal({ id: 1, email: "ann@example.com", profile: Buffer.from("x") });
    expect((await errorOf(c.seal({ id: 1, profile: once.profile }))).code).toBe(
      "ENVELOPE_BAD_INPUT",
    );
  });

  it("update and indexesOf refuse it as well; nothing else is", async () => {
    const c = users();
    const row = await c.seal({ id: 2, email: "ann@example.com" });
    expect((await errorOf(c.update(row, { email: row.email }))).code).toBe("ENVELOPE_BAD_INPUT");
    expect((await errorOf(() => c.indexesOf({ email: row.email }))).code).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    // The prefix alone is not an envelope: such a plaintext seals and opens as it was.
    const odd = await c.seal({ id: 3, email: "ev1:not-an-envelope", profile: "ev1:AQEA" });
    expect(await c.open(odd)).toMatchObject({ email: "ev1:not-an-envelope", profile: "ev1:AQEA" });
  });

  it("allowEnvelopePlaintext lets a listed field store an envelope as data, and only that field", async () => {
    const c = users({ allowEnvelopePlaintext: ["profile"] });
    const inner = (await c.seal({ id: 4, email: "a@b.c" })).email;
    const row = await c.seal({ id: 5, profile: inner });
    expect((await c.open(row)).profile).toBe(inner);
    expect((await errorOf(c.seal({ id: 6, email: inner }))).code).toBe("ENVELOPE_BAD_INPUT");
    const all = users({ allowEnvelopePlaintext: true });
    expect((await all.open(await all.seal({ id: 7, email: inner }))).email).toBe(inner);
    expect(() => users({ allowEnvelopePlaintext: ["nope"] })).toThrow(/allowEnvelopePlaintext/);
  });

  it("the README's loop over existing rows, run twice (a restart), seals each row once", async () => {
    const db = pool();
    const table = `records_review_rerun_${process.pid}`;
    const c = createRecordCipher(
      envelopeWith(counted()),
      {
        table,
        encrypted: ["email", "phone", "ssn"],
        blindIndexes: { email: { normalize: "email" } },
      },
      { blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }) },
    );
    try {
      await db.query(
        `CREATE TABLE ${table} (id int PRIMARY KEY, email text, email_idx text, phone text, ssn text)`,
      );
      await db.query(
        `INSERT INTO ${table} (id, email, phone, ssn) SELECT g, 'u' || g || '@example.com', '+1 555 ' || g, NULL FROM generate_series(1, 5) g`,
      );
      // The README's step (packages/records/README.md, 2. Columns), with its SELECT of rows not yet sealed.
      const sealExisting = async () => {
        const { rows } = await db.query(
          `SELECT * FROM ${table} WHERE email NOT LIKE 'ev1:%' OR phone NOT LIKE 'ev1:%' OR ssn NOT LIKE 'ev1:%' ORDER BY id LIMIT 500`,
        );
        for (const row of rows) {
          const s = await c.seal(row);
          await db.query(
            `UPDATE ${table} SET email=$1, email_idx=$2, phone=$3, ssn=$4 WHERE id=$5`,
            [s.email, s.email_idx, s.phone, s.ssn, row.id],
          );
        }
        return rows.length;
      };
      expect(await sealExisting()).toBe(5);
      expect(await sealExisting()).toBe(0);
      // Without the WHERE (the old sample), the rerun is refused instead of sealing twice.
      const { rows } = await db.query(`SELECT * FROM ${table} ORDER BY id`);
      expect((await errorOf(c.seal(rows[0]))).code).toBe("ENVELOPE_BAD_INPUT");
      const opened = await c.open<{ email: string }>(rows[0]);
      expect(opened.email).toBe("u1@example.com");
      expect(rows[0].email_idx).toBe(c.indexFor("email", "u1@example.com"));
    } finally {
      await db.query(`DROP TABLE IF EXISTS ${table}`);
      await db.end();
    }
  });
});

describe("a blind index column written without its field is refused", () => {
  const indexed = {
    table: "records_review",
    encrypted: ["email", "phone"],
    blindIndexes: { email: { normalize: "email" }, phone: { normalize: "phone", column: "ph" } },
  } as const;
  const users = () =>
    createRecordCipher(envelopeWith(counted()), indexed, {
      blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }),
    });

  it("cipher.update(row, { email_idx }) and a custom index column: ENVELOPE_BAD_INPUT", async () => {
    const c = users();
    const row = await c.seal({ id: 1, email: "ann@example.com", phone: "+1 555 0100" });
    const attempts: Record<string, unknown>[] = [
      { email_idx: "deadbeef" },
      { email_idx: null },
      { ph: "00" },
    ];
    for (const changes of attempts) {
      const e = await errorOf(c.update(row, changes));
      expect(e.code).toBe("ENVELOPE_BAD_INPUT");
      expect(e.message).toMatch(/without its field/);
    }
    // With its field, the given index is replaced by the computed one.
    const patch = await c.update(row, { email: "Bob@example.com", email_idx: "deadbeef" });
    expect(patch.email_idx).toBe(c.indexFor("email", "bob@example.com"));
  });

  it("seal refuses a non-null index column alone; a null one (a row not indexed yet) passes", async () => {
    const c = users();
    expect((await errorOf(c.seal({ id: 2, email_idx: "deadbeef" }))).code).toBe(
      "ENVELOPE_BAD_INPUT",
    );
    expect(await c.seal({ id: 3, phone: null, email_idx: null })).toEqual({
      id: 3,
      phone: null,
      ph: null,
      email_idx: null,
    });
    const sealed = await c.seal({ id: 4, email: "a@b.c", email_idx: "deadbeef" });
    expect(sealed.email_idx).toBe(c.indexFor("email", "a@b.c"));
  });

  it("encryptedPg.update(table, id, { email_idx }) is refused and the row stays findable", async () => {
    const db = pool();
    const table = `records_review_idx_${process.pid}`;
    const c = createRecordCipher(
      envelopeWith(counted()),
      { table, encrypted: ["email"], blindIndexes: { email: { normalize: "email" } } },
      { blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }) },
    );
    const repo = encryptedPg(db, c);
    try {
      await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text, email_idx text)`);
      await repo.insert(table, { id: 1, email: "ann@example.com" });
      const e = await errorOf(repo.update(table, 1, { email_idx: "deadbeef" }));
      expect(e.code).toBe("ENVELOPE_BAD_INPUT");
      expect(await repo.findByBlindIndex(table, "email", "Ann@example.com")).toHaveLength(1);
    } finally {
      await db.query(`DROP TABLE IF EXISTS ${table}`);
      await db.end();
    }
  });
});

describe("a change whose value is undefined leaves the field as it is (found by the review of the above)", () => {
  const schema = {
    table: "records_review_undef",
    encrypted: ["email", "phone"],
    blindIndexes: { email: { normalize: "email" } },
  } as const;
  const options = { blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }) };

  it("cipher.update(row, { email: undefined, name }) returns no email or email_idx to write", async () => {
    const c = createRecordCipher(envelopeWith(counted()), schema, options);
    const row = await c.seal({ id: 1, email: "ann@example.com", phone: "+1 555 0100", name: "A" });
    const out = await c.update(row, { email: undefined, phone: undefined, name: "Ann" });
    expect(out).toEqual({ name: "Ann" });
    // null still clears the field and its index.
    expect(await c.update(row, { email: null })).toEqual({ email: null, email_idx: null });
  });

  it("encryptedPg.update(table, id, { email: undefined, … }) keeps the stored email findable", async () => {
    const db = pool();
    const table = `records_review_undef_${process.pid}`;
    const c = createRecordCipher(envelopeWith(counted()), { ...schema, table }, options);
    const repo = encryptedPg(db, c);
    try {
      await db.query(
        `CREATE TABLE ${table} (id int PRIMARY KEY, email text, email_idx text, phone text, name text)`,
      );
      await repo.insert(table, {
        id: 1,
        email: "ann@example.com",
        phone: "+1 555 0100",
        name: "A",
      });
      const after = await repo.update(table, 1, { email: undefined, name: "Ann" });
      expect(after).toMatchObject({ email: "ann@example.com", phone: "+1 555 0100", name: "Ann" });
      expect(await repo.findByBlindIndex(table, "email", "ann@example.com")).toHaveLength(1);
    } finally {
      await db.query(`DROP TABLE IF EXISTS ${table}`);
      await db.end();
    }
  });
});

describe("errors of open, openMany and list reads name the row (table, column, id), never a value", () => {
  const people = { table: "records_review", encrypted: ["email", "ssn"] } as const;

  it("open / openField / openMany: same class, code, message and cause, with { table, column, id }", async () => {
    const envelope = envelopeWith(counted());
    const c = createRecordCipher(envelope, people);
    const a = await c.seal({ id: "a1", email: "ann@example.com", ssn: "078-05-1120" });
    const b = await c.seal({ id: "b2", email: "bob@example.com", ssn: "219-09-9999" });
    const swapped = { ...b, ssn: a.ssn }; // a's ssn copied into b's row
    // What core says for the same value, for comparison.
    const raw = await errorOf(
      envelope.decrypt(a.ssn, { context: { table: "records_review", column: "ssn", id: "b2" } }),
    );
    expect(raw.details).toEqual({});

    const results = await c.openMany([a, swapped, b]);
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    const errors = [
      results[1]!.ok ? undefined : results[1]!.error,
      await errorOf(c.open(swapped)),
      await errorOf(c.openField(swapped, "ssn")),
    ];
    for (const e of errors) {
      expect(e).toBeInstanceOf(DecryptionError);
      expect(DecryptionError.isInstance(e)).toBe(true);
      expect(e!.code).toBe("ENVELOPE_DECRYPT_FAILED");
      expect(e!.message).toBe(raw.message);
      expect(e!.cause).toBeInstanceOf(Error);
      expect((e!.cause as Error).message).toBe((raw.cause as Error).message);
      expect(e!.details).toEqual({ table: "records_review", column: "ssn", id: "b2" });
      const shown = `${e!.message} ${JSON.stringify(e)} ${inspect(e, { showHidden: true })}`;
      for (const secret of ["078-05-1120", "219-09-9999", "bob@example.com", a.ssn]) {
        expect(shown).not.toContain(secret);
      }
    }
  });

  it("a row's plaintext or type-tag error names the row too", async () => {
    const envelope = envelopeWith(counted());
    const c = createRecordCipher(envelope, people);
    const [plain] = await c.openMany([{ id: 7, email: 42 }]);
    expect(plain!.ok ? undefined : plain!.error.details).toMatchObject({
      table: "records_review",
      column: "email",
      id: "7",
    });
    // A value sealed with plain envelope.encrypt (no type tag), in the right context.
    const untagged = await envelope.encrypt("x", {
      context: { table: "records_review", column: "email", id: "8" },
    });
    const [tagless] = await c.openMany([{ id: 8, email: untagged }]);
    expect(tagless!.ok ? undefined : tagless!.error.code).toBe("ENVELOPE_BAD_FORMAT");
    expect(tagless!.ok ? undefined : tagless!.error.details).toMatchObject({ id: "8" });
  });

  it("encryptedPg.findMany and findById reject with the failing row's id", async () => {
    const db = pool();
    const table = `records_review_err_${process.pid}`;
    const c = createRecordCipher(envelopeWith(counted()), { table, encrypted: ["email"] });
    const repo = encryptedPg(db, c);
    try {
      await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text)`);
      for (let id = 1; id <= 5; id++) await repo.insert(table, { id, email: `u${id}@x.io` });
      // Row 4's value copied from row 2 (an insider's swap).
      await db.query(
        `UPDATE ${table} SET email = (SELECT email FROM ${table} WHERE id = 2) WHERE id = 4`,
      );
      const e = await errorOf(repo.findMany(table, { orderBy: "id" }));
      expect(e).toBeInstanceOf(DecryptionError);
      expect(e.details).toEqual({ table, column: "email", id: "4" });
      expect((await errorOf(repo.findById(table, 4))).details).toMatchObject({ id: "4" });
    } finally {
      await db.query(`DROP TABLE IF EXISTS ${table}`);
      await db.end();
    }
  });

  it("transitional read: an altered legacy value's ENVELOPE_DECRYPT_FAILED carries its format", async () => {
    const key = randomBytes(32);
    const c = createRecordCipher(envelopeWith(counted()), people, {
      transitional: transitionalRead({
        decoders: [legacyDecoder({ format: "aes-256-gcm-json", key: { bytes: key } })],
        onLegacyRead: () => {},
      }),
    });
    const tampered = JSON.parse(handRolledGcmJson(key, "078-05-1120"));
    tampered.encrypted = `ff${tampered.encrypted.slice(2)}`;
    const row = { id: "9", ssn: JSON.stringify(tampered) };
    const [viaMany] = await c.openMany([row]);
    for (const e of [await errorOf(c.open(row)), viaMany!.ok ? undefined : viaMany!.error]) {
      expect(e!.code).toBe("ENVELOPE_DECRYPT_FAILED");
      expect(e!.details).toMatchObject({
        format: "aes-256-gcm-json",
        table: "records_review",
        column: "ssn",
        id: "9",
      });
    }
  });
});

describe("the schema and options are checked when the cipher is created", () => {
  const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
  const make =
    (schema: Record<string, unknown>, options: Record<string, unknown> = {}) =>
    () =>
      createRecordCipher(
        envelopeWith(counted()),
        { table: "records_review", encrypted: ["a", "email"], ...schema } as never,
        { blindIndex, ...options } as never,
      );

  it.each([
    [
      "bits: 12",
      { blindIndexes: { a: { bits: 12 } } },
      /blindIndexes\.a\.bits must be a multiple of 8/,
    ],
    ["bits: 0", { blindIndexes: { a: { bits: 0 } } }, /blindIndexes\.a\.bits/],
    ["bits: '32'", { blindIndexes: { a: { bits: "32" } } }, /blindIndexes\.a\.bits/],
    [
      'normalize: "emial"',
      { blindIndexes: { email: { normalize: "emial" } } },
      /normalize must be .* Did you mean "email"\?/,
    ],
    ["normalize: 3", { blindIndexes: { email: { normalize: 3 } } }, /normalize must be/],
    [
      "a misspelt spec key",
      { blindIndexes: { email: { normalise: "email" } } },
      /normalise is not a blind index option\. Did you mean "normalize"\?/,
    ],
    ["a spec that is not an object", { blindIndexes: { email: "email" } }, /must be an object/],
    [
      "blindIndex: in the schema",
      { blindIndex: { email: {} } },
      /unknown key "blindIndex" in the record schema\. Did you mean "blindIndexes"\? "blindIndex" is an option/,
    ],
    [
      "encrypt: in the schema",
      { encrypt: ["a"] },
      /unknown key "encrypt" .* Did you mean "encrypted"\?/,
    ],
  ])("%s: ENVELOPE_BAD_CONFIG at createRecordCipher", (_, schema, message) => {
    let error: unknown;
    try {
      make(schema)();
    } catch (e) {
      error = e;
    }
    expect(EnvelopeError.isInstance(error) && error.code).toBe("ENVELOPE_BAD_CONFIG");
    expect((error as Error).message).toMatch(message);
  });

  it.each([
    ["ouput", { ouput: "binary" }, /unknown key "ouput" in the options\. Did you mean "output"\?/],
    ["blindIndexes in the options", { blindIndexes: {} }, /"blindIndexes" is a schema key/],
    ["concurency", { concurency: 4 }, /Did you mean "concurrency"\?/],
  ])("options %s: ENVELOPE_BAD_CONFIG", (_, options, message) => {
    expect(make({}, options)).toThrow(message);
  });

  it("valid specs and options still pass, keys set to undefined too (as prismaEncryption passes them)", () => {
    const c = make(
      {
        idField: undefined,
        blindIndexes: { a: { bits: 64, column: "a_hash" }, email: { normalize: (v: string) => v } },
      },
      { output: "text", concurrency: 8, transitional: undefined },
    )();
    expect(c.indexFor("a", "x")).toHaveLength(16);
  });
});

describe("nits: blind index keys, plain columns, padding sizes", () => {
  it("a 48-byte base64 key says so, not just '64 characters'", () => {
    const key = randomBytes(48).toString("base64");
    expect(key).toHaveLength(64);
    let error: unknown;
    try {
      createBlindIndexer({ keys: key });
    } catch (e) {
      error = e;
    }
    expect(EnvelopeError.isInstance(error) && error.code).toBe("ENVELOPE_BAD_KEY");
    expect((error as Error).message).toContain("got 64 characters: 48 bytes as base64");
    expect((error as Error).message).not.toContain(key);
    expect(() => createBlindIndexer({ keys: "ab".repeat(48) })).toThrow(
      /got 96 characters: 48 bytes as hex/,
    );
  });

  it("an unreadable blind key file is ENVELOPE_BAD_KEY, as docs/ERRORS.md says", () => {
    let error: unknown;
    try {
      blindIndexKeysFrom({ file: join(tmpdir(), `records-review-missing-${process.pid}`) });
    } catch (e) {
      error = e;
    }
    expect(EnvelopeError.isInstance(error) && error.code).toBe("ENVELOPE_BAD_KEY");
    expect((error as Error).message).toMatch(/Could not read blind index keys/);
  });

  it("the same key twice (in any encoding) is refused", () => {
    const bytes = randomBytes(32);
    for (const keys of [
      [bytes.toString("hex"), bytes.toString("hex")],
      [INDEX_KEY_1, bytes.toString("hex"), bytes.toString("base64")],
    ]) {
      expect(() => createBlindIndexer({ keys })).toThrow(/is the same key as keys\[\d\]/);
    }
  });

  it("findByBlindIndex / candidatesFor on a plain column say it is not an encrypted field", async () => {
    const c = createRecordCipher(
      envelopeWith(counted()),
      {
        table: "records_review",
        encrypted: ["email", "phone"],
        blindIndexes: { email: {} },
      },
      { blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }) },
    );
    const db = encryptedPg({ query: async () => ({ rows: [] }) }, c);
    const plain = await errorOf(db.findByBlindIndex("records_review", "name", "Ann"));
    expect(plain.code).toBe("ENVELOPE_BAD_INPUT");
    expect(plain.message).toMatch(/"name" is not an encrypted field/);
    expect(plain.message).not.toMatch(/declare it/);
    expect((await errorOf(() => c.candidatesFor("name" as never, "Ann"))).message).toMatch(
      /is not an encrypted field/,
    );
    // An encrypted field without an index is still told to declare one.
    expect((await errorOf(db.findByBlindIndex("records_review", "phone", "1"))).message).toMatch(
      /declare it in the schema's blindIndexes/,
    );
  });

  it("the README's padding sizes: an SSN field is 170 bytes / 231 characters unpadded, 222 / 300 with 'pii'", async () => {
    const envelope = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) });
    const sizes = async (pad?: "pii") => {
      const c = createRecordCipher(envelope, {
        table: "users",
        encrypted: ["ssn"],
        ...(pad ? { pad: { ssn: pad } } : {}),
      });
      const { ssn } = await c.seal({ id: "42", ssn: "078-05-1120" });
      return [fromText(ssn).length, ssn.length];
    };
    expect(await sizes()).toEqual([170, 231]);
    expect(await sizes("pii")).toEqual([222, 300]);
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8").replace(
      /\s+/g,
      " ",
    );
    expect(readme.includes("222 bytes sealed under one `local-aes` key instead of 170")).toBe(true);
    expect(readme.includes("300 characters in text form instead of 231")).toBe(true);
  });
});
