/**
 * Issue 11 item 1: an attacker who can write to the database and holds only an
 * encrypt-only key (here the local-rsa PUBLIC key; kms:Encrypt is the same) plants a field
 * sealed under a data key they generated. `update` must not seal new data under it.
 */
import { generateKeyPairSync } from "node:crypto";
import { Envelope, EnvelopeError } from "@envelope/core";
import { localRsaProvider } from "@envelope/local-rsa";
import { afterAll, describe, expect, it } from "vitest";
import { createRecordCipher, encryptedPg, VALUE_TAGS } from "../src/index.js";
import { readWithKnownKey } from "./attack-support.js";
import { counted, envelopeWith, pool, usePgSchema } from "./support.js";

usePgSchema();

const TABLE = "records_planted_users";
const schema = { table: TABLE, encrypted: ["email", "phone", "ssn"] } as const;
const ctx = (column: string, id: string) => ({ table: TABLE, column, id });

const { publicKey, privateKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  publicKeyEncoding: { type: "spki", format: "pem" },
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
});

/** A string field's plaintext as @envelope/records encodes it: type tag, then UTF-8. */
const tagged = (text: string) => Buffer.concat([Buffer.of(VALUE_TAGS.string), Buffer.from(text)]);

/**
 * The attacker's tool: with only the public key, make a data key, wrap it, seal a field
 * under it exactly as the app would (right table, column and id), and keep the data key.
 */
async function plant(id: string, column: string, value: string, context = ctx(column, id)) {
  const attacker = new Envelope({ encrypt: localRsaProvider({ keys: { pem: publicKey } }) });
  const m = await attacker.generateDataKey({ context: { table: TABLE, id } });
  const known = Buffer.from(m.dataKey);
  const sealed = attacker.encryptWithDataKey(m, tagged(value), { context, output: "text" });
  m.dataKey.fill(0);
  return { sealed, known };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (EnvelopeError.isInstance(e)) return e.code;
    throw e;
  }
  return "resolved";
}

describe("update never seals new data under a data key planted in the row", () => {
  const app = new Envelope({ encrypt: localRsaProvider({ keys: { pem: privateKey } }) });
  const users = createRecordCipher(app, schema);

  it("a planted field that opens under the row's own context: the new SSN is not under the attacker's key", async () => {
    const row = await users.seal({ id: "42", email: "ann@example.com", phone: "+1 555 0100" });
    // The attacker replaces the first sealed field (the one update used to take its data
    // key from) with a field sealed under their own key, valid under { table, column, id }.
    const { sealed, known } = await plant("42", "email", "attacker@evil.example");
    const stored = { ...row, email: sealed };
    // The forgery is indistinguishable on read (no writer authentication without signed mode).
    expect(await users.openField(stored, "email")).toBe("attacker@evil.example");
    // The sanity check of the attacker's tool: it reads what is under their key.
    expect(await readWithKnownKey(known, sealed, ctx("email", "42"))).toBe("attacker@evil.example");

    const patch = await users.update(stored, { ssn: "078-05-1120" });

    // The attacker cannot read the new SSN with the data key they know...
    expect(await codeOf(readWithKnownKey(known, patch.ssn as string, ctx("ssn", "42")))).toBe(
      "ENVELOPE_COMMITMENT_MISMATCH",
    );
    // ...because the record moved whole to a fresh data key: every encrypted field is
    // re-sealed (the planted value too, so nothing stays under the known key).
    expect(Object.keys(patch).sort()).toEqual(["email", "phone", "ssn"]);
    for (const f of ["email", "phone", "ssn"] as const) {
      expect(await codeOf(readWithKnownKey(known, patch[f] as string, ctx(f, "42")))).toBe(
        "ENVELOPE_COMMITMENT_MISMATCH",
      );
    }
    expect(await users.open({ ...stored, ...patch })).toMatchObject({
      email: "attacker@evil.example",
      phone: "+1 555 0100",
      ssn: "078-05-1120",
    });
    // From here the record is under a key this process generated: updates are partial again.
    const next = await users.update({ ...stored, ...patch }, { phone: "+1 555 0199" });
    expect(Object.keys(next)).toEqual(["phone"]);
  });

  it("a planted field sealed under another context: update refuses with a typed error, nothing to write", async () => {
    const row = await users.seal({ id: "43", email: "bob@example.com", phone: "+1 555 0101" });
    // Sealed without the row's context (or copied from another row): its key commitment is
    // fine, its body is not this row's.
    const { sealed } = await plant("43", "email", "x", ctx("email", "other-row"));
    const stored = { ...row, email: sealed };
    expect(await codeOf(users.update(stored, { ssn: "078-05-1120" }))).toBe(
      "ENVELOPE_DECRYPT_FAILED",
    );
  });

  it("a planted field with a tampered body: typed error, nothing to write", async () => {
    const row = await users.seal({ id: "44", email: "cy@example.com" });
    const { sealed } = await plant("44", "email", "x");
    const bytes = Buffer.from(sealed.slice(4), "base64url");
    bytes[bytes.length - 1]! ^= 1; // last byte of the GCM tag
    const stored = { ...row, email: `ev1:${bytes.toString("base64url")}` };
    expect(await codeOf(users.update(stored, { ssn: "1" }))).toBe("ENVELOPE_DECRYPT_FAILED");
  });

  it("a field of another row of this process (its key generated here) is not reused in this row", async () => {
    const a = await users.seal({ id: "45", email: "a@example.com" });
    const b = await users.seal({ id: "46", email: "b@example.com" });
    // A row whose first field is another row's: it does not open under this row's context.
    expect(await codeOf(users.update({ ...b, email: a.email }, { ssn: "1" }))).toBe(
      "ENVELOPE_DECRYPT_FAILED",
    );
  });
});

