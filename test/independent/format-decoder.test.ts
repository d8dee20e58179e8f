// Independent check of docs/FORMAT.md: the decoder in ./decoder.ts was written from the spec
// alone (node:crypto only, no code from packages/*/src). This file runs it against every
// per-value vector under packages/core/test/vectors/ (families v1, signed, padded, suite3,
// plus the one FORMAT.md case of the stream family: a key envelope given to decrypt), and
// against values sealed by the library through its public API only.
//
// Run: pnpm exec vitest run test/independent/format-decoder.test.ts
//
// Spec points where the spec, the vectors and the library do not say the same thing are
// listed in test/independent/FINDINGS.md; a case that fails because of one is marked
// `it.fails` with the finding named.
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Envelope, localAesProvider } from "@envelope/core";
import { localRsaProvider } from "@envelope/local-rsa";
import { describe, expect, it } from "vitest";
import {
  buildAad,
  decrypt,
  deriveOkm,
  encodeContext,
  localAes,
  localAesKeyRef,
  localRsa,
  localRsaKeyRef,
  type Provider,
  parseBinary,
  SpecError,
  signedBytes,
  textToBytes,
} from "./decoder.js";

const VECTORS = fileURLToPath(new URL("../../packages/core/test/vectors/", import.meta.url));
const FAMILIES = ["v1", "signed", "padded", "suite3"] as const;

interface Vector {
  id: string;
  kind: "positive" | "negative";
  form: "binary" | "text";
  envelopeHex?: string;
  envelopeText?: string;
  envelopeFile?: string;
  envelopeSha256?: string;
  keys: {
    localAes?: { keyRef: string; keyHex: string }[];
    localRsa?: { keyRef: string; privateKeyPem: string }[];
  };
  decrypt: { context?: Record<string, string>; trustedSigners?: string[] };
  expected: {
    plaintextHex?: string;
    plaintextUtf8?: string;
    plaintextRule?: { repeatHex: string; length: number };
    plaintextSha256?: string;
    error?: string;
    errorClass?: string;
  };
  supersededExpected?: { error: string };
  intermediate?: {
    commitmentHex?: string;
    aadHex?: string;
    canonicalContextHex?: string;
    signature?: { signedBytesHex: string };
  };
}

function load(family: string): { dir: string; vectors: Vector[] } {
  const dir = join(VECTORS, family);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort();
  return {
    dir,
    vectors: files.map((f) => {
      const v = JSON.parse(readFileSync(join(dir, f), "utf8")) as Vector;
      expect(`${v.id}.json`).toBe(f);
      return v;
    }),
  };
}

function sealedOf(dir: string, v: Vector): Buffer | string {
  if (v.envelopeText !== undefined) return v.envelopeText;
  if (v.envelopeHex !== undefined) return Buffer.from(v.envelopeHex, "hex");
  if (v.envelopeFile !== undefined) {
    const b64 = readFileSync(join(dir, v.envelopeFile), "utf8").replace(/\s+/g, "");
    const bytes = Buffer.from(b64, "base64");
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(v.envelopeSha256);
    return bytes;
  }
  throw new Error(`${v.id}: no envelope`);
}

// The README's harness: all RSA keys in one local-rsa provider, all AES keys in one local-aes one.
function providersOf(v: Vector): Provider[] {
  const out: Provider[] = [];
  if (v.keys.localRsa) {
    for (const k of v.keys.localRsa)
      expect(localRsaKeyRef(createPrivateKey(k.privateKeyPem))).toBe(k.keyRef);
    out.push(localRsa(v.keys.localRsa.map((k) => k.privateKeyPem)));
  }
  if (v.keys.localAes) {
    const keys = v.keys.localAes.map((k) => Buffer.from(k.keyHex, "hex"));
    // keyRef in the vector is informative (README): we compute it (§10.1) and check it agrees.
    for (const [i, k] of keys.entries()) expect(localAesKeyRef(k)).toBe(v.keys.localAes[i]?.keyRef);
    out.push(localAes(keys));
  }
  return out;
}

