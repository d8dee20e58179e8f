import { createHash } from "node:crypto";
import { join } from "node:path";
import { decodeEnvelope } from "@envelope/core";
import { expect, it } from "vitest";
import {
  type DecryptVector,
  decryptEach,
  defineFamily,
  expectCases,
  parseDecryptVector,
  VECTORS_DIR,
} from "../harness.js";

/** The data key generate-suite3.ts seals every vector's message key from. */
const DEK = Buffer.from("0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0", "hex");
const INFO = "envelope:v1:suite3:key+commitment";

/** suite3-pos-*.json carry the §15.2 KDF input and output (FORMAT.md §12). */
interface Suite3Vector extends DecryptVector {
  layout?: { field: string; offset: number; length: number; hex: string }[];
  intermediate?: {
    dataKeyHex: string;
    kdf: { hash: string; inputHex: string };
    okmHex: string;
    encryptionKeyHex: string;
    commitmentHex: string;
    canonicalContextHex: string;
    aadHex: string;
  };
}

/** FORMAT.md §15 from the spec text: commitment = SHA-512(u32(1) ‖ DEK ‖ info ‖ messageId)[32..64). */
function checkCommitment(v: Suite3Vector, bytes: Buffer): void {
  const parts = decodeEnvelope(bytes);
  expect(parts.suite).toBe(3);
  const okm = createHash("sha512")
    .update(Buffer.of(0, 0, 0, 1))
    .update(DEK)
    .update(INFO, "ascii")
    .update(parts.messageId)
    .digest();
  expect(Buffer.from(parts.commitment).equals(okm.subarray(32, 64))).toBe(true);
  // the published intermediates: the layout is the value's bytes, and they follow from it
  const i = v.intermediate!;
  const field = (name: string) => v.layout!.find((f) => f.field === name)!;
  expect(Buffer.concat(v.layout!.map((f) => Buffer.from(f.hex, "hex"))).equals(bytes)).toBe(true);
  expect(i.dataKeyHex).toBe(DEK.toString("hex"));
  expect(i.kdf.hash).toBe("SHA-512");
  expect(createHash("sha512").update(Buffer.from(i.kdf.inputHex, "hex")).digest("hex")).toBe(
    i.okmHex,
  );
  expect(i.okmHex).toBe(okm.toString("hex"));
  expect(i.encryptionKeyHex + i.commitmentHex).toBe(i.okmHex);
  expect(i.commitmentHex).toBe(field("commitment").hex);
  expect(i.aadHex).toBe(
    `01${field("suite").hex}${field("flags").hex}${field("messageId").hex}${i.canonicalContextHex}`,
  );
}

/** suite3-*.json: AES-256-GCM with the one-step SHA-512 KDF (FORMAT.md §15). */
export const suite3 = defineFamily<Suite3Vector>({
  folder: "suite3",
  title: "suite 0x03 test vectors (one-step SHA-512 KDF)",
  files: /^suite3-(pos|neg)-.*\.json$/,
  parse: parseDecryptVector,
  tests(vectors) {
    it("cover the required cases", () => {
      expectCases(vectors, [
        "pos-01-basic",
        "stored-context",
        "padded",
        "suite-to-1",
        "flip-commitment",
        "flip-message-id",
        "hkdf-keys-labelled-3",
        "flip-tag",
        "wrong-context",
        "signed-reader",
        "suite-4",
      ]);
    });
    decryptEach(vectors, { dir: join(VECTORS_DIR, "suite3"), checkPositive: checkCommitment });
  },
});
