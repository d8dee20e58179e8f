import { join } from "node:path";
import { decodeEnvelope } from "@envelope/core";
import { expect, it } from "vitest";
import {
  binaryOf,
  type DecryptVector,
  decryptEach,
  defineFamily,
  expectCases,
  parseDecryptVector,
  sealedInput,
  VECTORS_DIR,
} from "../harness.js";

/** padded-*.json: length padding, flags bit 2 (FORMAT.md §2.3). */
interface PaddedVector extends DecryptVector {
  intermediate?: { gcmPlaintextHex: string; valueLength: number; paddingHex: string };
}

const DIR = join(VECTORS_DIR, "padded");
const bytesOf = (v: PaddedVector) => binaryOf(sealedInput(v, DIR));

/** FORMAT.md §2.3 from the vector's own fields: value ‖ 0x80 ‖ 0x00…, flags bit 2 set. */
function checkPadding(v: PaddedVector, bytes: Buffer): void {
  const i = v.intermediate!;
  const gcm = Buffer.from(i.gcmPlaintextHex, "hex");
  const padding = Buffer.from(i.paddingHex, "hex");
  expect(padding[0]).toBe(0x80);
  expect(padding.subarray(1).every((b) => b === 0)).toBe(true);
  expect(gcm.length).toBe(i.valueLength + padding.length);
  expect(gcm.subarray(0, i.valueLength).toString("hex")).toBe(v.expected.plaintextHex);
  expect(gcm.subarray(i.valueLength).equals(padding)).toBe(true);
  expect(bytes[2]! & 0x04).toBe(0x04);
  const ciphertext = v.layout!.find((f) => f.field === "ciphertext")!;
  expect(ciphertext.length).toBe(gcm.length);
  expect(decodeEnvelope(bytes).body.length).toBe(gcm.length + 16);
}

export const padded = defineFamily<PaddedVector>({
  folder: "padded",
  title: "length-padding test vectors (flags bit 2)",
  files: /^padded-(pos|neg)-.*\.json$/,
  parse: parseDecryptVector,
  tests(vectors) {
    it("cover the required cases", () => {
      expectCases(vectors, [
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
      ]);
    });

    decryptEach(vectors, { dir: DIR, checkPositive: checkPadding });

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
  },
});
