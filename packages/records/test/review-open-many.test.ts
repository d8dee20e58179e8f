/**
 * Review (wip6-ops): `openMany` as packages/records/README.md documents it ("Reading many
 * rows"): one KMS call per record, at most `concurrency` in flight, per-row results in
 * input order with typed errors, "the other rows open". Read as an attacker who can write
 * the table: planted values in some rows must not keep the other rows from opening, and
 * must cost bounded KMS work.
 */
import { randomBytes } from "node:crypto";
import { type BulkResult, EnvelopeError, localAesProvider, toText } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { parse } from "../../core/src/format/parse.js";
import { craft } from "../../core/test/support/craft.js";
import { createRecordCipher } from "../src/index.js";
import { envelopeWith, watchedUnwraps } from "./support.js";

const schema = { table: "review_open_many", encrypted: ["email", "phone", "ssn"] } as const;
type Row = Record<string, unknown>;

const codes = (results: BulkResult<unknown>[]) => results.map((r) => (r.ok ? "ok" : r.error.code));

const people = (n: number, from = 0) =>
  Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return {
      id: `p${i}`,
      email: `person${i}@example.com`,
      phone: `+1 555 ${String(i).padStart(4, "0")}`,
      ssn: i,
    };
  });

/** A sealed field whose first (only) entry is `victim`'s, with the attacker's own body. */
function withEntryOf(victim: string): string {
  const entry = parse(victim).entries[0]!;
  return toText(
    craft({
      entries: [{ providerId: entry.providerId, keyRef: entry.keyRef, wrapped: entry.wrapped }],
    }),
  );
}

async function setup(records: number, concurrency = 4, delayMs = 2) {
  const kms = watchedUnwraps(localAesProvider({ keys: randomBytes(32) }), delayMs);
  const writer = createRecordCipher(envelopeWith(kms.provider), schema);
  const honest = people(records);
  const rows = (await Promise.all(honest.map((r) => writer.seal(r)))) as Row[];
  // A cold reader (another process): its unwrap cache is empty.
  const reader = createRecordCipher(envelopeWith(kms.provider), schema, { concurrency });
  kms.reset();
  return { kms, honest, rows, reader };
}

