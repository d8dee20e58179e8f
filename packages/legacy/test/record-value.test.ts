import { randomBytes } from "node:crypto";
import { Envelope, localAesProvider } from "@envelope/core";
import {
  gcmJsonDecoder,
  type LegacyDecoder,
  pgcryptoDecoder,
  RECORD_VALUE_TAGS,
  recordValueDecoder,
  recordValueTypeOf,
} from "@envelope/legacy";
import { createRecordCipher, VALUE_TAGS } from "@envelope/records";
import { describe, expect, it } from "vitest";
import { codeOf, handRolledGcmJson } from "./support.js";

// What `envelope migrate --records` does to each value (batch-rewrap's migrateTransform):
// decode, then envelope.encrypt under { table, column, id }.
async function migrated(envelope: Envelope, decoded: Buffer, column: string, id: string) {
  return envelope.encrypt(decoded, {
    context: { table: "users", column, id },
    output: "text",
  });
}

describe("recordValueDecoder: migrate output a RecordCipher opens", () => {
  const key = randomBytes(32);
  const envelope = new Envelope({
    encrypt: [localAesProvider({ keys: randomBytes(32).toString("hex") })],
  });
  const users = createRecordCipher(envelope, { table: "users", encrypted: ["email", "photo"] });

  it("uses the records codec's tags", () => {
    expect(RECORD_VALUE_TAGS.string).toBe(VALUE_TAGS.string);
    expect(RECORD_VALUE_TAGS.bytes).toBe(VALUE_TAGS.bytes);
  });

  it("recordValueTypeOf tells a wrapped decoder (so migrate does not tag twice)", () => {
    const plain = gcmJsonDecoder(key);
    expect(recordValueTypeOf(plain)).toBeUndefined();
    expect(recordValueTypeOf(recordValueDecoder(plain))).toBe("string");
    expect(recordValueTypeOf(recordValueDecoder(plain, "bytes"))).toBe("bytes");
    expect(JSON.stringify(recordValueDecoder(plain))).toBe('{"format":"aes-256-gcm-json"}');
  });

  it("a migrated string opens with RecordCipher.open; an untagged one does not", async () => {
    const legacy = handRolledGcmJson(key, "ann@example.com");
    const plain = gcmJsonDecoder(key);
    const tagged = recordValueDecoder(plain);
    expect(tagged.format).toBe("aes-256-gcm-json");
    expect(tagged.matches(legacy)).toBe(true);
    const email = await migrated(envelope, tagged.decode(legacy), "email", "7");
    expect(await users.open({ id: 7, email })).toEqual({ id: 7, email: "ann@example.com" });
    const untagged = await migrated(envelope, plain.decode(legacy), "email", "7");
    await expect(users.open({ id: 7, email: untagged })).rejects.toMatchObject({
      code: "ENVELOPE_BAD_FORMAT",
    });
  });

  it("bytes: any plaintext, read back as a Buffer; string refuses non-UTF-8 (typed)", async () => {
    const raw = Buffer.from([0xff, 0x00, 0xfe]);
    const binary: LegacyDecoder = {
      format: "aes-256-gcm-json",
      matches: () => true,
      decode: () => Buffer.from(raw),
    };
    const photo = await migrated(
      envelope,
      recordValueDecoder(binary, "bytes").decode("v"),
      "photo",
      "8",
    );
    expect((await users.open<{ photo: Buffer }>({ id: "8", photo })).photo.equals(raw)).toBe(true);
    expect(codeOf(() => recordValueDecoder(binary).decode("v"))).toBe("ENVELOPE_BAD_FORMAT");
    expect(codeOf(() => recordValueDecoder(binary, "json" as never))).toBe("ENVELOPE_BAD_CONFIG");
  });

  it("keeps an async decoder async (pgcrypto)", async () => {
    // A stand-in connection: the catalog lookup of pgcrypto's schema, then the decryption.
    const pool = {
      query: async (text: string) => ({
        rows: [
          text.includes("pg_extension") ? { s: "public" } : { p: Buffer.from("bob@example.com") },
        ],
      }),
    };
    const d = recordValueDecoder(pgcryptoDecoder({ pool, passphrase: "p" }));
    expect("async" in d && d.async).toBe(true);
    const out = await d.decode(Buffer.from([0xc3, 0x0d, 0x04, 0x07, 0x03, 0x02]));
    expect(out[0]).toBe(VALUE_TAGS.string);
    expect(out.subarray(1).toString()).toBe("bob@example.com");
  });
});
