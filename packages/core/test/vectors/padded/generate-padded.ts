/**
 * Generates the length-padding vectors (flags bit 2, docs/FORMAT.md §2.3),
 * `padded-pos-*.json` and `padded-neg-*.json`, beside the other vectors (which it never
 * touches).
 *
 *   pnpm exec tsx packages/core/test/vectors/padded/generate-padded.ts           # refuses: vectors exist
 *   pnpm exec tsx packages/core/test/vectors/padded/generate-padded.ts --force   # replaces the padded-* files
 *
 * Values the core cannot be made to write (padding of an odd length, malformed padding
 * under a valid tag, an empty padded plaintext) are sealed here from the spec alone
 * (`sealBySpec`). Every positive vector is re-opened from the spec alone (field walk,
 * AES-KW unwrap, HKDF, AAD, AES-GCM, padding removal, and for suite 0x02 the signature)
 * and every vector is decrypted with @envelope/core; the generator stops unless each
 * outcome is the one written here.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
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
  type PadOption,
  toText,
} from "@envelope/core";

const DIR = dirname(fileURLToPath(import.meta.url));
const PADDED_FILE = /^padded-(pos|neg)-.*\.json$/;
const HKDF_INFO = "envelope:v1:suite1:key+commitment";
const DOMAIN = "envelope:v1:suite2:ed25519-signature";
const KW_IV = Buffer.from("A6A6A6A6A6A6A6A6", "hex");

interface Vector {
  id: string;
  kind: "positive" | "negative";
  description: string;
  form: "binary" | "text";
  envelopeHex?: string;
  envelopeText?: string;
  keys: { localAes: { keyRef: string; keyHex: string }[] };
  decrypt: { context?: EncryptionContext; trustedSigners?: string[] };
  expected: { plaintextHex?: string; plaintextUtf8?: string; error?: string; errorClass?: string };
  writer?: { pad: PadOption | "none (sealed by the generator from the spec)" };
  layout?: { field: string; offset: number; length: number; hex: string }[];
  intermediate?: Record<string, unknown>;
  derivedFrom?: string;
  mutation?: Record<string, unknown>;
}

// ---------------------------------------------------------------- keys and clients

const aesKeys = [randomBytes(32), randomBytes(32)];
const aes = aesKeys.map((k) => localAesProvider({ keys: k }));
const aesJson = (i: number) => ({ keyRef: aes[i]!.keyRef, keyHex: aesKeys[i]!.toString("hex") });
const signer = generateKeyPairSync("ed25519");
const signerHex = Buffer.from(
  signer.publicKey.export({ format: "jwk" }).x as string,
  "base64url",
).toString("hex");

const CONTEXT = { table: "users", column: "email", id: "42" };

function writer(pad: PadOption, options: { storeContext?: boolean; signed?: boolean } = {}) {
  return new Envelope({
    encrypt: aes[0]!,
    pad,
    cache: false,
    storeContext: options.storeContext ?? false,
    ...(options.signed
      ? { signing: { key: signer.privateKey.export({ type: "pkcs8", format: "pem" }) as string } }
      : {}),
  });
}

/**
 * A suite 0x01 value sealed from FORMAT.md alone, with `gcmPlaintext` (padding included)
 * as it stands and `flags` as given: one local-aes entry under key 0, context not stored.
 */
async function sealBySpec(gcmPlaintext: Buffer, flags: number): Promise<Buffer> {
  const dataKey = randomBytes(32);
  const entry = await aes[0]!.wrap(dataKey, { context: CONTEXT });
  const messageId = randomBytes(32);
  const okm = Buffer.from(hkdfSync("sha256", dataKey, messageId, HKDF_INFO, 64));
  const aad = Buffer.concat([Buffer.of(1, 1, flags), messageId, encodeContext(CONTEXT)]);
  const gcm = createCipheriv("aes-256-gcm", okm.subarray(0, 32), Buffer.alloc(12));
  gcm.setAAD(aad);
  const ciphertext = Buffer.concat([gcm.update(gcmPlaintext), gcm.final()]);
  const u16 = (n: number) => Buffer.of(n >> 8, n & 0xff);
  const u32 = Buffer.alloc(4);
  u32.writeUInt32BE(ciphertext.length);
  const id = Buffer.from(entry.providerId, "ascii");
  const ref = Buffer.from(entry.keyRef, "utf8");
  return Buffer.concat([
    Buffer.of(1, 1, flags),
    messageId,
    okm.subarray(32),
    Buffer.of(1, id.length),
    id,
    u16(ref.length),
    ref,
    u16(entry.wrapped.length),
    Buffer.from(entry.wrapped),
    u32,
    ciphertext,
    gcm.getAuthTag(),
  ]);
}