function expectedPlaintext(v: Vector): Buffer {
  const e = v.expected;
  if (e.plaintextHex !== undefined) return Buffer.from(e.plaintextHex, "hex");
  if (e.plaintextRule) {
    const unit = Buffer.from(e.plaintextRule.repeatHex, "hex");
    const out = Buffer.alloc(e.plaintextRule.length);
    for (let i = 0; i < out.length; i += unit.length) unit.copy(out, i);
    expect(createHash("sha256").update(out).digest("hex")).toBe(e.plaintextSha256);
    return out;
  }
  throw new Error(`${v.id}: no expected plaintext`);
}

function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof SpecError) return e.code;
    throw e;
  }
  return "(opened)";
}

/** §8 "Errors" table: the class of each code a decoder can reach. */
const CLASS_OF: Record<string, string> = {
  ENVELOPE_BAD_FORMAT: "FormatError",
  ENVELOPE_UNSUPPORTED_VERSION: "FormatError",
  ENVELOPE_UNSUPPORTED_SUITE: "FormatError",
  ENVELOPE_LIMIT_EXCEEDED: "FormatError",
  ENVELOPE_WRONG_PURPOSE: "DecryptionError",
  ENVELOPE_BAD_PADDING: "DecryptionError",
  ENVELOPE_CONTEXT_MISMATCH: "DecryptionError",
  ENVELOPE_NO_MATCHING_KEY: "DecryptionError",
  ENVELOPE_COMMITMENT_MISMATCH: "DecryptionError",
  ENVELOPE_DECRYPT_FAILED: "DecryptionError",
  ENVELOPE_UNSIGNED: "DecryptionError",
  ENVELOPE_UNTRUSTED_SIGNER: "DecryptionError",
  ENVELOPE_BAD_SIGNATURE: "DecryptionError",
  ENVELOPE_UNWRAP_FAILED: "ProviderError",
  ENVELOPE_PROVIDER_CONTRACT: "ProviderError",
  ENVELOPE_BAD_INPUT: "ConfigError",
};
const superseded: string[] = [];

/** Vectors expected to fail with this decoder because of a spec point (see FINDINGS.md). */
const KNOWN_SPEC_GAPS: Record<string, string> = {};

const counts = { positive: 0, negative: 0 };

for (const family of FAMILIES) {
  describe(`independent decoder: ${family} vectors`, () => {
    const { dir, vectors } = load(family);
    it("the family folder holds vectors", () => {
      expect(vectors.length).toBeGreaterThan(0);
    });
    for (const v of vectors) {
      const run = KNOWN_SPEC_GAPS[v.id] ? it.fails : it;
      const opts = () => ({
        providers: providersOf(v),
        context: v.decrypt.context,
        trustedSigners: v.decrypt.trustedSigners?.map((h) => Buffer.from(h, "hex")),
      });
      if (v.kind === "positive") {
        counts.positive++;
        run(`${v.id} opens to the expected plaintext`, () => {
          const sealed = sealedOf(dir, v);
          const opened = decrypt(sealed, opts());
          // boolean comparison: never print plaintexts
          expect(opened.plaintext.equals(expectedPlaintext(v))).toBe(true);
          if (v.expected.plaintextUtf8 !== undefined) {
            expect(opened.plaintext.toString("utf8") === v.expected.plaintextUtf8).toBe(true);
          }
          // our own intermediates agree with the vector's (public test values)
          const p = opened.parsed;
          const inter = v.intermediate;
          if (inter?.commitmentHex) expect(p.commitment.toString("hex")).toBe(inter.commitmentHex);
          const canonical = p.storedContext ?? encodeContext(v.decrypt.context);
          if (inter?.canonicalContextHex) {
            expect(canonical.toString("hex")).toBe(inter.canonicalContextHex);
          }
          if (inter?.aadHex) expect(buildAad(p, canonical).toString("hex")).toBe(inter.aadHex);
          if (inter?.signature) {
            expect(signedBytes(p, canonical).toString("hex")).toBe(inter.signature.signedBytesHex);
          }
        });
      } else {
        counts.negative++;
        run(`${v.id} is refused with ${v.expected.error}`, () => {
          const sealed = sealedOf(dir, v);
          expect(errorCode(() => decrypt(sealed, opts()))).toBe(v.expected.error);
          // the vector's class is the one the §8 table gives for its code
          expect(v.expected.errorClass).toBe(CLASS_OF[v.expected.error as string]);
          if (v.supersededExpected) superseded.push(v.id);
        });
      }
    }
  });
}

