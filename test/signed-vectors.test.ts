import { createHash, createPublicKey, hkdfSync, verify } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type DecryptOptions,
  type EncryptionContext,
  Envelope,
  EnvelopeError,
  localAesProvider,
} from "@envelope/core";
import { describe, expect, it } from "vitest";

/** The JSON shape of test/vectors/signed-*.json (see test/vectors/README.md). */
interface SignedVector {
  id: string;
  kind: "positive" | "negative";
  form: "binary" | "text";
  envelopeHex?: string;
  envelopeText?: string;
  keys: {
    localAes: { keyRef: string; keyHex: string }[];
    ed25519: { role: string; publicKeyHex: string; publicKeyPem: string; privateKeyPem: string }[];
  };
  decrypt: { context?: EncryptionContext; trustedSigners?: string[] };
  expected: { plaintextHex?: string; error?: string; errorClass?: string };
  layout?: { field: string; offset: number; length: number; hex: string }[];
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

const DIR = fileURLToPath(new URL("./vectors/", import.meta.url));
const vectors: SignedVector[] = readdirSync(DIR)
  .filter((name) => /^signed-(pos|neg)-.*\.json$/.test(name))
  .sort()
  .map((name) => JSON.parse(readFileSync(join(DIR, name), "utf8")) as SignedVector);

function bytesOf(v: SignedVector): Buffer {
  return v.envelopeText !== undefined
    ? Buffer.from(v.envelopeText.slice(4), "base64url")
    : Buffer.from(v.envelopeHex!, "hex");
}

/** FORMAT.md §14.2 from the layout alone: domain, header, signer key, context, body hash. */
function checkSignature(v: SignedVector): void {
  const bytes = bytesOf(v);
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

describe("suite 0x02 (signed mode) test vectors", () => {
  it("cover the required cases", () => {
    const ids = vectors.map((v) => v.id).join(" ");
    for (const needed of [
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
      checkSignature(v);
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

  it("rewrapped vector: bytes 0..163 and the body region equal those of signed-pos-01", () => {
    const a = bytesOf(vectors.find((v) => v.id === "signed-pos-01-signed")!);
    const b = bytesOf(vectors.find((v) => v.id.endsWith("signed-rewrapped"))!);
    expect(b.subarray(0, 163).equals(a.subarray(0, 163))).toBe(true);
    const region = 4 + 11 + 16;
    expect(b.subarray(b.length - region).equals(a.subarray(a.length - region))).toBe(true);
  });
});
