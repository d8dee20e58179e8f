import { hkdfSync } from "node:crypto";
import { join } from "node:path";
import { expect, it } from "vitest";
import {
  type DecryptVector,
  decryptEach,
  defineFamily,
  parseDecryptVector,
  VECTORS_DIR,
} from "../harness.js";

/** pos-*.json / neg-*.json: suite 0x01 (FORMAT.md §1–§13). */
interface V1Vector extends DecryptVector {
  intermediate?: {
    dataKeyHex: string;
    hkdf: { saltHex: string; infoAscii: string; length: number };
    okmHex: string;
    commitmentHex: string;
    canonicalContextHex: string;
    aadHex: string;
  };
}

/** The intermediate values follow from the spec: HKDF output, commitment field, AAD. */
function checkIntermediate(v: V1Vector, bytes: Buffer): void {
  const i = v.intermediate!;
  const at = (name: string) => {
    const f = v.layout!.find((x) => x.field === name)!;
    return bytes.subarray(f.offset, f.offset + f.length);
  };
  const okm = Buffer.from(
    hkdfSync(
      "sha256",
      Buffer.from(i.dataKeyHex, "hex"),
      at("messageId"),
      Buffer.from(i.hkdf.infoAscii),
      64,
    ),
  );
  expect(okm.toString("hex")).toBe(i.okmHex);
  expect(at("commitment").toString("hex")).toBe(i.commitmentHex);
  expect(okm.subarray(32).toString("hex")).toBe(i.commitmentHex);
  const aad = Buffer.concat([
    bytes.subarray(0, 3),
    at("messageId"),
    Buffer.from(i.canonicalContextHex, "hex"),
  ]);
  expect(aad.toString("hex")).toBe(i.aadHex);
}

export const v1 = defineFamily<V1Vector>({
  folder: "v1",
  title: "envelope format v1 test vectors",
  files: /^(pos|neg)-.*\.json$/,
  parse: parseDecryptVector,
  tests(vectors) {
    it("cover the required cases", () => {
      const positive = vectors.filter((v) => v.kind === "positive");
      expect(positive.length).toBeGreaterThanOrEqual(10);
      expect(vectors.length - positive.length).toBeGreaterThanOrEqual(20);
    });
    decryptEach(vectors, {
      dir: join(VECTORS_DIR, "v1"),
      checkPositive: checkIntermediate,
    });
  },
});
