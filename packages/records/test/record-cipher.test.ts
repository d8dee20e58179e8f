import { randomBytes } from "node:crypto";
import { EnvelopeError, fromText, inspectEnvelope, localAesProvider } from "@envelope/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createBlindIndexer, createRecordCipher } from "../src/index.js";
import { counted, envelopeWith, INDEX_KEY_1 } from "./support.js";

const schema = {
  table: "records_users",
  encrypted: ["email", "phone", "ssn"],
} as const;

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (EnvelopeError.isInstance(e)) return e.code;
    throw e;
  }
  throw new Error("expected a rejection");
}

describe("record sealing: one data key per record", () => {
  it("seals 3 fields with one KMS call (keys given), each a v1 envelope envelope.decrypt opens", async () => {
    const kms = counted(undefined, { generateDataKey: true });
    const envelope = envelopeWith(kms);
    const users = createRecordCipher(envelope, schema, { keys: kms });
    const row = await users.seal({
      id: "42",
      email: "ann@example.com",
      phone: "+1 555 0100",
      ssn: "078-05-1120",
      name: "Ann",
    });
    expect(kms.calls).toEqual({ wrap: 0, unwrap: 0, generateDataKey: 1 });
    expect(row.name).toBe("Ann");
    const infos = [row.email, row.phone, row.ssn].map((v) => inspectEnvelope(v));
    // One data key: the same wrapped entry in every field; own message id per field.
    expect(new Set(infos.map((i) => JSON.stringify(i.entries))).size).toBe(1);
    expect(new Set(infos.map((i) => i.messageId)).size).toBe(3);
    // Each field is a normal envelope bound to { table, column, id }. Field values carry a
    // one-byte type tag (0x01 = string) before the UTF-8 text.
    const raw = await envelope.decrypt(row.email, {
      context: { table: "records_users", column: "email", id: "42" },
    });
    expect(raw[0]).toBe(0x01);
    expect(raw.subarray(1).toString("utf8")).toBe("ann@example.com");
  });

  it("with a provider without generateDataKey: one wrap per record, no unwrap", async () => {
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema, { keys: kms });
    for (let i = 0; i < 5; i++) {
      await users.seal({ id: `r${i}`, email: "a@b.c", phone: "1", ssn: "2" });
    }
    expect(kms.calls).toEqual({ wrap: 5, unwrap: 0, generateDataKey: 0 });
  });

  it("without `keys`: one wrap and one unwrap per record whatever the field count", async () => {
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema);
    await users.seal({ id: "1", email: "a@b.c", phone: "1", ssn: "2" });
    expect(kms.calls).toEqual({ wrap: 1, unwrap: 1, generateDataKey: 0 });
  });

  it("opens all fields with at most one unwrap per record, none when cached", async () => {
    const kms = counted();
    const envelope = envelopeWith(kms);
    const writer = createRecordCipher(envelope, schema, { keys: kms });
    const reader = createRecordCipher(envelope, schema);
    const record = { id: "7", email: "e@x.io", phone: "+33 1", ssn: "000-00-0000", note: "n" };
    const row = await writer.seal(record);
    kms.reset();
    expect(await reader.open(row)).toEqual(record);
    expect(kms.calls.unwrap).toBe(1);
    expect(await reader.open(row)).toEqual(record);
    expect(await reader.openField(row, "ssn")).toBe("000-00-0000");
    expect(kms.calls.unwrap).toBe(1);
    // The writer cached the key it generated: reading back costs nothing.
    expect(await writer.open(row)).toEqual(record);
    expect(kms.calls.unwrap).toBe(1);
  });

  it("concurrent opens of one record share one unwrap", async () => {
    const kms = counted();
    const envelope = envelopeWith(kms);
    const row = await createRecordCipher(envelope, schema, { keys: kms }).seal({
      id: "c",
      email: "c@c.c",
      phone: "1",
      ssn: "2",
    });
    const reader = createRecordCipher(envelope, schema);
    kms.reset();
    await Promise.all(Array.from({ length: 10 }, () => reader.open(row)));
    expect(kms.calls.unwrap).toBe(1);
  });

  it("keeps null and undefined as they are and makes no KMS call for an empty record", async () => {
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema, { keys: kms });
    const row = await users.seal({ id: "n", email: null, phone: undefined, name: "x" });
    expect(row).toEqual({ id: "n", email: null, phone: undefined, name: "x" });
    expect(kms.calls.wrap).toBe(0);
    expect(await users.open(row)).toEqual(row);
  });

  it("binary output yields Buffers that open the same", async () => {
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema, { keys: kms, output: "binary" });
    const row = await users.seal({ id: 9, email: "b@b.b" });
    expect(Buffer.isBuffer(row.email)).toBe(true);
    expect(await users.open(row)).toEqual({ id: 9, email: "b@b.b" });
  });

  it("refuses `keys` that are not the envelope's encrypting keys", () => {
    const kms = counted();
    const other = counted();
    expect(() => createRecordCipher(envelopeWith(kms), schema, { keys: other })).toThrow(
      /encrypting key providers/,
    );
  });

  it("refuses a record without an id, and bad schemas", async () => {
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema, { keys: kms });
    expect(await codeOf(users.seal({ email: "x@y.z" }))).toBe("ENVELOPE_BAD_INPUT");
    expect(() => createRecordCipher(envelopeWith(kms), { table: "t", encrypted: [] })).toThrow(
      /at least one field/,
    );
    expect(() => createRecordCipher(envelopeWith(kms), { table: "t", encrypted: ["id"] })).toThrow(
      /id field/,
    );
    expect(() =>
      createRecordCipher(envelopeWith(kms), {
        table: "t",
        encrypted: ["email"],
        blindIndexes: { email: {} },
      }),
    ).toThrow(/blindIndex/);
  });
});

