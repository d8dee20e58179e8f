import { randomBytes } from "node:crypto";
import { Envelope, EnvelopeError, inspectEnvelope, localAesProvider } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { createRecordCipher } from "../src/index.js";

const table = "records_padding";
const envelopeOf = (pad?: number) =>
  new Envelope({
    encrypt: localAesProvider({ keys: randomBytes(32) }),
    ...(pad ? { pad } : {}),
  });
const bodyBytes = (sealed: unknown) => inspectEnvelope(sealed as string).bodyBytes - 16;

describe("per-field length padding in record schemas", () => {
  it("pads the listed fields only, and open() returns the values unchanged", async () => {
    const users = createRecordCipher(envelopeOf(), {
      table,
      encrypted: ["email", "address", "ssn", "note"],
      pad: { email: 32, address: { bucket: 64, min: 128 }, ssn: "pii" },
    });
    const record = {
      id: "7",
      email: "ann@example.com", // 1 type-tag byte + 15
      address: "1 Main St, Springfield",
      ssn: "078-05-1120",
      note: "hi",
    };
    const row = await users.seal(record);
    expect(bodyBytes(row.email)).toBe(32);
    expect(bodyBytes(row.address)).toBe(128);
    expect(bodyBytes(row.ssn)).toBe(64);
    expect(bodyBytes(row.note)).toBe(3); // not listed: exact length (tag byte + 2)
    expect(inspectEnvelope(row.note as string).padded).toBe(false);
    expect(await users.open(row)).toEqual(record);
    // Partial update under the existing data key pads too.
    const changed = await users.update(row, { email: "a@b.co" });
    expect(bodyBytes(changed.email)).toBe(32);
    expect(await users.openField({ ...row, ...changed }, "email")).toBe("a@b.co");
  });

  it("two emails of different lengths in one bucket are stored at the same size", async () => {
    const users = createRecordCipher(envelopeOf(), {
      table,
      encrypted: ["email"],
      pad: { email: 64 },
    });
    const a = await users.seal({ id: "1", email: "al@x.io" });
    const b = await users.seal({ id: "2", email: "alexandra.longname@example.com" });
    expect((a.email as string).length).toBe((b.email as string).length);
  });

  it("pad: false on a field overrides the Envelope default", async () => {
    const users = createRecordCipher(envelopeOf(32), {
      table,
      encrypted: ["email", "flag"],
      pad: { flag: false },
    });
    const row = await users.seal({ id: "1", email: "ann@example.com", flag: true });
    expect(bodyBytes(row.email)).toBe(32);
    expect(bodyBytes(row.flag)).toBe(2);
    expect(await users.open(row)).toEqual({ id: "1", email: "ann@example.com", flag: true });
  });

  it("existing unpadded rows get padded by an update with their own values", async () => {
    const envelope = envelopeOf();
    const before = createRecordCipher(envelope, { table, encrypted: ["ssn"] });
    const row = await before.seal({ id: "9", ssn: "078-05-1120" });
    expect(inspectEnvelope(row.ssn as string).padded).toBe(false);
    const after = createRecordCipher(envelope, { table, encrypted: ["ssn"], pad: { ssn: "pii" } });
    const changes = await after.update(row, await after.open(row));
    expect(bodyBytes(changes.ssn)).toBe(64);
    expect(await after.open({ ...row, ...changes })).toEqual({ id: "9", ssn: "078-05-1120" });
  });

  it.each([
    [{ phone: 32 }, "pad.phone"],
    [{ email: 1 }, "pad.email"],
    [{ email: { bucket: 32, max: 9 } }, "pad.email"],
    [[32], "pad"],
  ])("a bad pad %j is ENVELOPE_BAD_CONFIG naming %s", (pad, field) => {
    let error: unknown;
    try {
      createRecordCipher(envelopeOf(), { table, encrypted: ["email"], pad: pad as never });
    } catch (e) {
      error = e;
    }
    expect(EnvelopeError.isInstance(error)).toBe(true);
    expect((error as EnvelopeError).code).toBe("ENVELOPE_BAD_CONFIG");
    expect((error as EnvelopeError).details.field).toBe(field);
  });
});