// ---------------------------------------------------------------- independent checks

/** Walks a suite 0x01 or 0x02 value field by field (FORMAT.md §2 and §14.1). */
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
  const suite = take("suite", 1)[0]!;
  const flags = take("flags", 1)[0]!;
  take("messageId", 32);
  take("commitment", 32);
  if (suite === 2) {
    take("signerKey", 32);
    take("signature", 64);
  }
  const count = take("entryCount", 1)[0]!;
  for (let i = 0; i < count; i++) {
    const idLength = take(`entries[${i}].providerIdLength`, 1)[0]!;
    take(`entries[${i}].providerId`, idLength);
    take(`entries[${i}].keyRef`, take(`entries[${i}].keyRefLength`, 2).readUInt16BE(0));
    take(`entries[${i}].wrapped`, take(`entries[${i}].wrappedLength`, 2).readUInt16BE(0));
  }
  if (flags & 1) take("context", take("contextLength", 2).readUInt16BE(0));
  take("ciphertext", take("ciphertextLength", 4).readUInt32BE(0));
  take("tag", 16);
  if (o !== bytes.length) throw new Error("layout: trailing bytes");
  return { fields, suite, flags };
}

/** FORMAT.md §2.3: the last non-zero byte must be 0x80; it and what follows are padding. */
function stripBySpec(gcmPlaintext: Buffer): { value: Buffer; padding: Buffer } {
  let end = gcmPlaintext.length - 1;
  while (end >= 0 && gcmPlaintext[end] === 0) end--;
  if (end < 0 || gcmPlaintext[end] !== 0x80) throw new Error("bad padding");
  return { value: gcmPlaintext.subarray(0, end), padding: gcmPlaintext.subarray(end) };
}

/** Re-derives every intermediate value from the spec, opens the body, removes the padding. */
function intermediate(bytes: Buffer, aesKey: Buffer, given: EncryptionContext) {
  const { fields, suite, flags } = layout(bytes);
  if ((flags & 0x04) === 0) throw new Error("not padded");
  const at = (name: string) => {
    const f = fields.find((x) => x.field === name)!;
    return bytes.subarray(f.offset, f.offset + f.length);
  };
  const kw = createDecipheriv("id-aes256-wrap", aesKey, KW_IV);
  const dataKey = Buffer.concat([kw.update(at("entries[0].wrapped")), kw.final()]);
  const okm = Buffer.from(hkdfSync("sha256", dataKey, at("messageId"), HKDF_INFO, 64));
  if (!okm.subarray(32).equals(at("commitment"))) throw new Error("commitment differs");
  const stored = fields.some((f) => f.field === "context");
  const canonical = stored ? Buffer.from(at("context")) : encodeContext(given);
  const aad = Buffer.concat([bytes.subarray(0, 3), at("messageId"), canonical]);
  if (suite === 2) {
    const u16 = Buffer.of(canonical.length >> 8, canonical.length & 0xff);
    const u32 = Buffer.alloc(4);
    u32.writeUInt32BE(at("ciphertext").length);
    const signedBytes = Buffer.concat([
      Buffer.from(DOMAIN, "ascii"),
      bytes.subarray(0, 99),
      u16,
      canonical,
      u32,
      createHash("sha256")
        .update(Buffer.concat([at("ciphertext"), at("tag")]))
        .digest(),
    ]);
    const key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: at("signerKey").toString("base64url") },
      format: "jwk",
    });
    if (!verify(null, signedBytes, key, at("signature"))) throw new Error("signature");
  }
  const gcm = createDecipheriv("aes-256-gcm", okm.subarray(0, 32), Buffer.alloc(12));
  gcm.setAAD(aad);
  gcm.setAuthTag(at("tag"));
  const gcmPlaintext = Buffer.concat([gcm.update(at("ciphertext")), gcm.final()]);
  const { value, padding } = stripBySpec(gcmPlaintext);
  return {
    fields,
    value,
    values: {
      dataKeyHex: dataKey.toString("hex"),
      okmHex: okm.toString("hex"),
      commitmentHex: okm.subarray(32).toString("hex"),
      canonicalContextHex: canonical.toString("hex"),
      aadHex: aad.toString("hex"),
      gcmPlaintextHex: gcmPlaintext.toString("hex"),
      valueLength: value.length,
      paddingHex: padding.toString("hex"),
    },
  };
}