describe("review: openMany with planted rows (attacker with write access to the table)", () => {
  it("every honest row opens in input order; planted rows fail alone with stable codes; work bounded", async () => {
    const { kms, honest, rows, reader } = await setup(20);
    const victim = rows[10]!;
    const planted: { name: string; row: unknown }[] = [
      { name: "garbage text", row: { id: "x1", email: "ev1:AAAAAAAAAAAAAAAAAAAA" } },
      { name: "garbage bytes", row: { id: "x2", email: randomBytes(120) } },
      {
        name: "truncated",
        row: { id: "x3", email: (victim.email as string).slice(0, -12) },
      },
      // The victim's fields copied whole into the attacker's row (other id: other context).
      {
        name: "copied row",
        row: { id: "x4", email: victim.email, phone: victim.phone, ssn: victim.ssn },
      },
      // A value whose first entry is the victim's, placed before the victim in the batch.
      {
        name: "first entry = victim's",
        row: { id: "x5", email: withEntryOf(victim.email as string) },
      },
      // 100 entries, each a real entry of another row.
      {
        name: "100 entries",
        row: {
          id: "x6",
          email: toText(
            craft({
              entries: Array.from({ length: 100 }, (_, i) => {
                const e = parse(rows[i % 20]!.email as string).entries[0]!;
                return { providerId: e.providerId, keyRef: e.keyRef, wrapped: e.wrapped };
              }),
            }),
          ),
        },
      },
      // 16 entries (the format's most), each a real entry of another row.
      {
        name: "16 entries",
        row: {
          id: "x7",
          email: toText(
            craft({
              entries: Array.from({ length: 16 }, (_, i) => {
                const e = parse(rows[i]!.email as string).entries[0]!;
                return { providerId: e.providerId, keyRef: e.keyRef, wrapped: e.wrapped };
              }),
            }),
          ),
        },
      },
      // Good first field, hostile second one: the row fails, nothing of it leaks out.
      { name: "one bad field", row: { ...rows[3]!, id: rows[3]!.id, phone: "ev1:zz" } },
    ];
    const batch = [...planted.map((p) => p.row), ...rows];
    const results = await reader.openMany(batch as Row[]);
    expect(results).toHaveLength(batch.length);
    const stable = new Set([
      "ENVELOPE_BAD_FORMAT",
      "ENVELOPE_BAD_INPUT",
      "ENVELOPE_LIMIT_EXCEEDED",
      "ENVELOPE_UNSUPPORTED_VERSION",
      "ENVELOPE_DECRYPT_FAILED",
      "ENVELOPE_COMMITMENT_MISMATCH",
      "ENVELOPE_UNWRAP_FAILED",
    ]);
    const got = Object.fromEntries(planted.map((p, i) => [p.name, codes(results)[i]]));
    for (const [i, p] of planted.entries()) {
      const r = results[i]!;
      expect(r.ok, p.name).toBe(false);
      if (!r.ok) {
        expect(EnvelopeError.isInstance(r.error), p.name).toBe(true);
        expect(stable.has(r.error.code), `${p.name}: ${r.error.code}`).toBe(true);
        // No plaintext of any honest row in an error.
        expect(JSON.stringify([r.error.message, r.error.details])).not.toMatch(/person\d+@|555 0/);
      }
    }
    expect(got).toMatchObject({
      "copied row": "ENVELOPE_DECRYPT_FAILED",
      "first entry = victim's": "ENVELOPE_COMMITMENT_MISMATCH",
      "16 entries": "ENVELOPE_LIMIT_EXCEEDED",
    });
    expect(results.slice(planted.length)).toEqual(honest.map((value) => ({ ok: true, value })));
    // 20 honest records; the planted rows reuse honest entries (cached after their first
    // use) or are refused before any unwrap; at most one extra for the victim's entry.
    expect(kms.seen.unwraps).toBeLessThanOrEqual(21);
    expect(kms.seen.max).toBeLessThanOrEqual(4);
  });

  it("a row id copied from the victim opens only the victim's own values (context is the id)", async () => {
    const { rows, reader } = await setup(3);
    // The attacker's own row (p0's values) relabelled with p1's id: it does not open.
    const relabelled = { ...rows[0]!, id: rows[1]!.id };
    const results = await reader.openMany([relabelled, rows[1]!] as Row[]);
    expect(codes(results)).toEqual(["ENVELOPE_DECRYPT_FAILED", "ok"]);
  });

  it("100 rows each holding a copy of the victim's email: one unwrap, all fail alone", async () => {
    const { kms, rows, reader, honest } = await setup(2);
    const copies = Array.from({ length: 100 }, (_, i) => ({ id: `c${i}`, email: rows[0]!.email }));
    const results = await reader.openMany([...copies, ...rows] as Row[]);
    expect(codes(results.slice(0, 100)).every((c) => c === "ENVELOPE_DECRYPT_FAILED")).toBe(true);
    expect(results.slice(100)).toEqual(honest.map((value) => ({ ok: true, value })));
    expect(kms.seen.unwraps).toBe(2);
  });

  // Was FINDING (core decryptMany, fixed; see packages/core/test/review-bulk.test.ts). Doc:
  // packages/records/README.md "Bounded. At most `concurrency` data keys are unwrapped at
  // once (KMS calls in flight) … (default 16, 1–1024) … raise it for exports" and "One KMS
  // call per record". With the envelope's default unwrap cache (1000 keys) and concurrency
  // 1024, an export of 2048 records (3 fields each) made 2096–4088 unwraps over 3 runs
  // (up to each record's key twice) with 1048 in flight: the pipeline starts the next record's unwrap before the
  // rest of a record opens, and by then the cache evicted its key.
  it("concurrency 1024 with the default unwrap cache: one unwrap per record", async () => {
    const { kms, reader } = await setup(0, 1024, 3);
    const writer = createRecordCipher(envelopeWith(kms.provider), schema);
    const rows = (await Promise.all(people(2048).map((r) => writer.seal(r)))) as Row[];
    kms.reset();
    const results = await reader.openMany(rows);
    expect(results.every((r) => r.ok)).toBe(true);
    expect({ unwraps: kms.seen.unwraps, bounded: kms.seen.max <= 1024 }).toEqual({
      unwraps: 2048,
      bounded: true,
    });
  });
});