describe("independent decoder: stream family, the FORMAT.md case", () => {
  it("streaming-purpose keyEnvelopeViaDecrypt: a stream key envelope given to decrypt", () => {
    const j = JSON.parse(readFileSync(join(VECTORS, "stream/streaming-purpose.json"), "utf8"));
    const k = j.keyEnvelopeViaDecrypt as {
      envelope: string;
      context: Record<string, string>;
      code: string;
    };
    const providers = [localAes([Buffer.from(j.localAesKeyHex as string, "hex")])];
    const code = errorCode(() =>
      decrypt(Buffer.from(k.envelope, "hex"), { providers, context: k.context }),
    );
    expect(code).toBe(k.code);
  });
});

describe("independent decoder: spec statements not pinned by a vector", () => {
  it("§12 worked example: okm and DEK-derived values", () => {
    const dek = Buffer.from(
      "d453c8b1aee88a69d6da7e1c74cb6adde8fa0f0e0f3fce4ea14514e16aa5515a",
      "hex",
    );
    const mid = Buffer.from(
      "301464844fea3dc0f7ef3be95adfadb95f95d1c09b0794c6b44e4b0c570bc094",
      "hex",
    );
    expect(deriveOkm(1, dek, mid).toString("hex")).toBe(
      "b1ca7ff3b81bed898305137dafbf44a0cfde6f5c2f9c23ddcd2a63e17a0c2f9d" +
        "9546a6436a05760f86f63077cec439e57218669fd88f3995168dac005892669d",
    );
    const key = Buffer.from(
      "15f3f079dd05f53fe8052687037e82dcad2d23e7af8776b9eda76408bcf14a7a",
      "hex",
    );
    expect(localAesKeyRef(key)).toBe("7d039967895fc256");
  });

  it("§15.2 worked numbers (suite3-pos-01)", () => {
    const dek = Buffer.from(
      "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0",
      "hex",
    );
    const mid = Buffer.from(
      "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
      "hex",
    );
    const okm = deriveOkm(3, dek, mid);
    expect(okm.subarray(0, 32).toString("hex")).toBe(
      "c4213f396034b9b025ef617d13ba4d2afca09c64f1c04b7df0fb6527a1b9bce7",
    );
    expect(okm.subarray(32).toString("hex")).toBe(
      "1cf059393eb0e2a14e2b06d8d546ae5385913192533544cc71a711bfb28ec565",
    );
    // ... and equal to the vector's commitment field (offset 35), as §15.2 says
    const v = load("suite3").vectors.find((x) => x.id === "suite3-pos-01-basic") as Vector;
    const p = parseBinary(Buffer.from(v.envelopeHex as string, "hex"));
    expect(p.messageId.equals(mid)).toBe(true);
    expect(p.commitment.equals(okm.subarray(32))).toBe(true);
  });

  it("§4 example context and bytewise (not UTF-16) key order", () => {
    expect(encodeContext({ table: "users", column: "email", id: "42" }).toString("hex")).toBe(
      "00030006636f6c756d6e0005656d61696c000269640002343200057461626c6500057573657273",
    );
    const enc = encodeContext({ "\u{1F600}": "a", "\uFF61": "b" });
    expect(enc.subarray(4, 7).toString("hex")).toBe("efbda1");
  });

  it("§9 text form: prefix first, then alphabet, length mod 4, canonical form", () => {
    expect(errorCode(() => textToBytes("EV1:AAAA"))).toBe("ENVELOPE_BAD_FORMAT");
    expect(errorCode(() => textToBytes("ev1:AAAAA"))).toBe("ENVELOPE_BAD_FORMAT");
    expect(errorCode(() => textToBytes("ev1:AB"))).toBe("ENVELOPE_BAD_FORMAT"); // unused bits set
    expect(textToBytes("ev1:AA").equals(Buffer.from([0]))).toBe(true);
    // The 1 432 005 295-character limit cannot be exercised: V8 strings stop near 2^29 (§13).
  });

  it("§2.1 step 3: flags 0x06 and 0x07 are BAD_FORMAT before the purpose check", () => {
    const { dir, vectors } = load("v1");
    const base = sealedOf(dir, vectors.find((v) => v.id === "pos-06-context-aes") as Vector);
    for (const flags of [0x02, 0x06, 0x07]) {
      const b = Buffer.from(base as Buffer);
      b[2] = flags;
      const expected = flags === 0x02 ? "ENVELOPE_WRONG_PURPOSE" : "ENVELOPE_BAD_FORMAT";
      expect(errorCode(() => decrypt(b, { providers: [] }))).toBe(expected);
    }
    expect(parseBinary(base as Buffer).entries).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------
// Cross-check with the library, public API only.
describe("independent decoder opens what @envelope/core seals", () => {
  const aesKey = randomBytes(32);
  const aesKey2 = randomBytes(32);
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const rsaPem = rsa.privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  const ctx = { table: "users", column: "email", id: "42", "\u{1F600}": "x", "\uFF61": "" };
  const ours = [localAes([aesKey, aesKey2]), localRsa([rsaPem])];
  const plaintexts = [
    Buffer.alloc(0),
    Buffer.from([0x2a]),
    Buffer.from("alice@example.com"),
    Buffer.from([0x61, 0x80, 0x00]), // ends like padding
    randomBytes(31),
    randomBytes(32),
    randomBytes(1000),
  ];

  // §2.3: paddedLength = bucket * ceil(max(n + 1, min) / bucket); no padding without a rule
  const paddedLength = (n: number, pad: unknown): number => {
    if (pad === undefined) return n;
    const rule =
      pad === "pii"
        ? { bucket: 32, min: 64 }
        : typeof pad === "number"
          ? { bucket: pad, min: 0 }
          : (pad as { bucket: number; min: number });
    return rule.bucket * Math.ceil(Math.max(n + 1, rule.min) / rule.bucket);
  };

  type Case = {
    name: string;
    options: Record<string, unknown>;
    encrypt?: () => unknown;
    suite: number;
    flags: number;
  };
  const cases: Case[] = [];
  for (const suite of [1, 3] as const) {
    for (const storeContext of [false, true]) {
      for (const pad of [undefined, 32, "pii", { bucket: 16, min: 0 }] as const) {
        const flags = (storeContext ? 0x01 : 0) | (pad !== undefined ? 0x04 : 0);
        cases.push({
          name: `suite ${suite}, storeContext ${storeContext}, pad ${JSON.stringify(pad)}`,
          options: { suite, storeContext, ...(pad !== undefined ? { pad } : {}) },
          suite,
          flags,
        });
      }
    }
  }

  for (const c of cases) {
    it(`local-aes: ${c.name}`, async () => {
      const env = new Envelope({
        encrypt: localAesProvider({ keys: [aesKey] }),
        ...c.options,
      } as ConstructorParameters<typeof Envelope>[0]);
      for (const pt of plaintexts) {
        for (const context of [undefined, {}, ctx]) {
          const sealed = await env.encrypt(pt, context === undefined ? {} : { context });
          const p = parseBinary(sealed);
          expect([p.suite, p.flags]).toEqual([c.suite, c.flags]);
          expect(p.ciphertextLength).toBe(paddedLength(pt.length, c.options.pad));
          const opened = decrypt(sealed, {
            providers: ours,
            context: c.flags & 1 ? undefined : context,
          });
          expect(opened.plaintext.equals(pt)).toBe(true);
          if (c.flags & 1) {
            expect(opened.context).toEqual(context ?? {});
            // and given the same context explicitly, it must match canonically
            expect(
              decrypt(sealed, { providers: ours, context: context ?? {} }).plaintext.equals(pt),
            ).toBe(true);
          }
          // text form
          const text = await env.encrypt(pt, { ...(context ? { context } : {}), output: "text" });
          expect(typeof text).toBe("string");
          const t = decrypt(text as string, {
            providers: ours,
            context: c.flags & 1 ? undefined : context,
          });
          expect(t.plaintext.equals(pt)).toBe(true);
        }
      }
    });
  }

  it("multi-wrap local-rsa + local-aes, and a local-rsa only reader", async () => {
    const env = new Envelope({
      encrypt: [localRsaProvider({ keys: { pem: rsaPem } }), localAesProvider({ keys: [aesKey2] })],
    } as ConstructorParameters<typeof Envelope>[0]);
    for (const pt of plaintexts) {
      const sealed = await env.encrypt(pt, { context: ctx });
      const p = parseBinary(sealed);
      expect(p.entries.map((e) => e.providerId)).toEqual(["local-rsa", "local-aes"]);
      expect(
        decrypt(sealed, { providers: [localRsa([rsaPem])], context: ctx }).plaintext.equals(pt),
      ).toBe(true);
      expect(
        decrypt(sealed, { providers: [localAes([aesKey2])], context: ctx }).plaintext.equals(pt),
      ).toBe(true);
      expect(
        errorCode(() => decrypt(sealed, { providers: [localAes([aesKey])], context: ctx })),
      ).toBe("ENVELOPE_NO_MATCHING_KEY");
    }
  });

  it("§11 rewrap: header and body region byte-identical, the new entries open with the spec decoder", async () => {
    const rsaProvider = localRsaProvider({ keys: { pem: rsaPem } });
    for (const options of [{}, { storeContext: true, pad: 32 }, { suite: 3 }]) {
      const env = new Envelope({
        encrypt: localAesProvider({ keys: [aesKey] }),
        decrypt: [rsaProvider],
        ...options,
      } as ConstructorParameters<typeof Envelope>[0]);
      const pt = randomBytes(40);
      const sealed = await env.encrypt(pt, { context: ctx });
      const before = parseBinary(sealed);
      for (const keep of [false, true]) {
        const out = (await env.rewrap(sealed, { to: rsaProvider, context: ctx, keep })) as Buffer;
        const after = parseBinary(out);
        expect(out.subarray(0, 67).equals(sealed.subarray(0, 67))).toBe(true);
        const bodyLen = 4 + before.ciphertextLength + 16;
        expect(
          out.subarray(out.length - bodyLen).equals(sealed.subarray(sealed.length - bodyLen)),
        ).toBe(true);
        expect(after.storedContext?.equals(before.storedContext as Buffer) ?? true).toBe(true);
        // §11 order: the targets' entries first, then (keep) the others in their order
        expect(after.entries.map((e) => e.providerId)).toEqual(
          keep ? ["local-rsa", "local-aes"] : ["local-rsa"],
        );
        const opened = decrypt(out, {
          providers: [localRsa([rsaPem])],
          context: before.storedContext ? undefined : ctx,
        });
        expect(opened.plaintext.equals(pt)).toBe(true);
      }
    }
  });

  it("§5.4 data-key reuse and encryptWithDataKey: one message id per value, each opens", async () => {
    const env = new Envelope({
      encrypt: localAesProvider({ keys: [aesKey] }),
      dataKeyReuse: { maxMessages: 10 },
    } as ConstructorParameters<typeof Envelope>[0]);
    const a = await env.encrypt(Buffer.from("one"));
    const b = await env.encrypt(Buffer.from("two"));
    const [pa, pb] = [parseBinary(a), parseBinary(b)];
    expect(pa.messageId.equals(pb.messageId)).toBe(false);
    expect(decrypt(a, { providers: ours }).plaintext.equals(Buffer.from("one"))).toBe(true);
    expect(decrypt(b, { providers: ours }).plaintext.equals(Buffer.from("two"))).toBe(true);
    const materials = await env.generateDataKey({ context: ctx });
    const c = (await env.encryptWithDataKey(materials, Buffer.from("three"), {
      context: ctx,
    })) as Buffer;
    const d = (await env.encryptWithDataKey(materials, Buffer.from("four"), {
      context: ctx,
    })) as Buffer;
    expect(parseBinary(c).messageId.equals(parseBinary(d).messageId)).toBe(false);
    expect(
      parseBinary(c).entries[0]?.wrapped.equals(parseBinary(d).entries[0]?.wrapped as Buffer),
    ).toBe(true);
    expect(
      decrypt(c, { providers: ours, context: ctx }).plaintext.equals(Buffer.from("three")),
    ).toBe(true);
    expect(
      decrypt(d, { providers: ours, context: ctx }).plaintext.equals(Buffer.from("four")),
    ).toBe(true);
  });

  it("signed (suite 0x02) values, padded and with stored context", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const raw = Buffer.from(publicKey.export({ format: "der", type: "spki" })).subarray(12);
    const env = new Envelope({
      encrypt: localAesProvider({ keys: [aesKey] }),
      signing: { key: privateKey },
      storeContext: true,
      pad: 32,
    } as ConstructorParameters<typeof Envelope>[0]);
    for (const pt of plaintexts) {
      const sealed = await env.encrypt(pt, { context: ctx });
      const p = parseBinary(sealed);
      expect([p.suite, p.flags]).toEqual([2, 0x05]);
      expect(p.signerKey?.equals(raw)).toBe(true);
      const opened = decrypt(sealed, { providers: ours, trustedSigners: [raw] });
      expect(opened.plaintext.equals(pt)).toBe(true);
      expect(
        errorCode(() => decrypt(sealed, { providers: ours, trustedSigners: [randomBytes(32)] })),
      ).toBe("ENVELOPE_UNTRUSTED_SIGNER");
    }
  });
});

// ---------------------------------------------------------------------------------------
// Spec statements no vector pins, checked on both sides (spec decoder and library).
describe("spec statements not pinned by a vector, against the library", () => {
  const libCode = async (f: () => unknown) => {
    try {
      await f();
      return "(opened)";
    } catch (e) {
      return (e as { code?: string }).code ?? "(no code)";
    }
  };
  const ks = [randomBytes(32), randomBytes(32), randomBytes(32), randomBytes(32)];
  type Options = ConstructorParameters<typeof Envelope>[0];

  it("§7 step 3: a value with more candidate entries than the cap (3) is LIMIT_EXCEEDED before any unwrap", async () => {
    const writer = new Envelope({
      encrypt: ks.map((k) => localAesProvider({ keys: [k] })),
    } as Options);
    const sealed = await writer.encrypt(Buffer.from("x"));
    expect(parseBinary(sealed).entries).toHaveLength(4);
    expect(errorCode(() => decrypt(sealed, { providers: [localAes(ks)] }))).toBe(
      "ENVELOPE_LIMIT_EXCEEDED",
    );
    expect(
      decrypt(sealed, { providers: [localAes(ks)], maxEntriesTried: 4 }).plaintext.length,
    ).toBe(1);
    // the library: one encrypt provider (cap 3) refuses, maxEntriesTried 4 opens
    const oneProvider = new Envelope({
      encrypt: localAesProvider({ keys: [ks[0] as Buffer] }),
      decrypt: [localAesProvider({ keys: ks.slice(1) })],
      cache: false,
    } as Options);
    expect(await libCode(() => oneProvider.decrypt(sealed))).toBe("ENVELOPE_LIMIT_EXCEEDED");
    // "the number of keys the reader encrypts with (its encrypt providers)": one provider
    // holding four keys counts as one (FINDINGS.md F3), so the cap stays 3
    const fourKeysOneProvider = new Envelope({
      encrypt: localAesProvider({ keys: ks }),
      cache: false,
    } as Options);
    expect(await libCode(() => fourKeysOneProvider.decrypt(sealed))).toBe(
      "ENVELOPE_LIMIT_EXCEEDED",
    );
    const raised = new Envelope({
      encrypt: localAesProvider({ keys: ks }),
      cache: false,
      maxEntriesTried: 4,
    } as Options);
    expect(await libCode(() => raised.decrypt(sealed))).toBe("(opened)");
  });

  it("§13: a bad supplied context is BAD_INPUT, after the decoder's own errors", async () => {
    const env = new Envelope({
      encrypt: localAesProvider({ keys: [ks[0] as Buffer] }),
      cache: false,
    } as Options);
    const sealed = await env.encrypt(Buffer.from("x"));
    for (const bad of [{ a: 1 }, null, [], new Map([["a", "b"]])] as unknown as Record<
      string,
      string
    >[]) {
      expect(errorCode(() => decrypt(sealed, { providers: [localAes(ks)], context: bad }))).toBe(
        "ENVELOPE_BAD_INPUT",
      );
      expect(await libCode(() => env.decrypt(sealed, { context: bad }))).toBe("ENVELOPE_BAD_INPUT");
      const garbage = Buffer.from([1, 1, 0x80]);
      expect(errorCode(() => decrypt(garbage, { providers: [localAes(ks)], context: bad }))).toBe(
        "ENVELOPE_BAD_FORMAT",
      );
      expect(await libCode(() => env.decrypt(garbage, { context: bad }))).toBe(
        "ENVELOPE_BAD_FORMAT",
      );
    }
  });

  it("§15.1: a signing writer configured with suite 3 writes suite 0x02", async () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const env = new Envelope({
      encrypt: localAesProvider({ keys: [ks[0] as Buffer] }),
      suite: 3,
      signing: { key: privateKey },
    } as Options);
    const sealed = await env.encrypt(Buffer.from("x"));
    expect(parseBinary(sealed).suite).toBe(2);
    expect(decrypt(sealed, { providers: [localAes(ks)] }).plaintext.equals(Buffer.from("x"))).toBe(
      true,
    );
  });

  it("§14.5.1: a small-order signerKey is refused by an unpinned reader on every runtime, and cannot be pinned", async () => {
    // signed-pos-05 with signerKey = the identity point (01 00…00) and signature R = identity,
    // S = 0: [0]B − [k]A = identity = R for every message, so the cofactorless equation
    // holds (OpenSSL 3.0 accepted it); §14.5.1 refuses the key first. See FINDINGS.md F2.
    const dir = join(VECTORS, "signed");
    const v = load("signed").vectors.find(
      (x) => x.id === "signed-pos-05-signed-unpinned-reader",
    ) as Vector;
    const b = Buffer.from(sealedOf(dir, v) as Buffer);
    const identity = Buffer.alloc(32);
    identity[0] = 1;
    identity.copy(b, 67);
    identity.copy(b, 99);
    b.fill(0, 131, 163);
    const keys = (v.keys.localAes ?? []).map((k) => Buffer.from(k.keyHex, "hex"));
    expect(
      errorCode(() => decrypt(b, { providers: [localAes(keys)], context: v.decrypt.context })),
    ).toBe("ENVELOPE_BAD_SIGNATURE");
    const env = new Envelope({ encrypt: localAesProvider({ keys }), cache: false } as Options);
    expect(await libCode(() => env.decrypt(b, { context: v.decrypt.context }))).toBe(
      "ENVELOPE_BAD_SIGNATURE",
    );
    // Every listed key, with either sign bit, and each non-canonical y (p … 2^255 − 1).
    const weak = [
      identity,
      Buffer.from("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", "hex"),
      Buffer.from(`ec${"ff".repeat(31)}`, "hex"),
      ...Array.from({ length: 19 }, (_, i) => {
        const y = Buffer.from(`ed${"ff".repeat(30)}7f`, "hex");
        y[0] = 0xed + i;
        return y;
      }),
    ];
    for (const key of weak) {
      let code = "(accepted)";
      try {
        new Envelope({
          encrypt: localAesProvider({ keys }),
          trustedSigners: [key],
        } as Options);
      } catch (error) {
        code = (error as { code?: string }).code ?? "(untyped)";
      }
      expect(code, key.toString("hex")).toBe("ENVELOPE_BAD_CONFIG");
    }
    expect(
      errorCode(() =>
        decrypt(b, {
          providers: [localAes(keys)],
          context: v.decrypt.context,
          trustedSigners: [randomBytes(32)],
        }),
      ),
    ).toBe("ENVELOPE_UNTRUSTED_SIGNER");
  });
});

describe("vector counts", () => {
  it("counts every per-value vector", () => {
    expect(counts.positive).toBeGreaterThan(0);
    expect(counts.negative).toBeGreaterThan(0);
    // §13: exactly three vectors keep a superseded expectation
    expect(superseded.sort()).toEqual([
      "neg-020-flip-suite",
      "neg-058-suite-2",
      "signed-neg-021-suite-3",
    ]);
  });
});
