import { randomBytes } from "node:crypto";
import { legacyDecoder } from "@envelope/batch-rewrap";
import { type BulkResult, EnvelopeError, localAesProvider } from "@envelope/core";
import { describe, expect, it, vi } from "vitest";
import { createRecordCipher, type LegacyReadEvent, transitionalRead } from "../src/index.js";
import { handRolledGcmJson } from "./legacy-values.js";
import { envelopeWith, watchedUnwraps } from "./support.js";

const schema = { table: "records_open_many", encrypted: ["email", "phone", "ssn"] } as const;
type Row = Record<string, unknown>;

/** A real local-aes provider whose unwraps take `ms` and are watched. */
const slowUnwraps = (ms: number) => watchedUnwraps(localAesProvider({ keys: randomBytes(32) }), ms);

const codes = (results: BulkResult<unknown>[]) => results.map((r) => (r.ok ? "ok" : r.error.code));

const people = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    id: `p${i}`,
    email: `person${i}@example.com`,
    phone: i % 3 === 0 ? null : `+1 555 ${String(i).padStart(4, "0")}`,
    ssn: i,
    name: `Person ${i}`,
  }));

describe("RecordCipher.openMany", () => {
  it("opens rows in input order with one unwrap per record and at most `concurrency` in flight", async () => {
    const kms = slowUnwraps(5);
    const users = createRecordCipher(envelopeWith(kms.provider), schema, { concurrency: 8 });
    const records = people(40);
    const rows = await Promise.all(records.map((r) => users.seal(r)));
    // A fresh Envelope on the same key: a cold unwrap cache, as in another process.
    const cold = createRecordCipher(envelopeWith(kms.provider), schema, { concurrency: 8 });
    kms.reset();
    const results = await cold.openMany(rows);
    expect(results).toEqual(records.map((value) => ({ ok: true, value })));
    expect(kms.seen.unwraps).toBe(40); // 3 fields (or 2), one data key per record
    expect(kms.seen.max).toBeGreaterThan(1);
    expect(kms.seen.max).toBeLessThanOrEqual(8);
    // Warm: every key is cached now.
    expect(codes(await cold.openMany(rows)).every((c) => c === "ok")).toBe(true);
    expect(kms.seen.unwraps).toBe(40);
  });

  it("a per-call concurrency overrides the cipher's", async () => {
    const kms = slowUnwraps(2);
    const users = createRecordCipher(envelopeWith(kms.provider), schema);
    const rows = await Promise.all(people(12).map((r) => users.seal(r)));
    const cold = createRecordCipher(envelopeWith(kms.provider), schema, { concurrency: 64 });
    await cold.openMany(rows, { concurrency: 2 });
    expect(kms.seen.max).toBe(2);
    expect(await codeOf(cold.openMany(rows, { concurrency: 0 }))).toBe("ENVELOPE_BAD_CONFIG");
  });

  it("a bad row gets its own typed error and the other rows open", async () => {
    const envelope = envelopeWith(localAesProvider({ keys: randomBytes(32) }));
    const users = createRecordCipher(envelope, schema);
    const [a, b, c] = await Promise.all(people(3).map((r) => users.seal(r)));
    const untagged = await envelope.encrypt("raw", {
      context: { table: schema.table, column: "email", id: "p9" },
      output: "text",
    });
    const rows: unknown[] = [
      a,
      { ...b, email: c!.email }, // a value copied from another row: wrong context
      { ...c, id: undefined }, // no id: no context to open under
      { id: "p7", email: "person7@example.com" }, // plaintext in an encrypted column
      { id: "p8", phone: 42 }, // not a sealed value at all
      { id: "p9", email: untagged }, // an envelope without the records type tag
      "not a row",
      c,
    ];
    const results = await users.openMany(rows as Row[]);
    expect(codes(results)).toEqual([
      "ok",
      "ENVELOPE_DECRYPT_FAILED",
      "ENVELOPE_BAD_INPUT",
      "ENVELOPE_BAD_FORMAT",
      "ENVELOPE_BAD_INPUT",
      "ENVELOPE_BAD_FORMAT",
      "ENVELOPE_BAD_INPUT",
      "ok",
    ]);
    expect(results[0]).toEqual({ ok: true, value: people(3)[0] });
    expect(results[7]).toEqual({ ok: true, value: people(3)[2] });
    // Same outcome as open() row by row, and no plaintext in any error.
    for (const [i, row] of rows.entries()) {
      if (typeof row !== "object" || results[i]!.ok) continue;
      expect(await codeOf(users.open(row as Row))).toBe(codes(results)[i]);
    }
    const messages = JSON.stringify(
      results.map((r) => (r.ok ? null : [r.error.message, r.error.details])),
    );
    expect(messages).not.toMatch(/person1@|person2@|555 000/);
  });

  it("zeroes every plaintext buffer it decrypted, for rows that open and rows that fail", async () => {
    const envelope = envelopeWith(localAesProvider({ keys: randomBytes(32) }));
    const users = createRecordCipher(envelope, schema);
    const [a, b, c] = await Promise.all(people(3).map((r) => users.seal(r)));
    const untagged = await envelope.encrypt("raw", {
      context: { table: schema.table, column: "email", id: "p1" },
      output: "text",
    });
    const decrypted: Buffer[] = [];
    // The real decryptMany, watched: every buffer it hands back is checked afterwards.
    const real = envelope.decryptMany.bind(envelope) as (
      ...args: Parameters<typeof envelope.decryptMany>
    ) => Promise<BulkResult<Buffer>[]>;
    vi.spyOn(envelope, "decryptMany").mockImplementation((async (
      ...args: Parameters<typeof envelope.decryptMany>
    ) => {
      const results = await real(...args);
      for (const r of results) if (r.ok) decrypted.push(r.value);
      return results;
    }) as typeof envelope.decryptMany);
    // Row b: all three decrypt, but email (decoded first) has no type tag. Row c: email and
    // ssn decrypt, phone (another row's) does not. Row a opens.
    const results = await users.openMany([
      a!,
      { ...b, email: untagged },
      { ...c, phone: b!.phone },
    ]);
    expect(codes(results)).toEqual(["ok", "ENVELOPE_BAD_FORMAT", "ENVELOPE_DECRYPT_FAILED"]);
    expect(decrypted.length).toBe(7);
    for (const buf of decrypted) expect(buf.every((x) => x === 0)).toBe(true);
  });

  it("keeps null / missing fields and other columns; an empty list is an empty result", async () => {
    const users = createRecordCipher(
      envelopeWith(localAesProvider({ keys: randomBytes(32) })),
      schema,
    );
    const sealed = await users.seal({ id: 5, email: "e@x.io", phone: null, extra: { a: 1 } });
    const [r] = await users.openMany([sealed]);
    expect(r).toEqual({
      ok: true,
      value: { id: 5, email: "e@x.io", phone: null, extra: { a: 1 } },
    });
    expect(await users.openMany([])).toEqual([]);
    expect(await codeOf(users.openMany("rows" as never))).toBe("ENVELOPE_BAD_INPUT");
  });

  it.each([0, -1, 1.5, 1025, "8", Number.NaN])(
    "refuses concurrency %s at creation",
    (concurrency) => {
      const envelope = envelopeWith(localAesProvider({ keys: randomBytes(32) }));
      let code = "created";
      try {
        createRecordCipher(envelope, schema, { concurrency: concurrency as number });
      } catch (e) {
        code = EnvelopeError.isInstance(e) ? e.code : String(e);
      }
      expect(code).toBe("ENVELOPE_BAD_CONFIG");
    },
  );
});