describe("types round-trip exactly", () => {
  const kms = counted();
  const users = createRecordCipher(
    envelopeWith(kms),
    { table: "records_types", encrypted: ["v"] },
    {
      keys: kms,
    },
  );

  const json = fc.jsonValue().filter((v) => typeof v === "object" && v !== null);
  const value = fc.oneof(
    fc.string(),
    fc.string({ unit: "grapheme" }),
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.date({ noInvalidDate: false }),
    json,
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    fc.bigInt(),
  );

  it("string, number (incl. NaN, -0, ±∞), boolean, Date, JSON, Buffer, bigint", async () => {
    await fc.assert(
      fc.asyncProperty(value, async (v) => {
        const row = await users.seal({ id: "t", v });
        expect(typeof row.v).toBe("string");
        const back = (await users.open<{ v: unknown }>(row)).v;
        if (v instanceof Date) {
          expect(back).toBeInstanceOf(Date);
          expect(Object.is((back as Date).getTime(), v.getTime())).toBe(true);
        } else if (typeof v === "number") {
          expect(Object.is(back, v)).toBe(true);
        } else {
          expect(back).toStrictEqual(v);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("a Uint8Array comes back as a Buffer with the same bytes", async () => {
    const row = await users.seal({ id: "u", v: new Uint8Array([1, 2, 3]) });
    expect(await users.openField(row, "v")).toStrictEqual(Buffer.from([1, 2, 3]));
  });

  it("refuses functions and symbols with a typed error", async () => {
    expect(await codeOf(users.seal({ id: "f", v: () => 1 }))).toBe("ENVELOPE_BAD_INPUT");
    expect(await codeOf(users.seal({ id: "f", v: Symbol("s") }))).toBe("ENVELOPE_BAD_INPUT");
  });
});

describe("each field is bound to its table, column and id", () => {
  const kms = counted();
  const envelope = envelopeWith(kms);
  const users = createRecordCipher(envelope, schema, { keys: kms });

  it("a field swapped between two rows fails with ENVELOPE_DECRYPT_FAILED", async () => {
    const a = await users.seal({ id: "a", email: "a@a.a", phone: "1" });
    const b = await users.seal({ id: "b", email: "b@b.b", phone: "2" });
    const swapped = { ...b, email: a.email };
    expect(await codeOf(users.openField(swapped, "email"))).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(await codeOf(users.open(swapped))).toBe("ENVELOPE_DECRYPT_FAILED");
    // A fresh cipher (no cached key) fails the same way, through the envelope's unwrap.
    const cold = createRecordCipher(envelope, schema);
    expect(await codeOf(cold.openField(swapped, "email"))).toBe("ENVELOPE_DECRYPT_FAILED");
  });

  it("a field moved to another column of the same row fails", async () => {
    const a = await users.seal({ id: "m", email: "a@a.a", phone: "1" });
    expect(await codeOf(users.openField({ ...a, phone: a.email }, "phone"))).toBe(
      "ENVELOPE_DECRYPT_FAILED",
    );
  });

  it("a changed id fails, and so does another table's value", async () => {
    const a = await users.seal({ id: "x", email: "a@a.a" });
    expect(await codeOf(users.openField({ ...a, id: "y" }, "email"))).toBe(
      "ENVELOPE_DECRYPT_FAILED",
    );
    const other = createRecordCipher(
      envelope,
      { ...schema, table: "records_other" },
      { keys: kms },
    );
    expect(await codeOf(other.openField(a, "email"))).toBe("ENVELOPE_DECRYPT_FAILED");
  });

  it("a tampered body fails; plaintext in an encrypted column is refused", async () => {
    const a = await users.seal({ id: "t", email: "a@a.a" });
    const bytes = fromText(a.email);
    bytes[bytes.length - 1]! ^= 1;
    const tampered = { ...a, email: `ev1:${bytes.toString("base64url")}` };
    expect(await codeOf(users.openField(tampered, "email"))).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(await codeOf(users.open({ id: "t", email: "plain@text" }))).toBe("ENVELOPE_BAD_FORMAT");
  });
});

describe("partial update", () => {
  it("re-seals only the changed fields under the record's key, with no KMS call when cached", async () => {
    const kms = counted();
    const envelope = envelopeWith(kms);
    const users = createRecordCipher(envelope, schema, { keys: kms });
    const row = await users.seal({ id: "u1", email: "old@x.io", phone: "111", ssn: "999" });
    kms.reset();
    const patch = await users.update(row, { phone: "222", name: "New" });
    expect(kms.calls).toEqual({ wrap: 0, unwrap: 0, generateDataKey: 0 });
    expect(Object.keys(patch).sort()).toEqual(["name", "phone"]);
    expect(inspectEnvelope(patch.phone as string).entries).toEqual(
      inspectEnvelope(row.email).entries,
    );
    const stored = { ...row, ...patch };
    expect(await users.open(stored)).toEqual({
      id: "u1",
      email: "old@x.io",
      phone: "222",
      ssn: "999",
      name: "New",
    });
    expect(kms.calls.unwrap).toBe(0);
  });

  it("a cold cipher unwraps once, then updates from the cache", async () => {
    const kms = counted();
    const envelope = envelopeWith(kms);
    const row = await createRecordCipher(envelope, schema, { keys: kms }).seal({
      id: "u2",
      email: "a@a.a",
    });
    const users = createRecordCipher(envelope, schema, { keys: kms });
    kms.reset();
    const first = { ...row, ...(await users.update(row, { phone: "1" })) };
    const second = { ...first, ...(await users.update(first, { ssn: "2" })) };
    expect(kms.calls).toEqual({ wrap: 0, unwrap: 1, generateDataKey: 0 });
    expect(await users.open(second)).toMatchObject({ email: "a@a.a", phone: "1", ssn: "2" });
  });

  it("with the cache off every update unwraps; nulls clear fields; the id cannot change", async () => {
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema, { keys: kms, cache: false });
    const row = await users.seal({ id: "u3", email: "a@a.a", phone: "1" });
    kms.reset();
    const patch = await users.update(row, { phone: null, ssn: "3" });
    expect(kms.calls.unwrap).toBe(1);
    expect(patch.phone).toBeNull();
    expect(await codeOf(users.update(row, { id: "other" }))).toBe("ENVELOPE_BAD_INPUT");
  });

  it("a record with no sealed field gets a fresh key on update", async () => {
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema, { keys: kms });
    const patch = await users.update({ id: "u4", email: null }, { email: "new@x.io" });
    expect(kms.calls.wrap).toBe(1);
    expect(await users.openField({ id: "u4", ...patch }, "email")).toBe("new@x.io");
  });

  it("evicted keys are zeroed out of reach: a TTL-expired key costs one unwrap again", async () => {
    let now = 0;
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema, {
      keys: kms,
      cache: { ttlMs: 1000, clock: { now: () => now } },
    });
    const row = await users.seal({ id: "ttl", email: "a@a.a" });
    now = 2000;
    kms.reset();
    await users.update(row, { phone: "1" });
    expect(kms.calls.unwrap).toBe(1);
    expect(users.cacheStats().evictions).toBe(1);
  });
});

describe("rotation of the master key", () => {
  it("records sealed under an old key open and update after the envelope moves to a new key", async () => {
    const oldKey = localAesProvider({ keys: randomBytes(32) });
    const newKey = counted();
    const before = createRecordCipher(envelopeWith(oldKey), schema);
    const row = await before.seal({ id: "r", email: "a@a.a", phone: "1" });
    const after = createRecordCipher(envelopeWith(newKey, [oldKey]), schema, { keys: newKey });
    expect(await after.open(row)).toMatchObject({ email: "a@a.a", phone: "1" });
    // And a rewrapped field (body unchanged) still opens.
    const rewrapped = await envelopeWith(newKey, [oldKey]).rewrap(row.email, {
      context: { table: "records_users", column: "email", id: "r" },
    });
    expect(
      await createRecordCipher(envelopeWith(newKey), schema).openField(
        { ...row, email: rewrapped },
        "email",
      ),
    ).toBe("a@a.a");
  });
});

describe("blind index columns on seal and update", () => {
  it("adds <field>_idx, normalized, and recomputes it on update", async () => {
    const kms = counted();
    const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
    const users = createRecordCipher(
      envelopeWith(kms),
      {
        ...schema,
        blindIndexes: {
          email: { normalize: "email" },
          phone: { normalize: "phone", column: "phone_hash" },
        },
      },
      { keys: kms, blindIndex },
    );
    const row = await users.seal({ id: "i", email: " Ann@Example.com", phone: "+1 (555) 010" });
    expect(row.email_idx).toBe(users.indexFor("email", "ann@example.com"));
    expect((row as Record<string, unknown>).phone_hash).toBe(users.indexFor("phone", "1555010"));
    expect(row.email_idx).toMatch(/^[0-9a-f]{8}$/);
    const patch = await users.update(row, { email: "bob@example.com", phone: null });
    expect(patch.email_idx).toBe(users.indexFor("email", "BOB@example.com"));
    expect(patch.phone_hash).toBeNull();
    expect(users.matches("email", "Bob@Example.com ", "bob@example.com")).toBe(true);
  });
});

describe("secrets stay out of logs", () => {
  it("inspect and JSON show table and key ids only", async () => {
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema, { keys: kms });
    const shown = `${JSON.stringify(users)} ${(await import("node:util")).inspect(users)}`;
    expect(shown).toContain("records_users");
    expect(shown).not.toMatch(/[0-9a-f]{64}/);
  });
});
