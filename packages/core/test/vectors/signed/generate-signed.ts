/**
 * Generates the suite 0x02 (signed mode) vectors, `signed-pos-*.json` and
 * `signed-neg-*.json`, beside the suite 0x01 vectors (which it never touches).
 *
 *   pnpm exec tsx packages/core/test/vectors/signed/generate-signed.ts           # refuses: vectors exist
 *   pnpm exec tsx packages/core/test/vectors/signed/generate-signed.ts --force   # replaces the signed-* files
 *
 * Every positive vector is re-derived from docs/FORMAT.md alone (field walk, AES-KW
 * unwrap, HKDF, AAD, the signed bytes of §14.2, Ed25519 verify, AES-GCM open) and every
 * vector is decrypted with @envelope/core; the generator stops unless each outcome is the
 * one written here.
 */
import {
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from "node:crypto";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type EncryptionContext,
  Envelope,
  EnvelopeError,
  encodeContext,
  localAesProvider,
  toText,
} from "@envelope/core";

const DIR = dirname(fileURLToPath(import.meta.url));
const SIGNED_FILE = /^signed-(pos|neg)-.*\.json$/;
const HKDF_INFO = "envelope:v1:suite1:key+commitment";
const DOMAIN = "envelope:v1:suite2:ed25519-signature";
const KW_IV = Buffer.from("A6A6A6A6A6A6A6A6", "hex");

interface Ed25519Pair {
  role: "writer" | "other";
  publicKeyHex: string;
  publicKeyPem: string;
  privateKeyPem: string;
}

interface Vector {
  id: string;
  kind: "positive" | "negative";
  description: string;
  form: "binary" | "text";
  envelopeHex?: string;
  envelopeText?: string;
  keys: { localAes: { keyRef: string; keyHex: string }[]; ed25519: Ed25519Pair[] };
  decrypt: { context?: EncryptionContext; trustedSigners?: string[] };
  expected: { plaintextHex?: string; plaintextUtf8?: string; error?: string; errorClass?: string };
  layout?: { field: string; offset: number; length: number; hex: string }[];
  intermediate?: Record<string, unknown>;
  derivedFrom?: string;
  mutation?: Record<string, unknown>;
}

// ---------------------------------------------------------------- keys and clients

const aesKeys = [randomBytes(32), randomBytes(32)];
const aes = aesKeys.map((k) => localAesProvider({ keys: k }));
const aesJson = (i: number) => ({ keyRef: aes[i]!.keyRef, keyHex: aesKeys[i]!.toString("hex") });

function ed25519(role: Ed25519Pair["role"]): Ed25519Pair & { key: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const x = publicKey.export({ format: "jwk" }).x as string;
  return {
    role,
    publicKeyHex: Buffer.from(x, "base64url").toString("hex"),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }) as string,
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    key: privateKey,
  };
}
const writer = ed25519("writer");
const other = ed25519("other");
const edJson = (p: Ed25519Pair & { key?: KeyObject }): Ed25519Pair => ({
  role: p.role,
  publicKeyHex: p.publicKeyHex,
  publicKeyPem: p.publicKeyPem,
  privateKeyPem: p.privateKeyPem,
});
const ED_KEYS = [edJson(writer), edJson(other)];
const PIN = [writer.publicKeyHex];

const CONTEXT = { table: "users", column: "ssn", id: "42" };
const PLAINTEXT = "123-45-6789";

function signingClient(
  encrypt: ReturnType<typeof localAesProvider>[],
  storeContext = false,
  pem = writer.privateKeyPem,
) {
  return new Envelope({ encrypt, storeContext, signing: { key: pem }, cache: false });
}

// ---------------------------------------------------------------- independent checks

