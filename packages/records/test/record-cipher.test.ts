import { randomBytes } from "node:crypto";
import {
  Envelope,
  EnvelopeError,
  fromText,
  inspectEnvelope,
  type KeyProvider,
  localAesProvider,
} from "@envelope/core";
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
  it("seals 3 fields with one KMS call, each a v1 envelope envelope.decrypt opens", async () => {
    const kms = counted(undefined, { generateDataKey: true });
    const envelope = envelopeWith(kms);
    const users = createRecordCipher(envelope, schema);
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
    const users = createRecordCipher(envelopeWith(kms), schema);
    for (let i = 0; i < 5; i++) {
      await users.seal({ id: `r${i}`, email: "a@b.c", phone: "1", ssn: "2" });
    }
    expect(kms.calls).toEqual({ wrap: 5, unwrap: 0, generateDataKey: 0 });
  });

  it("two encrypting keys: one call per key per record, every field wrapped under both", async () => {
    const a = counted(undefined, { generateDataKey: true });
    const b = counted();
    const users = createRecordCipher(new Envelope({ encrypt: [a, b] }), schema);
    const row = await users.seal({ id: "1", email: "a@b.c", phone: "1", ssn: "2" });
    expect(a.calls).toEqual({ wrap: 0, unwrap: 0, generateDataKey: 1 });
    expect(b.calls).toEqual({ wrap: 1, unwrap: 0, generateDataKey: 0 });
    expect(inspectEnvelope(row.ssn).entries.map((e) => e.keyRef)).toEqual([a.keyRef, b.keyRef]);
    // Either key alone opens the record.
    expect(await createRecordCipher(envelopeWith(b), schema).open(row)).toMatchObject({ ssn: "2" });
  });

  it("opens all fields with at most one unwrap per record, none when cached", async () => {
    const kms = counted();
    const writer = createRecordCipher(envelopeWith(kms), schema);
    const reader = createRecordCipher(envelopeWith(kms), schema); // another process: cold cache
    const record = { id: "7", email: "e@x.io", phone: "+33 1", ssn: "000-00-0000", note: "n" };
    const row = await writer.seal(record);
    kms.reset();
    expect(await reader.open(row)).toEqual(record);
    expect(kms.calls.unwrap).toBe(1);
    expect(await reader.open(row)).toEqual(record);
    expect(await reader.openField(row, "ssn")).toBe("000-00-0000");
    expect(kms.calls.unwrap).toBe(1);
    // The writer's envelope cached the data key it generated: reading back costs nothing.
    expect(await writer.open(row)).toEqual(record);
    expect(kms.calls.unwrap).toBe(1);
  });

  it("concurrent opens of one record share one unwrap", async () => {
    const kms = counted();
    const envelope = envelopeWith(kms);
    const row = await createRecordCipher(envelope, schema).seal({
      id: "c",
      email: "c@c.c",
      phone: "1",
      ssn: "2",
    });
    const reader = createRecordCipher(envelopeWith(kms), schema); // cold cache
    kms.reset();
    await Promise.all(Array.from({ length: 10 }, () => reader.open(row)));
    expect(kms.calls.unwrap).toBe(1);
  });

  it("keeps null and undefined as they are and makes no KMS call for an empty record", async () => {
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema);
    const row = await users.seal({ id: "n", email: null, phone: undefined, name: "x" });
    expect(row).toEqual({ id: "n", email: null, phone: undefined, name: "x" });
    expect(kms.calls.wrap).toBe(0);
    expect(await users.open(row)).toEqual(row);
  });

  it("follows the envelope's storeContext: each field then carries its own context", async () => {
    const kms = counted();
    const users = createRecordCipher(new Envelope({ encrypt: kms, storeContext: true }), schema);
    const row = await users.seal({ id: "sc", email: "a@b.c", phone: "1" });
    expect(inspectEnvelope(row.phone).context).toEqual({
      table: "records_users",
      column: "phone",
      id: "sc",
    });
    const stored = { ...row, ...(await users.update(row, { phone: "2" })) };
    expect(await users.open(stored)).toEqual({ id: "sc", email: "a@b.c", phone: "2" });
    expect(await codeOf(users.openField({ ...stored, phone: row.email }, "phone"))).toBe(
      "ENVELOPE_CONTEXT_MISMATCH",
    );
  });

  it("binary output yields Buffers that open the same", async () => {
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema, { output: "binary" });
    const row = await users.seal({ id: 9, email: "b@b.b" });
    expect(Buffer.isBuffer(row.email)).toBe(true);
    expect(await users.open(row)).toEqual({ id: 9, email: "b@b.b" });
  });

  it("refuses a record without an id, and bad schemas", async () => {
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema);
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
  const users = createRecordCipher(envelopeWith(kms), { table: "records_types", encrypted: ["v"] });

  // JSON semantics (README): -0 inside an object comes back as 0, like JSON.stringify does.
  const json = fc
    .jsonValue()
    .filter((v) => typeof v === "object" && v !== null)
    .map((v) => JSON.parse(JSON.stringify(v)));
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
  const users = createRecordCipher(envelope, schema);

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
    const other = createRecordCipher(envelope, { ...schema, table: "records_other" });
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
    const users = createRecordCipher(envelope, schema);
    const row = await users.seal({ id: "u1", email: "old@x.io", phone: "111", ssn: "999" });
    await users.open(row); // warms the envelope's unwrap cache, as reading a row before editing it does
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

  it("a cold cipher (another process) opens once and moves the record to a key it generated, then updates from the cache", async () => {
    const kms = counted();
    const envelope = envelopeWith(kms);
    const row = await createRecordCipher(envelope, schema).seal({
      id: "u2",
      email: "a@a.a",
    });
    const users = createRecordCipher(envelopeWith(kms), schema); // cold cache
    kms.reset();
    // This process did not generate the record's data key, so it cannot tell it from one
    // planted by an encrypt-only key holder: the first update re-seals the whole record.
    const first = { ...row, ...(await users.update(row, { phone: "1" })) };
    const second = { ...first, ...(await users.update(first, { ssn: "2" })) };
    expect(kms.calls).toEqual({ wrap: 1, unwrap: 1, generateDataKey: 0 });
    expect(await users.open(second)).toMatchObject({ email: "a@a.a", phone: "1", ssn: "2" });
  });

  it("with the cache off every update unwraps; nulls clear fields; the id cannot change", async () => {
    const kms = counted();
    const users = createRecordCipher(new Envelope({ encrypt: kms, cache: false }), schema);
    const row = await users.seal({ id: "u3", email: "a@a.a", phone: "1" });
    kms.reset();
    const patch = await users.update(row, { phone: null, ssn: "3" });
    // One unwrap to open the field whose key is reused (tag and context verified), one to
    // take that key (core's unwrapDataKey); with the cache on, the second is a cache hit.
    expect(kms.calls.unwrap).toBe(2);
    expect(patch.phone).toBeNull();
    expect(await codeOf(users.update(row, { id: "other" }))).toBe("ENVELOPE_BAD_INPUT");
  });

  it("a record with no sealed field gets a fresh key on update", async () => {
    const kms = counted();
    const users = createRecordCipher(envelopeWith(kms), schema);
    const patch = await users.update({ id: "u4", email: null }, { email: "new@x.io" });
    expect(kms.calls.wrap).toBe(1);
    expect(await users.openField({ id: "u4", ...patch }, "email")).toBe("new@x.io");
  });

  it("a key the envelope's cache dropped (clearCaches) costs one unwrap again", async () => {
    const kms = counted();
    const envelope = envelopeWith(kms);
    const users = createRecordCipher(envelope, schema);
    const row = await users.seal({ id: "cc", email: "a@a.a" });
    await users.open(row);
    envelope.clearCaches();
    kms.reset();
    await users.update(row, { phone: "1" });
    expect(kms.calls.unwrap).toBe(1);
  });
});