// ---------------------------------------------------------------- vector builders

const vectors: Vector[] = [];
let posN = 0;
let negN = 0;
const hexOrText = (e: Buffer | string) =>
  typeof e === "string" ? { envelopeText: e } : { envelopeHex: e.toString("hex") };

function positive(v: {
  slug: string;
  description: string;
  envelope: Buffer | string;
  aesKey?: number;
  context?: EncryptionContext;
  trusted?: string[];
  value: Buffer;
  pad: NonNullable<Vector["writer"]>["pad"];
  derivedFrom?: string;
  mutation?: Record<string, unknown>;
}): Vector {
  const key = v.aesKey ?? 0;
  const binary =
    typeof v.envelope === "string" ? Buffer.from(v.envelope.slice(4), "base64url") : v.envelope;
  const checked = intermediate(binary, aesKeys[key]!, v.context ?? {});
  if (!checked.value.equals(v.value)) throw new Error(`${v.slug}: value`);
  const utf8 = v.value.toString("utf8");
  const vector: Vector = {
    id: `padded-pos-${String(++posN).padStart(2, "0")}-${v.slug}`,
    kind: "positive",
    description: v.description,
    form: typeof v.envelope === "string" ? "text" : "binary",
    ...hexOrText(v.envelope),
    keys: { localAes: [aesJson(key)] },
    decrypt: {
      ...(v.context ? { context: v.context } : {}),
      ...(v.trusted ? { trustedSigners: v.trusted } : {}),
    },
    expected: {
      plaintextHex: v.value.toString("hex"),
      ...(Buffer.from(utf8, "utf8").equals(v.value) && /^[\x20-\x7e]*$/.test(utf8)
        ? { plaintextUtf8: utf8 }
        : {}),
    },
    writer: { pad: v.pad },
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
  trusted?: string[];
  error: string;
  errorClass: string;
  derivedFrom: string;
  mutation: Record<string, unknown>;
}): void {
  vectors.push({
    id: `padded-neg-${String(++negN).padStart(3, "0")}-${v.slug}`,
    kind: "negative",
    description: v.description,
    form: typeof v.envelope === "string" ? "text" : "binary",
    ...hexOrText(v.envelope),
    keys: { localAes: [aesJson(0)] },
    decrypt: { context: CONTEXT, ...(v.trusted ? { trustedSigners: v.trusted } : {}) },
    expected: { error: v.error, errorClass: v.errorClass },
    derivedFrom: v.derivedFrom,
    mutation: v.mutation,
  });
}

const withFlags = (b: Buffer, flags: number) => {
  const c = Buffer.from(b);
  c[2] = flags;
  return c;
};