/** Walks a suite 0x02 value field by field (FORMAT.md §2 and §14.1). */
function layout(bytes: Buffer) {
  const fields: { field: string; offset: number; length: number; hex: string }[] = [];
  let o = 0;
  const take = (field: string, length: number) => {
    if (o + length > bytes.length) throw new Error(`layout: ${field} past the end`);
    fields.push({ field, offset: o, length, hex: bytes.subarray(o, o + length).toString("hex") });
    o += length;
    return bytes.subarray(o - length, o);
  };
  take("version", 1);
  take("suite", 1);
  const flags = take("flags", 1)[0]!;
  take("messageId", 32);
  take("commitment", 32);
  take("signerKey", 32);
  take("signature", 64);
  const count = take("entryCount", 1)[0]!;
  for (let i = 0; i < count; i++) {
    const idLength = take(`entries[${i}].providerIdLength`, 1)[0]!;
    take(`entries[${i}].providerId`, idLength);
    take(`entries[${i}].keyRef`, take(`entries[${i}].keyRefLength`, 2).readUInt16BE(0));
    take(`entries[${i}].wrapped`, take(`entries[${i}].wrappedLength`, 2).readUInt16BE(0));
  }
  if (flags & 1) take("context", take("contextLength", 2).readUInt16BE(0));
  const ctLength = take("ciphertextLength", 4).readUInt32BE(0);
  take("ciphertext", ctLength);
  take("tag", 16);
  if (o !== bytes.length) throw new Error("layout: trailing bytes");
  return fields;
}

/** Re-derives every intermediate value from the spec and opens the body. */
function intermediate(bytes: Buffer, aesKey: Buffer, entry: number, given: EncryptionContext) {
  const fields = layout(bytes);
  const at = (name: string) => {
    const f = fields.find((x) => x.field === name)!;
    return bytes.subarray(f.offset, f.offset + f.length);
  };
  const kw = createDecipheriv("id-aes256-wrap", aesKey, KW_IV);
  const dataKey = Buffer.concat([kw.update(at(`entries[${entry}].wrapped`)), kw.final()]);
  const okm = Buffer.from(hkdfSync("sha256", dataKey, at("messageId"), HKDF_INFO, 64));
  if (!okm.subarray(32).equals(at("commitment"))) throw new Error("commitment differs");
  const stored = fields.some((f) => f.field === "context");
  const canonical = stored ? Buffer.from(at("context")) : encodeContext(given);
  const aad = Buffer.concat([bytes.subarray(0, 3), at("messageId"), canonical]);
  const body = Buffer.concat([at("ciphertext"), at("tag")]);
  const bodySha256 = createHash("sha256").update(body).digest();
  const u16 = Buffer.alloc(2);
  u16.writeUInt16BE(canonical.length);
  const u32 = Buffer.alloc(4);
  u32.writeUInt32BE(at("ciphertext").length);
  const signedBytes = Buffer.concat([
    Buffer.from(DOMAIN, "ascii"),
    bytes.subarray(0, 3),
    at("messageId"),
    at("commitment"),
    at("signerKey"),
    u16,
    canonical,
    u32,
    bodySha256,
  ]);
  const signerKey = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: at("signerKey").toString("base64url") },
    format: "jwk",
  });
  if (!verify(null, signedBytes, signerKey, at("signature"))) throw new Error("signature");
  const gcm = createDecipheriv("aes-256-gcm", okm.subarray(0, 32), Buffer.alloc(12));
  gcm.setAAD(aad);
  gcm.setAuthTag(at("tag"));
  const plaintext = Buffer.concat([gcm.update(at("ciphertext")), gcm.final()]);
  return {
    fields,
    plaintext,
    values: {
      dataKeyHex: dataKey.toString("hex"),
      hkdf: {
        hash: "SHA-256",
        saltHex: at("messageId").toString("hex"),
        infoAscii: HKDF_INFO,
        length: 64,
      },
      okmHex: okm.toString("hex"),
      encryptionKeyHex: okm.subarray(0, 32).toString("hex"),
      commitmentHex: okm.subarray(32).toString("hex"),
      nonceHex: "000000000000000000000000",
      canonicalContextHex: canonical.toString("hex"),
      aadHex: aad.toString("hex"),
      signature: {
        algorithm: "Ed25519 (RFC 8032, pure)",
        domainAscii: DOMAIN,
        bodySha256Hex: bodySha256.toString("hex"),
        signedBytesHex: signedBytes.toString("hex"),
        signerKeyHex: at("signerKey").toString("hex"),
        signatureHex: at("signature").toString("hex"),
      },
    },
  };
}

