import { randomBytes } from "node:crypto";
import { legacyDecoder } from "@envelope/batch-rewrap";
import { EnvelopeError, FormatError, localAesProvider } from "@envelope/core";
import { describe, expect, it } from "vitest";
import {
  createRecordCipher,
  isSealedValue,
  type LegacyReadEvent,
  type LegacyValueDecoder,
  transitionalRead,
} from "../src/index.js";
import { handRolledGcmJson } from "./legacy-values.js";
import { envelopeWith } from "./support.js";

const schema = { table: "records_people", encrypted: ["email", "ssn"] } as const;
const LEGACY_KEY = randomBytes(32);
const gcmJson = () => legacyDecoder({ format: "aes-256-gcm-json", key: { bytes: LEGACY_KEY } });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (EnvelopeError.isInstance(e)) return e.code;
    throw e;
  }
  throw new Error("expected a rejection");
}

function setup(options: { allowPlaintext?: boolean; decoders?: LegacyValueDecoder[] } = {}) {
  const envelope = envelopeWith(localAesProvider({ keys: randomBytes(32) }));
  const events: LegacyReadEvent[] = [];
  const reads = transitionalRead({
    decoders: options.decoders ?? [gcmJson()],
    ...(options.allowPlaintext ? { allowPlaintext: true } : {}),
    onLegacyRead: (e) => events.push(e),
  });
  const people = createRecordCipher(envelope, schema, { transitional: reads });
  const strict = createRecordCipher(envelope, schema);
  return { envelope, events, reads, people, strict };
}