describe("rotation of the master key", () => {
  it("records sealed under an old key open and update after the envelope moves to a new key", async () => {
    const oldKey = localAesProvider({ keys: randomBytes(32) });
    const newKey = counted();
    const before = createRecordCipher(envelopeWith(oldKey), schema);
    const row = await before.seal({ id: "r", email: "a@a.a", phone: "1" });
    const after = createRecordCipher(envelopeWith(newKey, [oldKey]), schema);
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

describe("update during a master key rotation", () => {
  const indexed = { ...schema, blindIndexes: { email: { normalize: "email" as const } } };
  const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
  const refsOf = (value: unknown) =>
    inspectEnvelope(value as string).entries.map((e) => `${e.provider}:${e.keyRef}`);

  async function rotated() {
    const oldKey = counted();
    const newKey = counted();
    const row = await createRecordCipher(envelopeWith(oldKey), indexed, { blindIndex }).seal({
      id: "rot",
      email: "Ann@x.io",
      phone: "1",
      ssn: null,
      name: "Ann",
    });
    const envelope = envelopeWith(newKey, [oldKey]);
    oldKey.reset();
    return {
      oldKey,
      newKey,
      row,
      envelope,
      users: createRecordCipher(envelope, indexed, { blindIndex }),
    };
  }

  it("a row still under the old key moves whole onto a fresh data key under the new key", async () => {
    const { oldKey, newKey, row, envelope, users } = await rotated();
    const patch = await users.update(row, { phone: "2", name: "Ann B" });
    // One unwrap (old key) to read the unchanged fields, one wrap (new key) for the new data key.
    expect(oldKey.calls).toEqual({ wrap: 0, unwrap: 1, generateDataKey: 0 });
    expect(newKey.calls).toEqual({ wrap: 1, unwrap: 0, generateDataKey: 0 });
    // Every encrypted column comes back (ssn stays null), with the blind index and the plain change.
    expect(Object.keys(patch).sort()).toEqual(["email", "email_idx", "name", "phone", "ssn"]);
    expect(patch.ssn).toBeNull();
    expect(patch.email_idx).toBe(row.email_idx);
    expect(refsOf(patch.email)).toEqual(envelope.describe().encrypt);
    expect(inspectEnvelope(patch.email as string).entries).toEqual(
      inspectEnvelope(patch.phone as string).entries,
    );
    const stored = { ...row, ...patch };
    const onlyNew = createRecordCipher(envelopeWith(newKey), indexed, { blindIndex });
    expect(await onlyNew.open(stored)).toEqual({
      id: "rot",
      email: "Ann@x.io",
      email_idx: row.email_idx,
      phone: "2",
      ssn: null,
      name: "Ann B",
    });
    // The retiring key alone can no longer open any field of the record.
    const onlyOld = createRecordCipher(envelopeWith(oldKey), indexed, { blindIndex });
    expect(await codeOf(onlyOld.openField(stored, "email"))).toBe("ENVELOPE_NO_MATCHING_KEY");
    expect(await codeOf(onlyOld.openField(stored, "phone"))).toBe("ENVELOPE_NO_MATCHING_KEY");
    // Once moved, the next update is partial again: no new data key.
    newKey.reset();
    const next = await users.update(stored, { ssn: "3" });
    expect(Object.keys(next)).toEqual(["ssn"]);
    expect(newKey.calls.wrap).toBe(0);
    expect(inspectEnvelope(next.ssn as string).entries).toEqual(
      inspectEnvelope(patch.email as string).entries,
    );
  });

  it("a change of plain fields only leaves a stale row where it is (no KMS call)", async () => {
    const { oldKey, newKey, row, users } = await rotated();
    expect(await users.update(row, { name: "Ann B" })).toEqual({ name: "Ann B" });
    expect(oldKey.calls.unwrap + newKey.calls.wrap).toBe(0);
  });

  it("a row rewrapped onto exactly the new key by another process is moved whole once", async () => {
    const { oldKey, newKey, row, envelope, users } = await rotated();
    const rewrapped = { ...row };
    for (const f of ["email", "phone"] as const) {
      rewrapped[f] = await envelope.rewrap(row[f] as string, {
        context: { table: "records_users", column: f, id: "rot" },
      });
    }
    oldKey.reset();
    newKey.reset();
    // Under the current key, but its data key was generated by another Envelope: not reused.
    const patch = await users.update(rewrapped, { phone: "2" });
    expect(Object.keys(patch).sort()).toEqual(["email", "email_idx", "phone", "ssn"]);
    expect(newKey.calls).toEqual({ wrap: 1, unwrap: 1, generateDataKey: 0 });
    expect(oldKey.calls.unwrap).toBe(0);
    expect(refsOf(patch.phone)).toEqual([`local-aes:${newKey.keyRef}`]);
  });

  it("a row this envelope sealed, rewrapped onto a new key version (same data key), is updated in place", async () => {
    // A provider with key versions (as Vault / Azure): refreshKeys() moves it to v2.
    const v1 = localAesProvider({ keys: randomBytes(32) });
    const v2 = localAesProvider({ keys: randomBytes(32) });
    let current = v1;
    let wraps = 0;
    const versioned: KeyProvider = {
      id: "local-aes",
      get keyRef() {
        return current.keyRef;
      },
      handles: (e) => v1.handles(e) || v2.handles(e),
      wrap: (dataKey, request) => {
        wraps++;
        return current.wrap(dataKey, request);
      },
      unwrap: (entry, request) => (v2.handles(entry) ? v2 : v1).unwrap(entry, request),
      refresh: async () => {
        current = v2;
      },
    };
    const envelope = envelopeWith(versioned);
    const users = createRecordCipher(envelope, indexed, { blindIndex });
    const row = await users.seal({ id: "rw", email: "a@x.io", phone: "1" });
    await envelope.refreshKeys();
    const rewrapped = { ...row };
    for (const f of ["email", "phone"] as const) {
      rewrapped[f] = await envelope.rewrap(row[f] as string, {
        context: { table: "records_users", column: f, id: "rw" },
      });
    }
    expect(refsOf(rewrapped.email)).toEqual([`local-aes:${v2.keyRef}`]);
    wraps = 0;
    const patch = await users.update(rewrapped, { phone: "2" });
    expect(Object.keys(patch)).toEqual(["phone"]);
    expect(wraps).toBe(0);
    expect(refsOf(patch.phone)).toEqual([`local-aes:${v2.keyRef}`]);
  });

  it("a row under the new AND the old key (rewrap with keep) is not exactly current: moved whole", async () => {
    const { newKey, row, envelope, users } = await rotated();
    const both = { ...row };
    for (const f of ["email", "phone"] as const) {
      both[f] = await envelope.rewrap(row[f] as string, {
        context: { table: "records_users", column: f, id: "rot" },
        keep: true,
      });
    }
    expect(refsOf(both.email)).toHaveLength(2);
    newKey.reset();
    const patch = await users.update(both, { phone: "2" });
    expect(newKey.calls.wrap).toBe(1);
    expect(Object.keys(patch).sort()).toEqual(["email", "email_idx", "phone", "ssn"]);
    expect(refsOf(patch.email)).toEqual(envelope.describe().encrypt);
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
      { blindIndex },
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
    const users = createRecordCipher(envelopeWith(kms), schema);
    const shown = `${JSON.stringify(users)} ${(await import("node:util")).inspect(users)}`;
    expect(shown).toContain("records_users");
    expect(shown).not.toMatch(/[0-9a-f]{64}/);
  });
});