// ---------------------------------------------------------------- vector builders

const vectors: Vector[] = [];
let posN = 0;
let negN = 0;

function positive(v: {
  slug: string;
  description: string;
  envelope: Buffer | string;
  aesKeys: number[];
  openWith: { key: number; entry: number };
  context?: EncryptionContext;
  trusted?: string[] | undefined;
  plaintext: string;
  derivedFrom?: string;
  mutation?: Record<string, unknown>;
}): Vector {
  const binary =
    typeof v.envelope === "string" ? Buffer.from(v.envelope.slice(4), "base64url") : v.envelope;
  const checked = intermediate(binary, aesKeys[v.openWith.key]!, v.openWith.entry, v.context ?? {});
  if (checked.plaintext.toString("utf8") !== v.plaintext) throw new Error(`${v.slug}: plaintext`);
  const vector: Vector = {
    id: `signed-pos-${String(++posN).padStart(2, "0")}-${v.slug}`,
    kind: "positive",
    description: v.description,
    form: typeof v.envelope === "string" ? "text" : "binary",
    ...(typeof v.envelope === "string"
      ? { envelopeText: v.envelope }
      : { envelopeHex: v.envelope.toString("hex") }),
    keys: { localAes: v.aesKeys.map(aesJson), ed25519: ED_KEYS },
    decrypt: {
      ...(v.context ? { context: v.context } : {}),
      ...(v.trusted ? { trustedSigners: v.trusted } : {}),
    },
    expected: {
      plaintextHex: Buffer.from(v.plaintext).toString("hex"),
      plaintextUtf8: v.plaintext,
    },
    layout: checked.fields,
    intermediate: checked.values,
    ...(v.derivedFrom ? { derivedFrom: v.derivedFrom } : {}),
    ...(v.mutation ? { mutation: v.mutation } : {}),
  };
  vectors.push(vector);
  return vector;
}

function negative(v: {
  slug: string;
  description: string;
  envelope: Buffer | string;
  aesKeys?: number[];
  context?: EncryptionContext;
  trusted?: string[] | undefined;
  error: string;
  errorClass: string;
  derivedFrom: string;
  mutation: Record<string, unknown>;
}): void {
  vectors.push({
    id: `signed-neg-${String(++negN).padStart(3, "0")}-${v.slug}`,
    kind: "negative",
    description: v.description,
    form: typeof v.envelope === "string" ? "text" : "binary",
    ...(typeof v.envelope === "string"
      ? { envelopeText: v.envelope }
      : { envelopeHex: v.envelope.toString("hex") }),
    keys: { localAes: (v.aesKeys ?? [0]).map(aesJson), ed25519: ED_KEYS },
    decrypt: {
      ...(v.context ? { context: v.context } : {}),
      ...(v.trusted ? { trustedSigners: v.trusted } : {}),
    },
    expected: { error: v.error, errorClass: v.errorClass },
    derivedFrom: v.derivedFrom,
    mutation: v.mutation,
  });
}

const flipAt = (b: Buffer, offset: number, bit = 0) => {
  const c = Buffer.from(b);
  c[offset]! ^= 1 << bit;
  return c;
};

