/**
 * Generates the suite 0x03 vectors (docs/FORMAT.md §15), `suite3-*.json` beside this file.
 * Values are sealed from the spec alone (node:crypto primitives, no @envelope/core code):
 * AES-KW entry, one-step SHA-512 KDF, AAD, AES-256-GCM with the zero nonce.
 * `vectors.test.ts` (family `suite3/family.ts`) opens them with @envelope/core.
 *
 *   pnpm exec tsx packages/core/test/vectors/suite3/generate-suite3.ts
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const DIR = dirname(fileURLToPath(import.meta.url));
// Fixed inputs, so the vectors are reproducible byte for byte.
const KEK = Buffer.from("15f3f079dd05f53fe8052687037e82dcad2d23e7af8776b9eda76408bcf14a7a", "hex");
const DEK = Buffer.from("0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0", "hex");
const MESSAGE_ID = Buffer.from(
  "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
  "hex",
);
const INFO3 = "envelope:v1:suite3:key+commitment";
const CONTEXT = { table: "users", column: "email", id: "42" };
const SIGNER = "9c8d892d5a515118d84c71595c7ff094f415a1c78ef6ac71ff1bdab7664f49fc";

const keyRef = createHash("sha256")
  .update("envelope:local-aes:fingerprint:")
  .update(KEK)
  .digest("hex")
  .slice(0, 16);

/** §15.2: SHA-512(u32(1) || DEK || info || messageId). */
function okm3(dek: Buffer, id: Buffer): Buffer {
  const counter = Buffer.alloc(4);
  counter.writeUInt32BE(1);
  return createHash("sha512")
    .update(Buffer.concat([counter, dek, Buffer.from(INFO3, "ascii"), id]))
    .digest();
}