async function main(): Promise<void> {
  const force = process.argv.includes("--force");
  const existing = readdirSync(DIR).filter((f) => PADDED_FILE.test(f));
  if (existing.length > 0 && !force) {
    throw new Error(
      `packages/core/test/vectors/padded already holds ${existing.length} padded vector files. Vectors are never regenerated silently; pass --force to replace them.`,
    );
  }
  const utf8 = (s: string) => Buffer.from(s, "utf8");
  const email = utf8("alice@example.com");

  // --- positive
  const p1Bytes = await writer(32).encrypt(email, { context: CONTEXT });
  const p1 = positive({
    slug: "bucket-32",
    description:
      "pad 32: a 17-byte value sealed as 32 bytes (value, 0x80, 14 zero bytes); context not stored.",
    envelope: p1Bytes,
    context: CONTEXT,
    value: email,
    pad: 32,
  });
  positive({
    slug: "pii-stored-context",
    description:
      'pad "pii" ({ bucket: 32, min: 64 }): an 11-byte SSN sealed as 64 bytes; flags 0x05 (context stored and padded); decrypt gets no context.',
    envelope: await writer("pii", { storeContext: true }).encrypt("078-05-1120", {
      context: { ...CONTEXT, column: "ssn" },
    }),
    value: utf8("078-05-1120"),
    pad: "pii",
  });
  positive({
    slug: "one-byte-of-padding",
    description: "pad 32 on a 31-byte value: the padding is the single byte 0x80.",
    envelope: await writer(32).encrypt("a".repeat(31), { context: CONTEXT }),
    context: CONTEXT,
    value: utf8("a".repeat(31)),
    pad: 32,
  });
  positive({
    slug: "full-block-of-padding",
    description:
      "pad 32 on a 32-byte value: 64 bytes, 32 of them padding (the marker always takes a byte).",
    envelope: await writer(32).encrypt("b".repeat(32), { context: CONTEXT }),
    context: CONTEXT,
    value: utf8("b".repeat(32)),
    pad: 32,
  });
  positive({
    slug: "empty-value",
    description: "pad 16 on an empty value: the GCM plaintext is 80 followed by 15 zero bytes.",
    envelope: await writer(16).encrypt("", { context: CONTEXT }),
    context: CONTEXT,
    value: Buffer.alloc(0),
    pad: 16,
  });
  const tricky = Buffer.from("61628000008000", "hex");
  positive({
    slug: "value-ends-like-padding",
    description:
      "pad 16 on the bytes 61 62 80 00 00 80 00: a value that itself ends in 0x80 and 0x00 comes back whole (the last 0x80 before the zeros is the writer's marker, never the value's).",
    envelope: await writer(16).encrypt(tricky, { context: CONTEXT }),
    context: CONTEXT,
    value: tricky,
    pad: 16,
  });
  positive({
    slug: "any-padding-length",
    description:
      "Sealed from the spec with 100 bytes of padding (0x80 then 99 zeros), a length no bucket rule gives: a decoder must accept any well-formed padding and must not assume a bucket.",
    envelope: await sealBySpec(Buffer.concat([email, Buffer.of(0x80), Buffer.alloc(99)]), 0x04),
    context: CONTEXT,
    value: email,
    pad: "none (sealed by the generator from the spec)",
  });
  positive({
    slug: "text-form",
    description: "Text form of a padded value (pad 32).",
    envelope: await writer(32).encrypt(email, { context: CONTEXT, output: "text" }),
    context: CONTEXT,
    value: email,
    pad: 32,
  });
  const operator = new Envelope({ encrypt: aes[1]!, decrypt: [aes[0]!], cache: false });
  const rewrapped = await operator.rewrap(p1Bytes, { context: CONTEXT, verifyBody: true });
  if (!rewrapped.subarray(0, 67).equals(p1Bytes.subarray(0, 67))) throw new Error("rewrap header");
  positive({
    slug: "rewrapped",
    description:
      "padded-pos-01 rewrapped from local-aes key 0 to key 1: bytes 0..67 (flags 0x04 included) and the body region are unchanged.",
    envelope: rewrapped,
    aesKey: 1,
    context: CONTEXT,
    value: email,
    pad: 32,
    derivedFrom: p1.id,
    mutation: { op: "rewrap", to: "local-aes key 1" },
  });
  const signed = await writer(32, { signed: true }).encrypt(email, { context: CONTEXT });
  positive({
    slug: "signed",
    description:
      "Suite 0x02 with flags 0x04: the flags byte (so the padded bit) and the padded body are signed; reader pinned to the writer.",
    envelope: signed,
    context: CONTEXT,
    trusted: [signerHex],
    value: email,
    pad: 32,
  });

  // --- negative
  negative({
    slug: "flag-cleared",
    description:
      "padded-pos-01 with flags bit 2 cleared (0x04 -> 0x00): the flags byte is in the AAD, so GCM fails (the padding would otherwise be returned as part of the value).",
    envelope: withFlags(p1Bytes, 0x00),
    error: "ENVELOPE_DECRYPT_FAILED",
    errorClass: "DecryptionError",
    derivedFrom: p1.id,
    mutation: { op: "set-u8", field: "flags", offset: 2, value: 0 },
  });
  const unpadded = await new Envelope({ encrypt: aes[0]!, cache: false }).encrypt(
    utf8("alice@example.com\x80"),
    { context: CONTEXT },
  );
  negative({
    slug: "flag-set-on-unpadded",
    description:
      "An unpadded value whose plaintext happens to end in 0x80, with flags bit 2 set: GCM fails (AAD), so the last byte is never stripped.",
    envelope: withFlags(unpadded, 0x04),
    error: "ENVELOPE_DECRYPT_FAILED",
    errorClass: "DecryptionError",
    derivedFrom: "(fresh unpadded value, same key and context)",
    mutation: { op: "set-u8", field: "flags", offset: 2, value: 4 },
  });
  const badPaddings: [string, string, Buffer][] = [
    ["padding-all-zero", "a GCM plaintext of 32 zero bytes (no 0x80 anywhere)", Buffer.alloc(32)],
    ["padding-missing", "the bare value, no padding at all", email],
    [
      "padding-byte-after-zeros",
      "the value, 0x80, zeros, then 0x01 as the last byte",
      Buffer.concat([email, Buffer.of(0x80), Buffer.alloc(13), Buffer.of(1)]),
    ],
    [
      "padding-marker-0x81",
      "the value, then 0x81 and zeros (wrong marker byte)",
      Buffer.concat([email, Buffer.of(0x81), Buffer.alloc(14)]),
    ],
  ];
  for (const [slug, what, plaintext] of badPaddings) {
    negative({
      slug,
      description: `Sealed from the spec with flags 0x04 and a valid tag over ${what}: the padding is malformed.`,
      envelope: await sealBySpec(plaintext, 0x04),
      error: "ENVELOPE_BAD_PADDING",
      errorClass: "DecryptionError",
      derivedFrom: "(sealed by the generator from the spec)",
      mutation: { op: "seal-by-spec", gcmPlaintextHex: plaintext.toString("hex") },
    });
  }
  negative({
    slug: "empty-ciphertext",
    description:
      "flags 0x04 and ciphertextLength 0 (a valid tag over the empty plaintext): refused by the decoder, since padding is at least one byte.",
    envelope: await sealBySpec(Buffer.alloc(0), 0x04),
    error: "ENVELOPE_BAD_FORMAT",
    errorClass: "FormatError",
    derivedFrom: "(sealed by the generator from the spec)",
    mutation: { op: "seal-by-spec", gcmPlaintextHex: "" },
  });
  negative({
    slug: "stream-key-and-padded",
    description:
      "padded-pos-01 with flags 0x06 (bits 1 and 2): a stream key envelope is never padded; refused by the decoder.",
    envelope: withFlags(p1Bytes, 0x06),
    error: "ENVELOPE_BAD_FORMAT",
    errorClass: "FormatError",
    derivedFrom: p1.id,
    mutation: { op: "set-u8", field: "flags", offset: 2, value: 6 },
  });
  negative({
    slug: "unknown-bit-3",
    description: "padded-pos-01 with flags 0x0c: bit 3 is still unknown.",
    envelope: withFlags(p1Bytes, 0x0c),
    error: "ENVELOPE_BAD_FORMAT",
    errorClass: "FormatError",
    derivedFrom: p1.id,
    mutation: { op: "set-u8", field: "flags", offset: 2, value: 12 },
  });
  negative({
    slug: "signed-flag-cleared",
    description:
      "padded-pos-10 (suite 0x02) with flags bit 2 cleared: the flags byte is signed, so the signature fails before any unwrap.",
    envelope: withFlags(signed, 0x00),
    trusted: [signerHex],
    error: "ENVELOPE_BAD_SIGNATURE",
    errorClass: "DecryptionError",
    derivedFrom: "padded-pos-10-signed",
    mutation: { op: "set-u8", field: "flags", offset: 2, value: 0 },
  });
  negative({
    slug: "text-flag-cleared",
    description: "Text form of padded-neg-001 (flags bit 2 cleared).",
    envelope: toText(withFlags(p1Bytes, 0x00)),
    error: "ENVELOPE_DECRYPT_FAILED",
    errorClass: "DecryptionError",
    derivedFrom: p1.id,
    mutation: { op: "text", of: "flag-cleared" },
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
  console.log(`wrote ${vectors.length} padded vectors`);
}

await main();