async function main(): Promise<void> {
  const force = process.argv.includes("--force");
  const existing = readdirSync(DIR).filter((f) => SIGNED_FILE.test(f));
  if (existing.length > 0 && !force) {
    throw new Error(
      `packages/core/test/vectors/signed already holds ${existing.length} signed vector files. Vectors are never regenerated silently; pass --force to replace them.`,
    );
  }

  // --- positive
  const plain = signingClient([aes[0]!]);
  const signed = await plain.encrypt(PLAINTEXT, { context: CONTEXT });
  const p1 = positive({
    slug: "signed",
    description:
      "Suite 0x02: one local-aes entry, context not stored (supplied on decrypt), reader pinned to the writer's key.",
    envelope: signed,
    aesKeys: [0],
    openWith: { key: 0, entry: 0 },
    context: CONTEXT,
    trusted: PIN,
    plaintext: PLAINTEXT,
  });
  positive({
    slug: "signed-stored-context",
    description:
      "Suite 0x02 with flags bit 0: the stored context is what is signed; decrypt gets no context.",
    envelope: await signingClient([aes[0]!], true).encrypt(PLAINTEXT, { context: CONTEXT }),
    aesKeys: [0],
    openWith: { key: 0, entry: 0 },
    trusted: PIN,
    plaintext: PLAINTEXT,
  });
  positive({
    slug: "signed-multiwrap",
    description:
      "Suite 0x02 with two entries (local-aes key 0, then key 1); only key 1 is configured, so the second entry opens it.",
    envelope: await signingClient([aes[0]!, aes[1]!]).encrypt(PLAINTEXT, { context: CONTEXT }),
    aesKeys: [1],
    openWith: { key: 1, entry: 1 },
    context: CONTEXT,
    trusted: PIN,
    plaintext: PLAINTEXT,
  });
  const operator = new Envelope({ encrypt: aes[1]!, decrypt: [aes[0]!], cache: false });
  const rewrapped = await operator.rewrap(signed, { context: CONTEXT });
  if (!rewrapped.subarray(0, 163).equals(signed.subarray(0, 163))) throw new Error("rewrap header");
  positive({
    slug: "signed-rewrapped",
    description:
      "signed-pos-01 rewrapped from local-aes key 0 to key 1 by a client without a signing key: bytes 0..163 (header, signer key, signature) and the body region are unchanged; the signature still verifies.",
    envelope: rewrapped,
    aesKeys: [1],
    openWith: { key: 1, entry: 0 },
    context: CONTEXT,
    trusted: PIN,
    plaintext: PLAINTEXT,
    derivedFrom: p1.id,
    mutation: { op: "rewrap", to: "local-aes key 1" },
  });
  positive({
    slug: "signed-unpinned-reader",
    description:
      "signed-pos-01 opened by a reader without trustedSigners: it verifies the signature under the key in the value (integrity only) and opens it.",
    envelope: signed,
    aesKeys: [0],
    openWith: { key: 0, entry: 0 },
    context: CONTEXT,
    plaintext: PLAINTEXT,
    derivedFrom: p1.id,
  });
  const text = await plain.encrypt("", { output: "text" });
  positive({
    slug: "signed-text-empty",
    description:
      "Text form of a suite 0x02 value with an empty plaintext and no context (the signed context is 0000).",
    envelope: text,
    aesKeys: [0],
    openWith: { key: 0, entry: 0 },
    trusted: PIN,
    plaintext: "",
  });
  positive({
    slug: "signed-two-trusted",
    description:
      "signed-pos-01 with two pinned keys (another one first): any pinned key is accepted.",
    envelope: signed,
    aesKeys: [0],
    openWith: { key: 0, entry: 0 },
    context: CONTEXT,
    trusted: [other.publicKeyHex, writer.publicKeyHex],
    plaintext: PLAINTEXT,
    derivedFrom: p1.id,
  });

  // --- negative
  const base = { aesKeys: [0], context: CONTEXT, derivedFrom: p1.id };
  const unsigned = await new Envelope({ encrypt: aes[0]!, cache: false }).encrypt(PLAINTEXT, {
    context: CONTEXT,
  });
  negative({
    ...base,
    slug: "unsigned-pinned",
    description: "A suite 0x01 value given to a reader with trustedSigners.",
    envelope: unsigned,
    trusted: PIN,
    error: "ENVELOPE_UNSIGNED",
    errorClass: "DecryptionError",
    derivedFrom: "(fresh suite 0x01 value, same key and context)",
    mutation: { op: "unsigned-writer" },
  });
  const byOther = await signingClient([aes[0]!], false, other.privateKeyPem).encrypt(PLAINTEXT, {
    context: CONTEXT,
  });
  negative({
    ...base,
    slug: "untrusted-signer",
    description:
      "Signed by the 'other' key (a valid signature); the reader pins only the writer key.",
    envelope: byOther,
    trusted: PIN,
    error: "ENVELOPE_UNTRUSTED_SIGNER",
    errorClass: "DecryptionError",
    derivedFrom: "(fresh value signed by the other key)",
    mutation: { op: "other-signer" },
  });
  const cases: [string, string, Buffer, string, string[] | undefined, Record<string, unknown>][] = [
    [
      "flip-signature",
      "First bit of the signature.",
      flipAt(signed, 99),
      "ENVELOPE_BAD_SIGNATURE",
      PIN,
      { op: "flip-bit", field: "signature", offset: 99, bit: 0 },
    ],
    [
      "flip-signature-unpinned",
      "First bit of the signature, reader without trustedSigners.",
      flipAt(signed, 99),
      "ENVELOPE_BAD_SIGNATURE",
      undefined,
      { op: "flip-bit", field: "signature", offset: 99, bit: 0 },
    ],
    [
      "flip-signer-key",
      "First bit of the signer key, pinned reader: the key is not pinned.",
      flipAt(signed, 67),
      "ENVELOPE_UNTRUSTED_SIGNER",
      PIN,
      { op: "flip-bit", field: "signerKey", offset: 67, bit: 0 },
    ],
    [
      "flip-signer-key-unpinned",
      "First bit of the signer key, reader without trustedSigners: the signature does not verify under that key (or it is not a valid point).",
      flipAt(signed, 67),
      "ENVELOPE_BAD_SIGNATURE",
      undefined,
      { op: "flip-bit", field: "signerKey", offset: 67, bit: 0 },
    ],
    [
      "flip-message-id",
      "A bit of the message id: signed, so refused before any unwrap.",
      flipAt(signed, 10),
      "ENVELOPE_BAD_SIGNATURE",
      PIN,
      { op: "flip-bit", field: "messageId", offset: 10, bit: 0 },
    ],
    [
      "flip-commitment",
      "A bit of the commitment: signed.",
      flipAt(signed, 66, 7),
      "ENVELOPE_BAD_SIGNATURE",
      PIN,
      { op: "flip-bit", field: "commitment", offset: 66, bit: 7 },
    ],
    [
      "flip-ciphertext",
      "First ciphertext bit: the body hash is signed.",
      flipAt(signed, signed.length - 16 - PLAINTEXT.length),
      "ENVELOPE_BAD_SIGNATURE",
      PIN,
      {
        op: "flip-bit",
        field: "ciphertext",
        offset: signed.length - 16 - PLAINTEXT.length,
        bit: 0,
      },
    ],
    [
      "flip-tag",
      "Last tag bit.",
      flipAt(signed, signed.length - 1),
      "ENVELOPE_BAD_SIGNATURE",
      PIN,
      { op: "flip-bit", field: "tag", offset: signed.length - 1, bit: 0 },
    ],
    [
      "truncated-signature",
      "Cut 10 bytes into the signature.",
      signed.subarray(0, 109),
      "ENVELOPE_BAD_FORMAT",
      PIN,
      { op: "truncate", length: 109 },
    ],
    [
      "truncated-signer-key",
      "Cut inside the signer key.",
      signed.subarray(0, 80),
      "ENVELOPE_BAD_FORMAT",
      PIN,
      { op: "truncate", length: 80 },
    ],
    [
      "trailing-byte",
      "One byte 0x00 appended.",
      Buffer.concat([signed, Buffer.of(0)]),
      "ENVELOPE_BAD_FORMAT",
      PIN,
      { op: "append", hex: "00" },
    ],
    [
      "zero-signature",
      "Signature replaced by 64 zero bytes.",
      Buffer.concat([signed.subarray(0, 99), Buffer.alloc(64), signed.subarray(163)]),
      "ENVELOPE_BAD_SIGNATURE",
      PIN,
      { op: "set-field", field: "signature", hex: "00".repeat(64) },
    ],
  ];
  for (const [slug, description, envelope, error, trusted, mutation] of cases) {
    negative({
      ...base,
      slug,
      description,
      envelope,
      trusted,
      error,
      errorClass: error === "ENVELOPE_BAD_FORMAT" ? "FormatError" : "DecryptionError",
      mutation,
    });
  }
  // Signature (and signer key) copied from another value of the same writer.
  const second = await plain.encrypt(PLAINTEXT, { context: CONTEXT });
  negative({
    ...base,
    slug: "signature-from-other-value",
    description:
      "Signature copied from another value by the same writer (same key, context, plaintext).",
    envelope: Buffer.concat([
      signed.subarray(0, 99),
      second.subarray(99, 163),
      signed.subarray(163),
    ]),
    trusted: PIN,
    error: "ENVELOPE_BAD_SIGNATURE",
    errorClass: "DecryptionError",
    mutation: { op: "splice", field: "signature", from: "another signed value" },
  });
  negative({
    ...base,
    slug: "wrong-context",
    description: "Context of another row (id 43) given: the signed context differs.",
    envelope: signed,
    context: { ...CONTEXT, id: "43" },
    trusted: PIN,
    error: "ENVELOPE_BAD_SIGNATURE",
    errorClass: "DecryptionError",
    mutation: { op: "decrypt-context", context: { ...CONTEXT, id: "43" } },
  });
  const downgraded = Buffer.concat([
    Buffer.of(1, 1, signed[2]!),
    signed.subarray(3, 67),
    signed.subarray(163),
  ]);
  negative({
    ...base,
    slug: "downgrade-pinned",
    description: "Signer key and signature removed and the suite set to 1, pinned reader.",
    envelope: downgraded,
    trusted: PIN,
    error: "ENVELOPE_UNSIGNED",
    errorClass: "DecryptionError",
    mutation: { op: "strip-signature", suite: 1 },
  });
  negative({
    ...base,
    slug: "downgrade-unpinned",
    description:
      "The same downgraded value, reader without trustedSigners: the suite byte is in the AAD (0x02 at seal time), so GCM fails.",
    envelope: downgraded,
    error: "ENVELOPE_DECRYPT_FAILED",
    errorClass: "DecryptionError",
    mutation: { op: "strip-signature", suite: 1 },
  });
  // A suite-1 value upgraded to suite 2 by an attacker who signs it with the writer's
  // public key in place: the signature cannot be made without the private key.
  negative({
    ...base,
    slug: "upgrade-unsigned",
    description:
      "A suite 0x01 value with the suite set to 2 and the writer's public key plus a signature by the other key inserted.",
    envelope: (() => {
      const header = Buffer.concat([Buffer.of(1, 2, unsigned[2]!), unsigned.subarray(3, 67)]);
      const rest = unsigned.subarray(67);
      const fake = Buffer.concat([
        header,
        Buffer.from(writer.publicKeyHex, "hex"),
        Buffer.alloc(64),
        rest,
      ]);
      const body = rest.subarray(rest.length - 16 - PLAINTEXT.length);
      const m = Buffer.concat([
        Buffer.from(DOMAIN),
        fake.subarray(0, 99),
        Buffer.from([0, encodeContext(CONTEXT).length]),
        encodeContext(CONTEXT),
        Buffer.from([0, 0, 0, PLAINTEXT.length]),
        createHash("sha256").update(body).digest(),
      ]);
      sign(null, m, createPrivateKey(other.privateKeyPem)).copy(fake, 99);
      return fake;
    })(),
    trusted: PIN,
    error: "ENVELOPE_BAD_SIGNATURE",
    errorClass: "DecryptionError",
    derivedFrom: "(the unsigned-pinned value)",
    mutation: { op: "insert-signature", suite: 2, signerKey: "writer", signedBy: "other" },
  });
  // Entries are not signed: a wrapped key spliced from another value of the same key
  // keeps the signature valid and is caught by the commitment.
  const entryFrom = await plain.encrypt(PLAINTEXT, { context: CONTEXT });
  negative({
    ...base,
    slug: "spliced-entry",
    description:
      "Entry 0's wrapped key taken from another value under the same key: the signature still verifies (entries are unsigned), the commitment check refuses the other data key.",
    envelope: Buffer.concat([
      signed.subarray(0, 194),
      entryFrom.subarray(194, 234),
      signed.subarray(234),
    ]),
    trusted: PIN,
    error: "ENVELOPE_COMMITMENT_MISMATCH",
    errorClass: "DecryptionError",
    mutation: { op: "splice", field: "entries[0].wrapped", offset: 194, length: 40 },
  });
  negative({
    ...base,
    // Suite 3 exists since FORMAT.md §15: the checked-in signed-neg-021 used 3 (its new
    // outcome is pinned in family.ts); a regeneration uses 4.
    slug: "suite-4",
    description: "Suite byte set to 4: unknown suite.",
    envelope: (() => {
      const c = Buffer.from(signed);
      c[1] = 4;
      return c;
    })(),
    trusted: PIN,
    error: "ENVELOPE_UNSUPPORTED_SUITE",
    errorClass: "FormatError",
    mutation: { op: "set-u8", field: "suite", offset: 1, value: 3 },
  });
  negative({
    ...base,
    slug: "text-flip-signature",
    description: "Text form of signed-pos-01 with the signature's first bit flipped.",
    envelope: toText(flipAt(signed, 99)),
    trusted: PIN,
    error: "ENVELOPE_BAD_SIGNATURE",
    errorClass: "DecryptionError",
    mutation: { op: "text", of: "flip-signature" },
  });

  // --- confirm every outcome with the core
  for (const v of vectors) {
    const reader = new Envelope({
      encrypt: localAesProvider({ keys: v.keys.localAes.map((k) => k.keyHex) }),
      cache: false,
      ...(v.decrypt.trustedSigners
        ? { trustedSigners: v.decrypt.trustedSigners.map((h) => `ed25519:${h}`) }
        : {}),
    });
    const input = v.envelopeText ?? Buffer.from(v.envelopeHex!, "hex");
    const outcome = await reader
      .decrypt(input, v.decrypt.context ? { context: v.decrypt.context } : {})
      .then(
        (pt) => ({ plaintextHex: pt.toString("hex") }),
        (e: unknown) =>
          EnvelopeError.isInstance(e)
            ? { error: e.code, errorClass: e.name }
            : { thrown: String(e) },
      );
    const want =
      v.kind === "positive"
        ? { plaintextHex: v.expected.plaintextHex }
        : { error: v.expected.error, errorClass: v.expected.errorClass };
    if (JSON.stringify(outcome) !== JSON.stringify(want)) {
      throw new Error(
        `${v.id}: core gave ${JSON.stringify(outcome)}, expected ${JSON.stringify(want)}`,
      );
    }
  }

  for (const f of existing) rmSync(join(DIR, f));
  for (const v of vectors)
    writeFileSync(join(DIR, `${v.id}.json`), `${JSON.stringify(v, null, 2)}\n`);
  console.log(`wrote ${vectors.length} signed vectors`);
}

await main();
