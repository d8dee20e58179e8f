import { createHash, hkdfSync } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type DecryptOptions,
  type EncryptionContext,
  Envelope,
  EnvelopeError,
  type KeyProvider,
  localAesProvider,
} from "@envelope/core";
import { localRsaProvider } from "@envelope/local-rsa";
import { describe, expect, it } from "vitest";

/** The JSON shape of test/vectors/*.json (see test/vectors/README.md). */
interface Vector {
  id: string;
  kind: "positive" | "negative";
  description: string;
  form: "binary" | "text";
  envelopeHex?: string;
  envelopeText?: string;
  envelopeFile?: string;
  envelopeSha256?: string;
  keys: {
    localRsa?: { keyRef: string; privateKeyPem: string }[];
    localAes?: { keyRef: string; keyHex: string }[];
  };
  decrypt: { context?: EncryptionContext };
  expected: {
    plaintextHex?: string;
    plaintextUtf8?: string;
    plaintextRule?: { repeatHex: string; length: number };
    plaintextSha256?: string;
    error?: string;
    errorClass?: string;
  };
  layout?: { field: string; offset: number; length: number }[];
  intermediate?: {
    dataKeyHex: string;
    hkdf: { saltHex: string; infoAscii: string; length: number };
    okmHex: string;
    commitmentHex: string;
    canonicalContextHex: string;
    aadHex: string;
  };
}

/**
 * Vectors whose expected outcome changed when the format gained suite 0x02 (signed mode,
 * docs/FORMAT.md §14). The files stay byte-for-byte as generated; the new outcome is
 * pinned here, with the reason, and test/vectors/README.md lists them.
 */
const SUPERSEDED: Readonly<Record<string, { error: string; errorClass: string }>> = {
  // A suite-1 value with its suite byte set to 2 now decodes as suite 2: the 96 bytes
  // after the commitment are read as signer key and signature, and the byte after them,
  // read as entryCount, is 52 (over the limit of 16).
  "neg-058-suite-2": { error: "ENVELOPE_BAD_FORMAT", errorClass: "FormatError" },
};

const DIR = fileURLToPath(new URL("./vectors/", import.meta.url));
const vectors: Vector[] = readdirSync(DIR)
  .filter((name) => /^(pos|neg)-.*\.json$/.test(name))
  .sort()
  .map((name) => JSON.parse(readFileSync(join(DIR, name), "utf8")) as Vector);

/** A client holding exactly the vector's keys, with no cache (every decrypt unwraps). */
function client(keys: Vector["keys"]): Envelope {
  const providers: KeyProvider[] = [];
  if (keys.localRsa)
    providers.push(
      localRsaProvider({ keys: keys.localRsa.map((k) => ({ pem: k.privateKeyPem })) }),
    );
  if (keys.localAes) providers.push(localAesProvider({ keys: keys.localAes.map((k) => k.keyHex) }));
  const [first, ...rest] = providers;
  return new Envelope({ encrypt: first!, decrypt: rest, cache: false });
}

function sealed(v: Vector): Buffer | string {
  if (v.envelopeText !== undefined) return v.envelopeText;
  if (v.envelopeHex !== undefined) return Buffer.from(v.envelopeHex, "hex");
  const text = readFileSync(join(DIR, v.envelopeFile!), "utf8");
  const bytes = Buffer.from(text.replace(/\s+/g, ""), "base64");
  expect(sha256(bytes)).toBe(v.envelopeSha256);
  return bytes;
}

function expectedPlaintext(v: Vector): Buffer {
  const { plaintextHex, plaintextRule, plaintextSha256 } = v.expected;
  if (plaintextHex !== undefined) return Buffer.from(plaintextHex, "hex");
  const unit = Buffer.from(plaintextRule!.repeatHex, "hex");
  const out = Buffer.alloc(plaintextRule!.length);
  for (let o = 0; o < out.length; o += unit.length) unit.copy(out, o);
  expect(sha256(out)).toBe(plaintextSha256);
  return out;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The intermediate values follow from the spec: HKDF output, commitment field, AAD. */
function checkIntermediate(v: Vector, bytes: Buffer): void {
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

describe("envelope format v1 test vectors", () => {
  it("cover the required cases", () => {
    const positive = vectors.filter((v) => v.kind === "positive");
    expect(positive.length).toBeGreaterThanOrEqual(10);
    expect(vectors.length - positive.length).toBeGreaterThanOrEqual(20);
  });

  it.each(vectors.map((v) => [v.id, v] as const))("%s", async (_id, v) => {
    const envelope = client(v.keys);
    const input = sealed(v);
    const options: DecryptOptions<"bytes"> =
      v.decrypt.context === undefined ? {} : { context: v.decrypt.context };

    if (v.kind === "positive") {
      const plaintext = await envelope.decrypt(input, options);
      const want = expectedPlaintext(v);
      if (want.length > 4096) expect(sha256(plaintext)).toBe(sha256(want));
      else expect(plaintext.toString("hex")).toBe(want.toString("hex"));
      if (v.expected.plaintextUtf8 !== undefined) {
        expect(await envelope.decrypt(input, { ...options, as: "text" as const })).toBe(
          v.expected.plaintextUtf8,
        );
      }
      const binary = typeof input === "string" ? Buffer.from(input.slice(4), "base64url") : input;
      checkIntermediate(v, binary);
      return;
    }

    const error: unknown = await envelope.decrypt(input, options).then(
      () => new Error("decrypt succeeded; the vector expects it to fail"),
      (e: unknown) => e,
    );
    const expected = SUPERSEDED[v.id] ?? v.expected;
    expect(EnvelopeError.isInstance(error), String(error)).toBe(true);
    expect((error as EnvelopeError).code).toBe(expected.error);
    expect((error as EnvelopeError).name).toBe(expected.errorClass);
  });
});