/** §4: u16 count, then sorted pairs of u16-length-prefixed UTF-8 key and value. */
function canonical(context: Record<string, string>): Buffer {
  const keys = Object.keys(context).sort();
  const parts = [u16(keys.length)];
  for (const k of keys) {
    for (const s of [k, context[k]!]) {
      const b = Buffer.from(s, "utf8");
      parts.push(u16(b.length), b);
    }
  }
  return Buffer.concat(parts);
}
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number) => Buffer.from([n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);

interface SealOptions {
  plaintext: Buffer;
  store?: boolean;
  pad?: number;
  /** Key and commitment from another derivation (negative vectors). */
  okm?: Buffer;
}
function seal({ plaintext, store, pad, okm }: SealOptions): Buffer {
  const kw = createCipheriv("id-aes256-wrap", KEK, Buffer.from("A6A6A6A6A6A6A6A6", "hex"));
  const wrapped = Buffer.concat([kw.update(DEK), kw.final()]);
  const keys = okm ?? okm3(DEK, MESSAGE_ID);
  const ctx = canonical(CONTEXT);
  const flags = (store ? 0x01 : 0) | (pad ? 0x04 : 0);
  let gcmPlain = plaintext;
  if (pad) {
    const tail = Buffer.alloc(pad - plaintext.length);
    tail[0] = 0x80;
    gcmPlain = Buffer.concat([plaintext, tail]);
  }
  const aad = Buffer.concat([Buffer.from([0x01, 0x03, flags]), MESSAGE_ID, ctx]);
  const gcm = createCipheriv("aes-256-gcm", keys.subarray(0, 32), Buffer.alloc(12));
  gcm.setAAD(aad);
  const body = Buffer.concat([gcm.update(gcmPlain), gcm.final(), gcm.getAuthTag()]);
  const id = Buffer.from("local-aes", "ascii");
  const ref = Buffer.from(keyRef, "ascii");
  return Buffer.concat([
    Buffer.from([0x01, 0x03, flags]),
    MESSAGE_ID,
    keys.subarray(32, 64),
    Buffer.from([1, id.length]),
    id,
    u16(ref.length),
    ref,
    u16(wrapped.length),
    wrapped,
    ...(store ? [u16(ctx.length), ctx] : []),
    u32(gcmPlain.length),
    body,
  ]);
}

/** Every field of a suite 0x03 value in order (FORMAT.md §2; one entry), with its bytes. */
function layoutOf(bytes: Buffer): { field: string; offset: number; length: number; hex: string }[] {
  const out: { field: string; offset: number; length: number; hex: string }[] = [];
  let at = 0;
  const take = (field: string, length: number) => {
    out.push({ field, offset: at, length, hex: bytes.subarray(at, at + length).toString("hex") });
    at += length;
    return bytes.subarray(at - length, at);
  };
  take("version", 1);
  take("suite", 1);
  const flags = take("flags", 1)[0]!;
  take("messageId", 32);
  take("commitment", 32);
  const count = take("entryCount", 1)[0]!;
  for (let e = 0; e < count; e++) {
    take(`entries[${e}].providerId`, take(`entries[${e}].providerIdLength`, 1)[0]!);
    take(`entries[${e}].keyRef`, take(`entries[${e}].keyRefLength`, 2).readUInt16BE(0));
    take(`entries[${e}].wrapped`, take(`entries[${e}].wrappedLength`, 2).readUInt16BE(0));
  }
  if (flags & 0x01) take("context", take("contextLength", 2).readUInt16BE(0));
  take("ciphertext", take("ciphertextLength", 4).readUInt32BE(0));
  take("tag", 16);
  if (at !== bytes.length) throw new Error("layout does not cover the value");
  return out;
}

/** The values a decoder computes on the way (FORMAT.md §15.2, §5.3), from the spec alone. */
function intermediateOf(bytes: Buffer, plaintext: Buffer): Record<string, unknown> {
  const flags = bytes[2]!;
  const counter = Buffer.from([0, 0, 0, 1]);
  const input = Buffer.concat([counter, DEK, Buffer.from(INFO3, "ascii"), MESSAGE_ID]);
  const okm = okm3(DEK, MESSAGE_ID);
  if (!okm.subarray(32, 64).equals(bytes.subarray(35, 67))) throw new Error("commitment");
  const ctx = canonical(CONTEXT);
  const aad = Buffer.concat([Buffer.from([0x01, 0x03, flags]), MESSAGE_ID, ctx]);
  // open the body from these values alone, so the published intermediates are the working ones
  const layout = layoutOf(bytes);
  const ct = layout.find((f) => f.field === "ciphertext")!;
  const gcm = createDecipheriv("aes-256-gcm", okm.subarray(0, 32), Buffer.alloc(12));
  gcm.setAAD(aad);
  gcm.setAuthTag(bytes.subarray(bytes.length - 16));
  const opened = Buffer.concat([
    gcm.update(bytes.subarray(ct.offset, ct.offset + ct.length)),
    gcm.final(),
  ]);
  const out: Record<string, unknown> = {
    dataKeyHex: DEK.toString("hex"),
    kdf: {
      hash: "SHA-512",
      counterHex: counter.toString("hex"),
      labelAscii: INFO3,
      labelHex: Buffer.from(INFO3, "ascii").toString("hex"),
      messageIdHex: MESSAGE_ID.toString("hex"),
      inputHex: input.toString("hex"),
    },
    okmHex: okm.toString("hex"),
    encryptionKeyHex: okm.subarray(0, 32).toString("hex"),
    commitmentHex: okm.subarray(32, 64).toString("hex"),
    nonceHex: Buffer.alloc(12).toString("hex"),
    canonicalContextHex: ctx.toString("hex"),
    aadHex: aad.toString("hex"),
  };
  if (!opened.subarray(0, plaintext.length).equals(plaintext)) throw new Error("plaintext");
  if (flags & 0x04) {
    const padding = opened.subarray(plaintext.length);
    if (padding[0] !== 0x80 || !padding.subarray(1).every((b) => b === 0)) throw new Error("pad");
    out.gcmPlaintextHex = opened.toString("hex");
    out.valueLength = plaintext.length;
    out.paddingHex = padding.toString("hex");
  } else if (opened.length !== plaintext.length) throw new Error("length");
  return out;
}

const plaintext = Buffer.from("alice@example.com", "utf8");
const base = seal({ plaintext });
const flip = (bytes: Buffer, offset: number, value?: number) => {
  const out = Buffer.from(bytes);
  out[offset] = value ?? out[offset]! ^ 0x01;
  return out;
};
const keys = { localAes: [{ keyRef, keyHex: KEK.toString("hex") }] };
const ok = { plaintextUtf8: plaintext.toString("utf8") };
const vectors = [
  ["pos-01-basic", "Suite 0x03, context supplied on decrypt.", base, { context: CONTEXT }, ok],
  [
    "pos-02-stored-context",
    "Suite 0x03, context stored (flags bit 0), none given on decrypt.",
    seal({ plaintext, store: true }),
    {},
    ok,
  ],
  [
    "pos-03-padded",
    "Suite 0x03 with length padding (flags bit 2) to 32 bytes.",
    seal({ plaintext, pad: 32 }),
    { context: CONTEXT },
    ok,
  ],
  [
    "neg-01-suite-to-1",
    "Suite byte 3 -> 1: the HKDF derivation gives another commitment.",
    flip(base, 1, 0x01),
    { context: CONTEXT },
    { error: "ENVELOPE_COMMITMENT_MISMATCH", errorClass: "DecryptionError" },
  ],
  [
    "neg-02-flip-commitment",
    "One bit of the commitment flipped.",
    flip(base, 35),
    { context: CONTEXT },
    { error: "ENVELOPE_COMMITMENT_MISMATCH", errorClass: "DecryptionError" },
  ],
  [
    "neg-03-flip-message-id",
    "One bit of the message id flipped: another derived commitment.",
    flip(base, 3),
    { context: CONTEXT },
    { error: "ENVELOPE_COMMITMENT_MISMATCH", errorClass: "DecryptionError" },
  ],
  [
    "neg-04-hkdf-keys-labelled-3",
    "Key and commitment from suite 0x01's HKDF, suite byte 3: the commitment does not match.",
    seal({
      plaintext,
      okm: Buffer.from(
        hkdfSync("sha256", DEK, MESSAGE_ID, "envelope:v1:suite1:key+commitment", 64),
      ),
    }),
    { context: CONTEXT },
    { error: "ENVELOPE_COMMITMENT_MISMATCH", errorClass: "DecryptionError" },
  ],
  [
    "neg-05-flip-tag",
    "Last byte of the GCM tag flipped.",
    flip(base, base.length - 1),
    { context: CONTEXT },
    { error: "ENVELOPE_DECRYPT_FAILED", errorClass: "DecryptionError" },
  ],
  [
    "neg-06-wrong-context",
    "Context id 43 instead of 42.",
    base,
    { context: { ...CONTEXT, id: "43" } },
    { error: "ENVELOPE_DECRYPT_FAILED", errorClass: "DecryptionError" },
  ],
  [
    "neg-07-signed-reader",
    "A reader in signed mode (trusted signers set) refuses an unsigned suite 0x03 value.",
    base,
    { context: CONTEXT, trustedSigners: [SIGNER] },
    { error: "ENVELOPE_UNSIGNED", errorClass: "DecryptionError" },
  ],
  [
    "neg-08-suite-4",
    "Suite byte 4: unknown suite.",
    flip(base, 1, 0x04),
    { context: CONTEXT },
    { error: "ENVELOPE_UNSUPPORTED_SUITE", errorClass: "FormatError" },
  ],
] as const;

for (const [id, description, bytes, decrypt, expected] of vectors) {
  const vector = {
    id: `suite3-${id}`,
    kind: id.startsWith("pos") ? "positive" : "negative",
    description,
    form: "binary",
    envelopeHex: bytes.toString("hex"),
    keys,
    decrypt,
    expected:
      "plaintextUtf8" in expected
        ? { plaintextHex: Buffer.from(expected.plaintextUtf8, "utf8").toString("hex"), ...expected }
        : expected,
    // positive only: every field, and what a decoder computes on the way (FORMAT.md §12, §15.2)
    ...(id.startsWith("pos")
      ? { layout: layoutOf(bytes), intermediate: intermediateOf(bytes, plaintext) }
      : {}),
  };
  writeFileSync(join(DIR, `suite3-${id}.json`), `${JSON.stringify(vector, null, 2)}\n`);
}
console.log(`wrote ${vectors.length} suite 0x03 vectors to ${DIR}`);