describe("RecordCipher.openMany with the transitional read", () => {
  const LEGACY_KEY = randomBytes(32);
  const decoder = legacyDecoder({ format: "aes-256-gcm-json", key: { bytes: LEGACY_KEY } });

  it("opens envelope, legacy and plaintext values side by side, audits each legacy read", async () => {
    const envelope = envelopeWith(localAesProvider({ keys: randomBytes(32) }));
    const events: LegacyReadEvent[] = [];
    const transitional = transitionalRead({
      decoders: [decoder],
      allowPlaintext: true,
      onLegacyRead: (e) => events.push(e),
    });
    const users = createRecordCipher(envelope, schema, { transitional });
    const sealed = await users.seal({ id: "1", email: "ann@example.com", phone: "+1 555 0100" });
    const rows = [
      { ...sealed, ssn: handRolledGcmJson(LEGACY_KEY, "078-05-1120") },
      { id: "2", email: "bob@example.com", phone: null, ssn: null },
      { id: "3", email: handRolledGcmJson(randomBytes(32), "x@y.z") }, // legacy, wrong key
      { ...sealed, id: "4" }, // an envelope is never re-read as legacy: wrong context
    ];
    const results = await users.openMany(rows);
    expect(results.slice(0, 2)).toEqual([
      {
        ok: true,
        value: { id: "1", email: "ann@example.com", phone: "+1 555 0100", ssn: "078-05-1120" },
      },
      { ok: true, value: { id: "2", email: "bob@example.com", phone: null, ssn: null } },
    ]);
    expect(codes(results.slice(2))).toEqual(["ENVELOPE_DECRYPT_FAILED", "ENVELOPE_DECRYPT_FAILED"]);
    expect(events).toEqual([
      { format: "aes-256-gcm-json", table: schema.table, column: "ssn", id: "1" },
      { format: "plaintext", table: schema.table, column: "email", id: "2" },
    ]);
    expect(transitional.counts()).toEqual({ "aes-256-gcm-json": 1, plaintext: 1 });
  });
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (EnvelopeError.isInstance(e)) return e.code;
    throw e;
  }
  return "resolved";
}
