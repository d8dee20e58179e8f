import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type DecryptOptions,
  decodeEnvelope,
  type EncryptionContext,
  Envelope,
  EnvelopeError,
  localAesProvider,
} from "@envelope/core";
import { describe, expect, it } from "vitest";

/** The JSON shape of test/vectors/padded-*.json (see test/vectors/README.md). */
interface PaddedVector {
  id: string;
  kind: "positive" | "negative";
  form: "binary" | "text";
  envelopeHex?: string;
  envelopeText?: string;
  keys: { localAes: { keyRef: string; keyHex: string }[] };
  decrypt: { context?: EncryptionContext; trustedSigners?: string[] };
  expected: { plaintextHex?: string; error?: string; errorClass?: string };
  layout?: { field: string; offset: number; length: number; hex: string }[];
  intermediate?: { gcmPlaintextHex: string; valueLength: number; paddingHex: string };
}

const DIR = fileURLToPath(new URL("./vectors/", import.meta.url));
const vectors: PaddedVector[] = readdirSync(DIR)
  .filter((name) => /^padded-(pos|neg)-.*\.json$/.test(name))
  .sort()
  .map((name) => JSON.parse(readFileSync(join(DIR, name), "utf8")) as PaddedVector);

function bytesOf(v: PaddedVector): Buffer {
  return v.envelopeText !== undefined
    ? Buffer.from(v.envelopeText.slice(4), "base64url")
    : Buffer.from(v.envelopeHex!, "hex");
}

/** FORMAT.md §2.3 from the vector's own fields: value ‖ 0x80 ‖ 0x00…, flags bit 2 set. */
function checkPadding(v: PaddedVector): void {
  const i = v.intermediate!;
  const gcm = Buffer.from(i.gcmPlaintextHex, "hex");
  const padding = Buffer.from(i.paddingHex, "hex");
  expect(padding[0]).toBe(0x80);
  expect(padding.subarray(1).every((b) => b === 0)).toBe(true);
  expect(gcm.length).toBe(i.valueLength + padding.length);
  expect(gcm.subarray(0, i.valueLength).toString("hex")).toBe(v.expected.plaintextHex);
  expect(gcm.subarray(i.valueLength).equals(padding)).toBe(true);
  const bytes = bytesOf(v);
  expect(bytes[2]! & 0x04).toBe(0x04);
  const ciphertext = v.layout!.find((f) => f.field === "ciphertext")!;
  expect(ciphertext.length).toBe(gcm.length);
  expect(decodeEnvelope(bytes).body.length).toBe(gcm.length + 16);
}

describe("length-padding test vectors (flags bit 2)", () => {
  it("cover the required cases", () => {
    const ids = vectors.map((v) => v.id).join(" ");
    for (const needed of [
      "bucket-32",
      "pii-stored-context",
      "one-byte-of-padding",
      "empty-value",
      "value-ends-like-padding",
      "any-padding-length",
      "text-form",
      "rewrapped",
      "signed",
      "flag-cleared",
      "flag-set-on-unpadded",
      "padding-all-zero",
      "padding-missing",
      "empty-ciphertext",
      "stream-key-and-padded",
      "signed-flag-cleared",
    ]) {
      expect(ids).toContain(needed);
    }
  });

  it.each(vectors.map((v) => [v.id, v] as const))("%s", async (_id, v) => {
    const envelope = new Envelope({
      encrypt: localAesProvider({ keys: v.keys.localAes.map((k) => k.keyHex) }),
      cache: false,
      ...(v.decrypt.trustedSigners
        ? { trustedSigners: v.decrypt.trustedSigners.map((hex) => Buffer.from(hex, "hex")) }
        : {}),
    });
    const input = v.envelopeText ?? Buffer.from(v.envelopeHex!, "hex");
    const options: DecryptOptions<"bytes"> =
      v.decrypt.context === undefined ? {} : { context: v.decrypt.context };
    if (v.kind === "positive") {
      const plaintext = await envelope.decrypt(input, options);
      expect(plaintext.toString("hex")).toBe(v.expected.plaintextHex);
      checkPadding(v);
      return;
    }
    const error: unknown = await envelope.decrypt(input, options).then(
      () => new Error("decrypt succeeded; the vector expects it to fail"),
      (e: unknown) => e,
    );
    expect(EnvelopeError.isInstance(error), String(error)).toBe(true);
    expect((error as EnvelopeError).code).toBe(v.expected.error);
    expect((error as EnvelopeError).name).toBe(v.expected.errorClass);
  });

  it("a decoder that predates flags bit 2 refuses every padded value (FORMAT.md §2.1 step 3)", () => {
    // The rule such a decoder applies: only bits 0 and 1 are defined.
    for (const v of vectors.filter((x) => x.kind === "positive")) {
      expect(bytesOf(v)[2]! & ~0x03).not.toBe(0);
    }
  });

  it("rewrapped vector: bytes 0..67 and the body region equal those of padded-pos-01", () => {
    const a = bytesOf(vectors.find((v) => v.id === "padded-pos-01-bucket-32")!);
    const b = bytesOf(vectors.find((v) => v.id.endsWith("rewrapped"))!);
    expect(b.subarray(0, 67).equals(a.subarray(0, 67))).toBe(true);
    const region = 4 + 32 + 16;
    expect(b.subarray(b.length - region).equals(a.subarray(a.length - region))).toBe(true);
  });
});