describe("reuse of a record's data key", () => {
  it("the envelope that sealed the record reuses its key: changed fields only, no KMS call", async () => {
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema);
    const row = await users.seal({ id: "r1", email: "a@a.a", phone: "1" });
    kms.reset();
    const patch = await users.update(row, { ssn: "2" });
    expect(Object.keys(patch)).toEqual(["ssn"]);
    expect(kms.calls).toEqual({ wrap: 0, unwrap: 0, generateDataKey: 0 });
  });

  it("another process (another Envelope) cannot know who chose the key: the first update moves the record whole, later ones are partial", async () => {
    const kms = counted();
    const row = await createRecordCipher(envelopeWith(kms), schema).seal({
      id: "r2",
      email: "a@a.a",
      phone: "1",
    });
    const users = createRecordCipher(envelopeWith(kms), schema);
    kms.reset();
    const first = await users.update(row, { ssn: "2" });
    expect(Object.keys(first).sort()).toEqual(["email", "phone", "ssn"]);
    expect(kms.calls).toEqual({ wrap: 1, unwrap: 1, generateDataKey: 0 });
    const stored = { ...row, ...first };
    kms.reset();
    const second = await users.update(stored, { phone: "3" });
    expect(Object.keys(second)).toEqual(["phone"]);
    expect(kms.calls).toEqual({ wrap: 0, unwrap: 0, generateDataKey: 0 });
    expect(await users.open({ ...stored, ...second })).toMatchObject({
      email: "a@a.a",
      phone: "3",
      ssn: "2",
    });
  });
});

describe("the same attack through encryptedPg (real PostgreSQL)", () => {
  const db = pool();
  afterAll(async () => {
    await db.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await db.end();
  });

  it("the attacker writes a planted email with SQL; the app's next update of the SSN stays out of their reach", async () => {
    await db.query(`CREATE TABLE ${TABLE} (id text PRIMARY KEY, email text, phone text, ssn text)`);
    const app = new Envelope({ encrypt: localRsaProvider({ keys: { pem: privateKey } }) });
    const repo = encryptedPg(db, createRecordCipher(app, schema));
    await repo.insert(TABLE, { id: "7", email: "dee@example.com", phone: "+1 555 0107" });

    const { sealed, known } = await plant("7", "email", "dee@example.com");
    await db.query(`UPDATE ${TABLE} SET email = $1 WHERE id = '7'`, [sealed]);

    const after = await repo.update(TABLE, "7", { ssn: "078-05-1120" });
    expect(after).toMatchObject({ email: "dee@example.com", ssn: "078-05-1120" });
    const stored = (await db.query(`SELECT * FROM ${TABLE} WHERE id = '7'`)).rows[0];
    for (const f of ["email", "phone", "ssn"] as const) {
      expect(await codeOf(readWithKnownKey(known, stored[f], ctx(f, "7")))).toBe(
        "ENVELOPE_COMMITMENT_MISMATCH",
      );
    }
  });
});