describe("transitional read: legacy values open, explicitly and audited", () => {
  it("opens envelopes, hand-rolled GCM JSON and (when allowed) plaintext in one record", async () => {
    const { people, events, reads } = setup({ allowPlaintext: true });
    const sealed = await people.seal({ id: "1", email: "ann@example.com" });
    const row = {
      id: "1",
      email: sealed.email,
      ssn: handRolledGcmJson(LEGACY_KEY, "078-05-1120"),
    };
    expect(await people.open(row)).toEqual({
      id: "1",
      email: "ann@example.com",
      ssn: "078-05-1120",
    });
    expect(await people.openField({ id: "2", ssn: "219-09-9999" }, "ssn")).toBe("219-09-9999");
    expect(events).toEqual([
      { format: "aes-256-gcm-json", table: "records_people", column: "ssn", id: "1" },
      { format: "plaintext", table: "records_people", column: "ssn", id: "2" },
    ]);
    // The audit event names where and which format, never the value.
    expect(JSON.stringify(events)).not.toMatch(/078-05|219-09|ann@/);
    expect(reads.counts()).toEqual({ "aes-256-gcm-json": 1, plaintext: 1 });
  });

  it("without the option, a legacy value is refused as before (no silent fallback)", async () => {
    const { strict } = setup();
    const row = { id: "1", ssn: handRolledGcmJson(LEGACY_KEY, "078-05-1120") };
    expect(await codeOf(strict.open(row))).toBe("ENVELOPE_BAD_FORMAT");
  });

  it("an envelope that fails to open is an error, never read as legacy or plaintext", async () => {
    const { people, events } = setup({ allowPlaintext: true });
    const sealed = await people.seal({ id: "1", email: "ann@example.com" });
    // Moved to another row: the context differs.
    expect(await codeOf(people.open({ id: "2", email: sealed.email }))).toBe(
      "ENVELOPE_DECRYPT_FAILED",
    );
    // Truncated (a varchar(n) column cut it short).
    const cut = sealed.email.slice(0, 60);
    expect(await codeOf(people.open({ id: "1", email: cut }))).toBe("ENVELOPE_BAD_FORMAT");
    // A bit flipped in the body.
    const flipped = `${sealed.email.slice(0, -3)}${sealed.email.at(-3) === "A" ? "B" : "A"}${sealed.email.slice(-2)}`;
    expect(await codeOf(people.open({ id: "1", email: flipped }))).toMatch(
      /ENVELOPE_DECRYPT_FAILED|ENVELOPE_BAD_FORMAT/,
    );
    expect(events).toEqual([]);
  });

  it("a legacy value under another key is an error, even with plaintext allowed", async () => {
    const { people, events } = setup({ allowPlaintext: true });
    const row = { id: "1", ssn: handRolledGcmJson(randomBytes(32), "078-05-1120") };
    expect(await codeOf(people.open(row))).toBe("ENVELOPE_DECRYPT_FAILED");
    const tampered = JSON.parse(handRolledGcmJson(LEGACY_KEY, "078-05-1120"));
    tampered.encrypted = `ff${tampered.encrypted.slice(2)}`;
    expect(await codeOf(people.open({ id: "1", ssn: JSON.stringify(tampered) }))).toBe(
      "ENVELOPE_DECRYPT_FAILED",
    );
    expect(events).toEqual([]);
  });

  it("a value no decoder takes is ENVELOPE_BAD_FORMAT when plaintext is not allowed", async () => {
    const { people, events } = setup();
    const error = await people.open({ id: "7", ssn: "078-05-1120" }).catch((e) => e);
    expect(FormatError.isInstance(error)).toBe(true);
    expect(error.code).toBe("ENVELOPE_BAD_FORMAT");
    expect(error.message).toContain("records_people.ssn");
    expect(error.message).not.toContain("078-05");
    expect(error.details).toMatchObject({ table: "records_people", column: "ssn", id: "7" });
    expect(events).toEqual([]);
  });

  it("a decoder that claims a value (matches) and fails is final, not plaintext", async () => {
    const versioned: LegacyValueDecoder = {
      format: "v2-prefixed",
      matches: (v) => String(v).startsWith("v2:"),
      decode: (v) => gcmJson().decode(String(v).slice(3)),
    };
    const { people, events } = setup({ allowPlaintext: true, decoders: [versioned] });
    const good = `v2:${handRolledGcmJson(LEGACY_KEY, "a@b.c")}`;
    expect(await people.openField({ id: "1", email: good }, "email")).toBe("a@b.c");
    // Claimed, but not JSON after the prefix: decode says BAD_FORMAT, still an error.
    expect(await codeOf(people.openField({ id: "1", email: "v2:garbage" }, "email"))).toBe(
      "ENVELOPE_BAD_FORMAT",
    );
    expect(events.map((e) => e.format)).toEqual(["v2-prefixed"]);
  });

  it("a third-party decoder's plain Error becomes a typed error naming the format", async () => {
    const odd: LegacyValueDecoder = {
      format: "odd",
      decode: () => {
        throw new Error("boom with secret 078-05-1120");
      },
    };
    const { people } = setup({ allowPlaintext: true, decoders: [odd] });
    const error = (await people
      .openField({ id: "1", ssn: "x" }, "ssn")
      .catch((e: unknown) => e)) as EnvelopeError;
    expect(error.code).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(error.details.format).toBe("odd");
    expect(error.message).not.toContain("078-05");
  });

  it("an audit sink that throws does not change the read; the read is still counted", async () => {
    const envelope = envelopeWith(localAesProvider({ keys: randomBytes(32) }));
    const reads = transitionalRead({
      decoders: [gcmJson()],
      onLegacyRead: () => {
        throw new Error("log sink down");
      },
    });
    const people = createRecordCipher(envelope, schema, { transitional: reads });
    const row = { id: "1", ssn: handRolledGcmJson(LEGACY_KEY, "078-05-1120") };
    expect(await people.openField(row, "ssn")).toBe("078-05-1120");
    expect(reads.counts()).toEqual({ "aes-256-gcm-json": 1 });
  });

  it("update of a row holding a legacy value re-seals the whole record as envelopes", async () => {
    const { people, strict } = setup({ allowPlaintext: true });
    const row = {
      id: "9",
      email: "ann@example.com", // never encrypted
      ssn: handRolledGcmJson(LEGACY_KEY, "078-05-1120"),
      name: "Ann",
    };
    const out = await people.update(row, { email: "ann@new.example" });
    expect(Object.keys(out).sort()).toEqual(["email", "ssn"]);
    expect(isSealedValue(out.email as string) && isSealedValue(out.ssn as string)).toBe(true);
    // Written back, the row opens without the transitional read.
    expect(await strict.open({ ...row, ...out })).toEqual({
      id: "9",
      email: "ann@new.example",
      ssn: "078-05-1120",
      name: "Ann",
    });
    // A plain-field change leaves encrypted columns alone.
    expect(await people.update(row, { name: "Ann L." })).toEqual({ name: "Ann L." });
  });

  it("binary columns: bytes starting with the format header are envelopes, others legacy", async () => {
    const envelope = envelopeWith(localAesProvider({ keys: randomBytes(32) }));
    const events: LegacyReadEvent[] = [];
    const reads = transitionalRead({
      allowPlaintext: true,
      legacyAs: "bytes",
      onLegacyRead: (e) => events.push(e),
    });
    const files = createRecordCipher(
      envelope,
      { table: "records_files", encrypted: ["blob"] },
      { output: "binary", transitional: reads },
    );
    const sealed = await files.seal({ id: "1", blob: Buffer.from("abc") });
    expect(isSealedValue(sealed.blob)).toBe(true);
    expect(await files.openField({ id: "1", blob: sealed.blob }, "blob")).toEqual(
      Buffer.from("abc"),
    );
    const legacy = Buffer.from([0xc3, 0x0d, 0x04]);
    expect(await files.openField({ id: "1", blob: legacy }, "blob")).toEqual(legacy);
    // A damaged binary envelope (header kept, body cut) is an error, not legacy bytes.
    expect(
      await codeOf(files.openField({ id: "1", blob: sealed.blob.subarray(0, 50) }, "blob")),
    ).toBe("ENVELOPE_BAD_FORMAT");
    expect(events.map((e) => e.format)).toEqual(["plaintext"]);
  });

  it("legacy plaintext that is not UTF-8 is a typed error with legacyAs string", async () => {
    const { people } = setup({ allowPlaintext: true });
    const bytes = Buffer.from([0xff, 0xfe, 0x00]);
    expect(await codeOf(people.openField({ id: "1", ssn: bytes }, "ssn"))).toBe(
      "ENVELOPE_BAD_FORMAT",
    );
  });

  it.each([
    ["no onLegacyRead", { decoders: [gcmJson()] }],
    ["nothing accepted", { onLegacyRead: () => {} }],
    [
      "a plaintext decoder",
      { decoders: [legacyDecoder({ format: "plaintext" })], onLegacyRead: () => {} },
    ],
    ["the same format twice", { decoders: [gcmJson(), gcmJson()], onLegacyRead: () => {} }],
    ["a decoder without decode", { decoders: [{ format: "x" }], onLegacyRead: () => {} }],
    ["a bad legacyAs", { decoders: [gcmJson()], onLegacyRead: () => {}, legacyAs: "hex" }],
  ])("refuses a configuration with %s (ENVELOPE_BAD_CONFIG)", (_, options) => {
    let code: string | undefined;
    try {
      transitionalRead(options as never);
    } catch (e) {
      code = EnvelopeError.isInstance(e) ? e.code : "untyped";
    }
    expect(code).toBe("ENVELOPE_BAD_CONFIG");
  });

  it("createRecordCipher refuses a transitional option not made by transitionalRead", () => {
    const envelope = envelopeWith(localAesProvider({ keys: randomBytes(32) }));
    expect(() =>
      createRecordCipher(envelope, schema, { transitional: { decoders: [] } as never }),
    ).toThrow(/transitionalRead/);
  });
});

