import { createHash, createPublicKey, hkdfSync, verify } from "node:crypto";
import { join } from "node:path";
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

/** signed-*.json: suite 0x02, signed mode (FORMAT.md §14). */
interface SignedVector extends DecryptVector {
  keys: DecryptVector["keys"] & {
    ed25519: { role: string; publicKeyHex: string; publicKeyPem: string; privateKeyPem: string }[];
  };
  intermediate?: {
    dataKeyHex: string;
    okmHex: string;
    commitmentHex: string;
    canonicalContextHex: string;
    aadHex: string;
    signature: {
      domainAscii: string;
      bodySha256Hex: string;
      signedBytesHex: string;
      signerKeyHex: string;
      signatureHex: string;
    };
  };
}

const DIR = join(VECTORS_DIR, "signed");
const bytesOf = (v: SignedVector) => binaryOf(sealedInput(v, DIR));

/** FORMAT.md §14.2 from the layout alone: domain, header, signer key, context, body hash. */
function checkSignature(v: SignedVector, bytes: Buffer): void {
  const i = v.intermediate!;
  const at = (name: string) => {
    const f = v.layout!.find((x) => x.field === name)!;
    return bytes.subarray(f.offset, f.offset + f.length);
  };
  expect(at("signerKey").length).toBe(32);
  expect(at("signature").length).toBe(64);
  expect(v.layout!.find((f) => f.field === "signerKey")!.offset).toBe(67);
  expect(v.layout!.find((f) => f.field === "signature")!.offset).toBe(99);
  const canonical = Buffer.from(i.canonicalContextHex, "hex");
  const u16 = Buffer.alloc(2);
  u16.writeUInt16BE(canonical.length);
  const u32 = Buffer.alloc(4);
  u32.writeUInt32BE(at("ciphertext").length);
  const body = Buffer.concat([at("ciphertext"), at("tag")]);
  const signed = Buffer.concat([
    Buffer.from("envelope:v1:suite2:ed25519-signature", "ascii"),
    bytes.subarray(0, 3),
    at("messageId"),
    at("commitment"),
    at("signerKey"),
    u16,
    canonical,
    u32,
    createHash("sha256").update(body).digest(),
  ]);
  expect(signed.toString("hex")).toBe(i.signature.signedBytesHex);
  const writer = v.keys.ed25519.find((k) => k.role === "writer")!;
  expect(at("signerKey").toString("hex")).toBe(writer.publicKeyHex);
  expect(verify(null, signed, createPublicKey(writer.publicKeyPem), at("signature"))).toBe(true);
  // HKDF, commitment and AAD (suite byte 0x02) as in suite 0x01.
  const okm = Buffer.from(
    hkdfSync(
      "sha256",
      Buffer.from(i.dataKeyHex, "hex"),
      at("messageId"),
      "envelope:v1:suite1:key+commitment",
      64,
    ),
  );
  expect(okm.toString("hex")).toBe(i.okmHex);
  expect(at("commitment").toString("hex")).toBe(i.commitmentHex);
  const aad = Buffer.concat([bytes.subarray(0, 3), at("messageId"), canonical]);
  expect(aad[1]).toBe(2);
  expect(aad.toString("hex")).toBe(i.aadHex);
}

export const signed = defineFamily<SignedVector>({
  folder: "signed",
  title: "suite 0x02 (signed mode) test vectors",
  files: /^signed-(pos|neg)-.*\.json$/,
  parse: parseDecryptVector,
  tests(vectors) {
    it("cover the required cases", () => {
      expectCases(vectors, [
        "signed-pos-01-signed",
        "stored-context",
        "multiwrap",
        "rewrapped",
        "unsigned-pinned",
        "untrusted-signer",
        "flip-signature",
        "flip-signer-key",
        "signature-from-other-value",
        "truncated-signature",
        "trailing-byte",
      ]);
    });

    decryptEach(vectors, {
      dir: DIR,
      checkPositive: checkSignature,
    });

    it("rewrapped vector: bytes 0..163 and the body region equal those of signed-pos-01", () => {
      const a = bytesOf(vectors.find((v) => v.id === "signed-pos-01-signed")!);
      const b = bytesOf(vectors.find((v) => v.id.endsWith("signed-rewrapped"))!);
      expect(b.subarray(0, 163).equals(a.subarray(0, 163))).toBe(true);
      const region = 4 + 11 + 16;
      expect(b.subarray(b.length - region).equals(a.subarray(a.length - region))).toBe(true);
    });
  },
});
