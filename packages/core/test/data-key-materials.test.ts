import { decodeEnvelope, Envelope } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { countingProvider } from "./support/counting-provider.js";

const record = { table: "users", id: "7" };
const field = (column: string) => ({ ...record, column });

describe("sealing several values under one data key", () => {
  it("generateDataKey costs one KMS call; each field is a normal envelope decrypt opens", async () => {
    const kms = countingProvider({ generateDataKey: true });
    const envelope = new Envelope({ encrypt: kms });
    const materials = await envelope.generateDataKey({ context: record });
    const email = envelope.encryptWithDataKey(materials, "a@example.com", {
      context: field("email"),
      output: "text",
    });
    const phone = envelope.encryptWithDataKey(materials, "+1 555 0100", {
      context: field("phone"),
    });
    materials.dataKey.fill(0);
    expect(kms.calls.generateDataKey + kms.calls.wrap).toBe(1);

    // distinct message ids, shared entries
    const a = decodeEnvelope(Buffer.from(email.slice(4), "base64url"));
    const b = decodeEnvelope(phone);
    expect(Buffer.from(a.messageId).equals(Buffer.from(b.messageId))).toBe(false);
    expect(Buffer.from(a.entries[0]!.wrapped).equals(Buffer.from(b.entries[0]!.wrapped))).toBe(
      true,
    );

    const reader = new Envelope({ encrypt: kms });
    expect(await reader.decrypt(email, { context: field("email"), as: "text" })).toBe(
      "a@example.com",
    );
    expect(await reader.decrypt(phone, { context: field("phone"), as: "text" })).toBe(
      "+1 555 0100",
    );
    expect(kms.calls.unwrap).toBe(1); // one record, one unwrap
    // The writer primed its own cache with the key it generated: reading back is free.
    expect(await envelope.decrypt(email, { context: field("email"), as: "text" })).toBe(
      "a@example.com",
    );
    expect(kms.calls.unwrap).toBe(1);
    await expect(reader.decrypt(phone, { context: field("email") })).rejects.toMatchObject({
      code: "ENVELOPE_DECRYPT_FAILED",
    });
  });

  it("unwrapDataKey returns the record's key (cached) to seal an updated field without a KMS call", async () => {
    const kms = countingProvider();
    const envelope = new Envelope({ encrypt: kms });
    const materials = await envelope.generateDataKey();
    const sealed = envelope.encryptWithDataKey(materials, "old", { context: field("phone") });
    const original = Buffer.from(materials.dataKey);
    materials.dataKey.fill(0);

    const again = await envelope.unwrapDataKey(sealed, { context: field("phone") });
    expect(again.dataKey.equals(original)).toBe(true);
    const unwraps = kms.calls.unwrap;
    const again2 = await envelope.unwrapDataKey(sealed, { context: field("phone") });
    expect(kms.calls.unwrap).toBe(unwraps); // served from the unwrap cache
    const updated = envelope.encryptWithDataKey(again2, "new", { context: field("phone") });
    expect(await envelope.decrypt(updated, { context: field("phone"), as: "text" })).toBe("new");
  });

  it("refuses materials that are not a 32-byte data key", () => {
    const envelope = new Envelope({ encrypt: countingProvider() });
    expect(() =>
      envelope.encryptWithDataKey({ dataKey: Buffer.alloc(16), entries: [] }, "x"),
    ).toThrow(expect.objectContaining({ code: "ENVELOPE_BAD_INPUT" }));
  });

  it("a tampered value gives the commitment error, never a key", async () => {
    const kms = countingProvider();
    const envelope = new Envelope({ encrypt: kms, cache: false });
    const materials = await envelope.generateDataKey();
    const sealed = envelope.encryptWithDataKey(materials, "v");
    sealed[3] = (sealed[3] ?? 0) ^ 1; // message id bit flip
    await expect(envelope.unwrapDataKey(sealed)).rejects.toMatchObject({
      code: "ENVELOPE_COMMITMENT_MISMATCH",
    });
  });
});