describe("isSealedValue and suite 0x03 (FORMAT.md §15)", () => {
  it("a binary suite 0x03 value is an envelope: opened as one, never read as legacy or plaintext", async () => {
    const { hierarchicalProvider, memoryKeyStore } = await import("@envelope/hierarchical");
    const master = localAesProvider({ keys: randomBytes(32) });
    const provider = hierarchicalProvider({ master, store: memoryKeyStore(), suite: 3 });
    const envelope = envelopeWith(provider);
    const context = { table: "records_files", column: "blob" };
    const sealed = await envelope.encrypt(Buffer.from("abc"), { context, output: "binary" });
    expect(sealed[1]).toBe(0x03);
    expect(isSealedValue(sealed)).toBe(true);

    // With plaintext allowed, a damaged suite 0x03 value must fail, not come back as "plaintext".
    const legacyReads: LegacyReadEvent[] = [];
    const reads = transitionalRead({
      decoders: [],
      allowPlaintext: true,
      legacyAs: "bytes",
      onLegacyRead: (e) => legacyReads.push(e),
    });
    const opened = await reads.open(envelope, sealed, context);
    expect(Buffer.from(opened.plaintext)).toEqual(Buffer.from("abc"));
    expect(opened.legacyFormat).toBeUndefined();
    const damaged = Buffer.from(sealed);
    damaged[damaged.length - 1]! ^= 1;
    expect(await codeOf(reads.open(envelope, damaged, context))).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(legacyReads).toEqual([]);
  });
});
