/**
 * Generates the envelope format v1 test vectors in this folder.
 *
 *   pnpm exec tsx packages/core/test/vectors/v1/generate.ts           # refuses if vectors exist
 *   pnpm exec tsx packages/core/test/vectors/v1/generate.ts --force   # replaces them (a format change!)
 *
 * Positive vectors are built with the real @envelope/core API (Envelope, localAesProvider)
 * plus an independent `local-rsa` reference provider (./local-rsa-reference.ts). Negative
 * vectors are derived from them by editing bytes. Every vector is then decrypted with the
 * core, and the generator stops if the outcome differs from the one recorded here by hand:
 * the expected error codes are what the code really does, checked, not guessed.
 *
 * Keys, message ids and RSA-OAEP padding are random, so a second run gives different
 * bytes. That is why the checked-in vectors are never regenerated silently.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  constants as cryptoConstants,
  generateKeyPairSync,
  hkdfSync,
  privateDecrypt,
  randomBytes,
} from "node:crypto";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type DecryptOptions,
  type EncryptionContext,
  type EncryptOptions,
  Envelope,
  EnvelopeError,
  encodeContext,
  type KeyProvider,
  localAesProvider,
} from "@envelope/core";
import { referenceRsaProvider, rsaFingerprint } from "./local-rsa-reference.js";

const DIR = dirname(fileURLToPath(import.meta.url));
const VECTOR_FILE = /^(pos|neg)-.*\.(json|b64)$/;
const HKDF_INFO = "envelope:v1:suite1:key+commitment";
const KW_IV = Buffer.from("A6A6A6A6A6A6A6A6", "hex");

// ---------------------------------------------------------------- vector shape

type KeyName = "rsaA" | "rsaB" | "aes1" | "aes2" | "aes3";

interface Keys {
  localRsa?: { keyRef: string; privateKeyPem: string }[];
  localAes?: { keyRef: string; keyHex: string }[];
}

interface Field {
  field: string;
  offset: number;
  length: number;
  hex?: string;
}

type Expected =
  | { plaintextHex: string; plaintextUtf8?: string }
  | { plaintextRule: { repeatHex: string; length: number }; plaintextSha256: string }
  | { error: string; errorClass: string };

interface Vector {
  id: string;
  kind: "positive" | "negative";
  description: string;
  form: "binary" | "text";
  envelopeHex?: string;
  envelopeText?: string;
  envelopeFile?: string;
  envelopeSha256?: string;
  keys: Keys;
  decrypt: { context?: EncryptionContext };
  expected: Expected;
  derivedFrom?: string;
  mutation?: Record<string, unknown>;
  layout?: Field[];
  intermediate?: Record<string, unknown>;
}

// ---------------------------------------------------------------- keys

function rsaKey() {
  const { privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 3072,
    publicExponent: 0x10001,
  });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return { pem, keyRef: rsaFingerprint(createPublicKey(createPrivateKey(pem))) };
}

function aesKey() {
  const key = randomBytes(32);
  const keyRef = createHash("sha256")
    .update("envelope:local-aes:fingerprint:")
    .update(key)
    .digest("hex")
    .slice(0, 16);
  return { key, keyRef };
}

const K = {
  rsaA: rsaKey(),
  rsaB: rsaKey(),
  aes1: aesKey(),
  aes2: aesKey(),
  aes3: aesKey(),
};

function keysFor(names: readonly KeyName[]): Keys {
  const keys: Keys = {};
  for (const name of names) {
    if (name.startsWith("rsa")) {
      const k = K[name as "rsaA" | "rsaB"];
      keys.localRsa = [...(keys.localRsa ?? []), { keyRef: k.keyRef, privateKeyPem: k.pem }];
    } else {
      const k = K[name as "aes1" | "aes2" | "aes3"];
      keys.localAes = [
        ...(keys.localAes ?? []),
        { keyRef: k.keyRef, keyHex: k.key.toString("hex") },
      ];
    }
  }
  return keys;
}

function providersFor(keys: Keys): KeyProvider[] {
  const out: KeyProvider[] = [];
  if (keys.localRsa) out.push(referenceRsaProvider(keys.localRsa.map((k) => k.privateKeyPem)));
  if (keys.localAes) out.push(localAesProvider({ keys: keys.localAes.map((k) => k.keyHex) }));
  return out;
}

/** Encrypting providers: one per named key, in order (one entry each). */
function encryptors(names: readonly KeyName[]): KeyProvider[] {
  return names.map((name) => providersFor(keysFor([name]))[0]!);
}

// ---------------------------------------------------------------- independent parser

/** Walks the binary form per docs/FORMAT.md (a second decoder, independent of the core). */
function layout(b: Buffer, withHex = true): Field[] {
  const fields: Field[] = [];
  let o = 0;
  const take = (field: string, length: number): Buffer => {
    if (o + length > b.length) throw new Error(`layout: ${field} past the end`);
    const f: Field = { field, offset: o, length };
    if (withHex && length <= 512) f.hex = b.subarray(o, o + length).toString("hex");
    fields.push(f);
    o += length;
    return b.subarray(o - length, o);
  };
  take("version", 1);
  take("suite", 1);
  const flags = take("flags", 1)[0]!;
  take("messageId", 32);
  take("commitment", 32);
  const count = take("entryCount", 1)[0]!;
  for (let i = 0; i < count; i++) {
    const idLength = take(`entries[${i}].providerIdLength`, 1)[0]!;
    take(`entries[${i}].providerId`, idLength);
    const refLength = take(`entries[${i}].keyRefLength`, 2).readUInt16BE(0);
    take(`entries[${i}].keyRef`, refLength);
    const wrappedLength = take(`entries[${i}].wrappedLength`, 2).readUInt16BE(0);
    take(`entries[${i}].wrapped`, wrappedLength);
  }
  if (flags & 1) {
    const contextLength = take("contextLength", 2).readUInt16BE(0);
    take("context", contextLength);
  }
  const ciphertextLength = take("ciphertextLength", 4).readUInt32BE(0);
  take("ciphertext", ciphertextLength);
  take("tag", 16);
  if (o !== b.length) throw new Error("layout: trailing bytes");
  return fields;
}

function field(b: Buffer, name: string): { offset: number; length: number } {
  const f = layout(b, false).find((x) => x.field === name);
  if (!f) throw new Error(`no field ${name}`);
  return f;
}

function fieldBytes(b: Buffer, name: string): Buffer {
  const f = field(b, name);
  return b.subarray(f.offset, f.offset + f.length);
}

/** Independent canonical context encoder (checked against the core's below). */
function canonicalContext(context: EncryptionContext = {}): Buffer {
  const pairs = Object.entries(context)
    .map(([k, v]) => [Buffer.from(k, "utf8"), Buffer.from(v, "utf8")] as const)
    .sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts: Buffer[] = [u16(pairs.length)];
  for (const [k, v] of pairs) parts.push(u16(k.length), k, u16(v.length), v);
  return Buffer.concat(parts);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** Recovers the data key from the first entry the vector's keys open, without the core. */
function dataKeyOf(b: Buffer, keys: Keys): Buffer {
  const count = fieldBytes(b, "entryCount")[0]!;
  for (let i = 0; i < count; i++) {
    const id = fieldBytes(b, `entries[${i}].providerId`).toString("latin1");
    const ref = fieldBytes(b, `entries[${i}].keyRef`).toString("utf8");
    const wrapped = fieldBytes(b, `entries[${i}].wrapped`);
    const rsa = keys.localRsa?.find((k) => k.keyRef === ref);
    if (id === "local-rsa" && rsa) {
      return privateDecrypt(
        {
          key: rsa.privateKeyPem,
          padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING,
          oaepHash: "sha256",
        },
        wrapped,
      );
    }
    const aes = keys.localAes?.find((k) => k.keyRef === ref);
    if (id === "local-aes" && aes) {
      const d = createDecipheriv("id-aes256-wrap", Buffer.from(aes.keyHex, "hex"), KW_IV);
      return Buffer.concat([d.update(wrapped), d.final()]);
    }
  }
  throw new Error("no key opens any entry");
}

/** Every intermediate value a decoder computes, recomputed from the spec alone. */
function intermediate(b: Buffer, keys: Keys, context: EncryptionContext | undefined) {
  const dataKey = dataKeyOf(b, keys);
  const messageId = fieldBytes(b, "messageId");
  const okm = Buffer.from(hkdfSync("sha256", dataKey, messageId, Buffer.from(HKDF_INFO), 64));
  const flags = fieldBytes(b, "flags")[0]!;
  const canonical = flags & 1 ? fieldBytes(b, "context") : canonicalContext(context);
  if (!canonical.equals(encodeContext(context)))
    throw new Error("canonical context differs from core");
  if (!okm.subarray(32).equals(fieldBytes(b, "commitment"))) throw new Error("commitment differs");
  const aad = Buffer.concat([Buffer.from([1, 1, flags]), messageId, canonical]);
  // Open the body with node:crypto alone, to prove the spec is complete.
  const body = b.subarray(field(b, "ciphertext").offset);
  const d = createDecipheriv("aes-256-gcm", okm.subarray(0, 32), Buffer.alloc(12));
  d.setAAD(aad);
  d.setAuthTag(body.subarray(body.length - 16));
  const plaintext = Buffer.concat([d.update(body.subarray(0, body.length - 16)), d.final()]);
  return {
    values: {
      dataKeyHex: dataKey.toString("hex"),
      hkdf: {
        hash: "SHA-256",
        ikm: "dataKey",
        saltHex: messageId.toString("hex"),
        infoAscii: HKDF_INFO,
        infoHex: Buffer.from(HKDF_INFO).toString("hex"),
        length: 64,
      },
      okmHex: okm.toString("hex"),
      encryptionKeyHex: okm.subarray(0, 32).toString("hex"),
      commitmentHex: okm.subarray(32).toString("hex"),
      nonceHex: "00".repeat(12),
      canonicalContextHex: canonical.toString("hex"),
      aadHex: aad.toString("hex"),
    },
    plaintext,
  };
}

// ---------------------------------------------------------------- running a vector

function envelopeBytes(v: Vector, files: Map<string, string>): Buffer | string {
  if (v.envelopeText !== undefined) return v.envelopeText;
  if (v.envelopeHex !== undefined) return Buffer.from(v.envelopeHex, "hex");
  return Buffer.from(files.get(v.envelopeFile!)!.replace(/\s+/g, ""), "base64");
}

async function outcome(
  v: Vector,
  files: Map<string, string>,
): Promise<{ plaintext: Buffer } | { code: string; name: string }> {
  const [first, ...rest] = providersFor(v.keys);
  const envelope = new Envelope({ encrypt: first!, decrypt: rest, cache: false });
  try {
    const sealed = envelopeBytes(v, files);
    const plaintext = await envelope.decrypt(
      sealed,
      (v.decrypt.context ? { context: v.decrypt.context } : {}) as DecryptOptions<"bytes">,
    );
    return { plaintext };
  } catch (error) {
    if (!EnvelopeError.isInstance(error)) throw error;
    return { code: error.code, name: error.name };
  }
}

// ---------------------------------------------------------------- positive vectors

interface PositiveSpec {
  slug: string;
  description: string;
  encryptWith: KeyName[];
  decryptWith: KeyName[];
  plaintext: Buffer;
  text?: boolean;
  context?: EncryptionContext;
  storeContext?: boolean;
  decryptContext?: EncryptionContext | "none";
  output?: "text";
  rule?: { repeatHex: string; length: number };
}

const vectors: Vector[] = [];
const files = new Map<string, string>();
const bases = new Map<string, { bytes: Buffer; vector: Vector }>();

async function seal(
  spec: Pick<PositiveSpec, "encryptWith" | "plaintext" | "context" | "storeContext">,
) {
  const envelope = new Envelope({
    encrypt: encryptors(spec.encryptWith),
    storeContext: spec.storeContext ?? false,
    cache: false,
  });
  const options: EncryptOptions<"binary"> = spec.context ? { context: spec.context } : {};
  return envelope.encrypt(spec.plaintext, options);
}

async function positive(spec: PositiveSpec): Promise<Buffer> {
  const bytes = await seal(spec);
  const keys = keysFor(spec.decryptWith);
  const decryptContext =
    spec.decryptContext === "none" ? undefined : (spec.decryptContext ?? spec.context);
  const id = `pos-${String(vectors.filter((v) => v.kind === "positive").length + 1).padStart(2, "0")}-${spec.slug}`;
  const large = bytes.length > 64 * 1024;
  const { values, plaintext } = intermediate(bytes, keys, spec.context);
  if (!plaintext.equals(spec.plaintext)) throw new Error(`${id}: independent decrypt differs`);
  const vector: Vector = {
    id,
    kind: "positive",
    description: spec.description,
    form: spec.output === "text" ? "text" : "binary",
    keys,
    decrypt: decryptContext ? { context: decryptContext } : {},
    expected: spec.rule
      ? {
          plaintextRule: spec.rule,
          plaintextSha256: createHash("sha256").update(spec.plaintext).digest("hex"),
        }
      : {
          plaintextHex: spec.plaintext.toString("hex"),
          ...(spec.text ? { plaintextUtf8: spec.plaintext.toString("utf8") } : {}),
        },
    layout: layout(bytes, !large),
    intermediate: values,
  };
  if (spec.output === "text") vector.envelopeText = `ev1:${bytes.toString("base64url")}`;
  else if (large) {
    vector.envelopeFile = `${id}.envelope.b64`;
    vector.envelopeSha256 = createHash("sha256").update(bytes).digest("hex");
    files.set(vector.envelopeFile, `${bytes.toString("base64").replace(/.{76}/g, "$&\n")}\n`);
  } else vector.envelopeHex = bytes.toString("hex");
  vectors.push(vector);
  bases.set(spec.slug, { bytes, vector });
  return bytes;
}

// ---------------------------------------------------------------- negative vectors

interface NegativeSpec {
  slug: string;
  description: string;
  from: string;
  error: string;
  /** The mutated envelope: bytes, or text for text-form vectors. */
  envelope: Buffer | string;
  mutation: Record<string, unknown>;
  keys?: KeyName[];
  decryptContext?: EncryptionContext | "none";
}

const CLASS: Record<string, string> = {
  ENVELOPE_BAD_FORMAT: "FormatError",
  ENVELOPE_UNSUPPORTED_VERSION: "FormatError",
  ENVELOPE_UNSUPPORTED_SUITE: "FormatError",
  ENVELOPE_LIMIT_EXCEEDED: "FormatError",
  ENVELOPE_DECRYPT_FAILED: "DecryptionError",
  ENVELOPE_COMMITMENT_MISMATCH: "DecryptionError",
  ENVELOPE_CONTEXT_MISMATCH: "DecryptionError",
  ENVELOPE_NO_MATCHING_KEY: "DecryptionError",
  ENVELOPE_UNWRAP_FAILED: "ProviderError",
  ENVELOPE_PROVIDER_CONTRACT: "ProviderError",
};

function negative(spec: NegativeSpec): void {
  const base = bases.get(spec.from)!.vector;
  const id = `neg-${String(vectors.filter((v) => v.kind === "negative").length + 1).padStart(3, "0")}-${spec.slug}`;
  const context =
    spec.decryptContext === undefined
      ? base.decrypt.context
      : spec.decryptContext === "none"
        ? undefined
        : spec.decryptContext;
  const vector: Vector = {
    id,
    kind: "negative",
    description: spec.description,
    form: typeof spec.envelope === "string" ? "text" : "binary",
    keys: spec.keys ? keysFor(spec.keys) : base.keys,
    decrypt: context ? { context } : {},
    expected: { error: spec.error, errorClass: CLASS[spec.error]! },
    derivedFrom: base.id,
    mutation: spec.mutation,
  };
  if (typeof spec.envelope === "string") vector.envelopeText = spec.envelope;
  else vector.envelopeHex = spec.envelope.toString("hex");
  vectors.push(vector);
}

const flip = (b: Buffer, offset: number, bit = 0): Buffer => {
  const c = Buffer.from(b);
  c[offset]! ^= 1 << bit;
  return c;
};
const replace = (b: Buffer, offset: number, length: number, insert: Buffer): Buffer =>
  Buffer.concat([b.subarray(0, offset), insert, b.subarray(offset + length)]);
const setField = (b: Buffer, name: string, value: Buffer): Buffer => {
  const f = field(b, name);
  return replace(b, f.offset, f.length, value);
};
/** Replaces a variable-length field together with its length prefix. */
const setVariable = (b: Buffer, lengthName: string, name: string, value: Buffer): Buffer => {
  const l = field(b, lengthName);
  const f = field(b, name);
  const prefix = l.length === 1 ? Buffer.from([value.length]) : u16(value.length);
  return replace(b, l.offset, f.offset + f.length - l.offset, Buffer.concat([prefix, value]));
};

// ---------------------------------------------------------------- the vectors

const ctx = { table: "users", column: "email", id: "42" };
const repeat = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const MIB = 1024 * 1024;
const big = Buffer.alloc(MIB);
for (let o = 0; o < MIB; o += 256) repeat.copy(big, o);

async function main(): Promise<void> {
  const force = process.argv.includes("--force");
  const existing = readdirSync(DIR).filter((f) => VECTOR_FILE.test(f));
  if (existing.length > 0 && !force) {
    console.error(
      `packages/core/test/vectors/v1 already holds ${existing.length} vector files. Vectors are checked in and never regenerated silently: a changed vector is a format change. Pass --force to replace them.`,
    );
    process.exit(1);
  }

  // --- positive
  await positive({
    slug: "empty-plaintext",
    description: "Empty plaintext (0 bytes), one local-aes entry, no context (canonical 0000).",
    encryptWith: ["aes1"],
    decryptWith: ["aes1"],
    plaintext: Buffer.alloc(0),
    text: true,
  });
  await positive({
    slug: "one-byte",
    description:
      "One byte of plaintext (0x2a), one local-rsa entry (RSA-3072, OAEP-SHA256), no context.",
    encryptWith: ["rsaA"],
    decryptWith: ["rsaA"],
    plaintext: Buffer.from([0x2a]),
  });
  await positive({
    slug: "unicode-text",
    description:
      "Unicode text (Latin-1 accents, CJK, an astral-plane emoji), local-rsa, context with a non-ASCII value.",
    encryptWith: ["rsaA"],
    decryptWith: ["rsaA"],
    plaintext: Buffer.from("Grüße, 世界! 🔐 naïve café — ünïcödé", "utf8"),
    text: true,
    context: { table: "users", column: "bio", id: "42", tenant: "Zürich" },
  });
  await positive({
    slug: "1mib",
    description:
      "1 MiB plaintext: the bytes 00..ff repeated 4096 times. Envelope (binary) in a separate base64 file; plaintext given as a rule plus its SHA-256.",
    encryptWith: ["aes1"],
    decryptWith: ["aes1"],
    plaintext: big,
    rule: { repeatHex: repeat.toString("hex"), length: MIB },
    context: { table: "files", column: "blob", id: "7" },
  });
  await positive({
    slug: "empty-context-explicit",
    description:
      "Context {} passed explicitly on encrypt and decrypt: same bytes as no context (canonical 0000).",
    encryptWith: ["aes2"],
    decryptWith: ["aes2"],
    plaintext: Buffer.from("no context here", "utf8"),
    text: true,
    context: {},
    decryptContext: {},
  });
  await positive({
    slug: "context-aes",
    description:
      "The worked example of docs/FORMAT.md: local-aes, non-empty context not stored (the caller supplies it).",
    encryptWith: ["aes1"],
    decryptWith: ["aes1"],
    plaintext: Buffer.from("alice@example.com", "utf8"),
    text: true,
    context: ctx,
  });
  await positive({
    slug: "stored-context",
    description:
      "Flag bit 0 set: the canonical context is stored; decrypt is called without a context.",
    encryptWith: ["aes1"],
    decryptWith: ["aes1"],
    plaintext: Buffer.from("alice@example.com", "utf8"),
    text: true,
    context: ctx,
    storeContext: true,
    decryptContext: "none",
  });
  await positive({
    slug: "stored-context-given",
    description:
      "Stored context, and decrypt is also given the same context with keys in another insertion order: it must match canonically.",
    encryptWith: ["aes1"],
    decryptWith: ["aes1"],
    plaintext: Buffer.from("+1 555 0100", "utf8"),
    text: true,
    context: ctx,
    storeContext: true,
    decryptContext: { id: "42", column: "email", table: "users" },
  });
  await positive({
    slug: "stored-empty-context",
    description: "Flag bit 0 set with an empty context: contextLength 2, context 0000.",
    encryptWith: ["aes1"],
    decryptWith: ["aes1"],
    plaintext: Buffer.from("x", "utf8"),
    text: true,
    storeContext: true,
    decryptContext: "none",
  });
  await positive({
    slug: "multiwrap-2",
    description:
      "Two entries (local-rsa, then local-aes) around one data key; only the local-aes key is configured, so the second entry opens it.",
    encryptWith: ["rsaA", "aes2"],
    decryptWith: ["aes2"],
    plaintext: Buffer.from("123-45-6789", "utf8"),
    text: true,
    context: { table: "users", column: "ssn", id: "42" },
  });
  await positive({
    slug: "multiwrap-3",
    description:
      "Three entries (local-aes, local-rsa, local-aes); only the RSA key is configured, so the middle entry opens it.",
    encryptWith: ["aes1", "rsaA", "aes2"],
    decryptWith: ["rsaA"],
    plaintext: Buffer.from("4111 1111 1111 1111", "utf8"),
    text: true,
    context: { table: "cards", column: "pan", id: "9" },
  });
  const m3 = bases.get("multiwrap-3")!.bytes;
  // Same envelope, opened by the third entry's key only.
  vectors.push({
    ...bases.get("multiwrap-3")!.vector,
    id: "pos-12-multiwrap-3-last-entry",
    description:
      "The multiwrap-3 envelope, opened with only the key of the third entry (local-aes).",
    keys: keysFor(["aes2"]),
    intermediate: intermediate(m3, keysFor(["aes2"]), { table: "cards", column: "pan", id: "9" })
      .values,
  });
  // Text form: pick a plaintext whose envelope length is 1 mod 3, so the last base64url
  // character carries 4 unused bits (needed by the non-canonical negative vector).
  let phone = "+1 (555) 010-9999";
  const textSpec = {
    encryptWith: ["aes1"] as KeyName[],
    context: { table: "users", column: "phone", id: "42" },
  };
  while ((68 + 1 + 9 + 2 + 16 + 2 + 40 + 4 + Buffer.byteLength(phone) + 16) % 3 !== 1) phone += " ";
  await positive({
    slug: "text-form",
    description:
      "Text form: 'ev1:' + unpadded base64url of the binary form. local-aes, context not stored. The binary length is 1 mod 3.",
    ...textSpec,
    decryptWith: ["aes1"],
    plaintext: Buffer.from(phone, "utf8"),
    text: true,
    output: "text",
  });
  const textBase = bases.get("text-form")!;
  textBase.vector.envelopeText = `ev1:${textBase.bytes.toString("base64url")}`;
  await positive({
    slug: "aes-rotation",
    description:
      "local-aes only, with two keys configured (the new one first, the old one second): the envelope under the old key still opens.",
    encryptWith: ["aes1"],
    decryptWith: ["aes3", "aes1"],
    plaintext: Buffer.from("rotated but readable", "utf8"),
    text: true,
    context: ctx,
  });
  // Multi-wrap where the first entry is damaged: the decryptor moves on to the next entry.
  {
    const base = bases.get("multiwrap-2")!;
    const w = field(base.bytes, "entries[0].wrapped");
    const bytes = flip(base.bytes, w.offset + 100, 3);
    const keys = keysFor(["rsaA", "aes2"]);
    vectors.push({
      ...base.vector,
      id: "pos-15-multiwrap-first-entry-damaged",
      description:
        "multiwrap-2 with a bit flipped in the local-rsa entry's wrapped key and both keys configured: the RSA entry fails to unwrap, the local-aes entry opens the envelope.",
      envelopeHex: bytes.toString("hex"),
      keys,
      derivedFrom: base.vector.id,
      mutation: { op: "flip-bit", field: "entries[0].wrapped", offset: w.offset + 100, bit: 3 },
      layout: layout(bytes),
      intermediate: intermediate(bytes, keysFor(["aes2"]), base.vector.decrypt.context).values,
    });
  }
  // Rewrap: same body, new entries.
  {
    const base = bases.get("context-aes")!;
    const envelope = new Envelope({ encrypt: encryptors(["aes1"]), cache: false });
    const bytes = await envelope.rewrap(base.bytes, { to: encryptors(["rsaA"]), context: ctx });
    const body = (b: Buffer) => b.subarray(field(b, "ciphertextLength").offset);
    if (!body(bytes).equals(body(base.bytes))) throw new Error("rewrap changed the body");
    const keys = keysFor(["rsaA"]);
    vectors.push({
      ...base.vector,
      id: "pos-16-rewrapped",
      description:
        "The context-aes envelope rewrapped to local-rsa: header and body (ciphertextLength, ciphertext, tag) are byte-identical to pos-06; only the entries changed.",
      envelopeHex: bytes.toString("hex"),
      keys,
      derivedFrom: base.vector.id,
      layout: layout(bytes),
      intermediate: intermediate(bytes, keys, ctx).values,
    });
  }

  // Extra envelopes (not vectors) to splice from: same keys, other messages.
  const S = bases.get("stored-context")!.bytes;
  const P = bases.get("context-aes")!.bytes;
  const R = bases.get("unicode-text")!.bytes;
  const M2 = bases.get("multiwrap-2")!.bytes;
  const S2 = await seal({
    encryptWith: ["aes1"],
    plaintext: Buffer.from("bob@example.org"),
    context: ctx,
    storeContext: true,
  });
  const R2 = await seal({ encryptWith: ["rsaA"], plaintext: Buffer.from("other"), context: ctx });
  const M2b = await seal({ encryptWith: ["rsaA", "aes2"], plaintext: Buffer.from("other") });

  // --- negative: truncation at every field boundary of the stored-context envelope
  const boundaries = layout(S, false);
  negative({
    slug: "truncated-empty",
    description: "Zero bytes.",
    from: "stored-context",
    error: "ENVELOPE_BAD_FORMAT",
    envelope: Buffer.alloc(0),
    mutation: { op: "truncate", length: 0 },
  });
  for (const f of boundaries) {
    const end = f.offset + f.length;
    if (end === S.length) continue; // the whole envelope
    negative({
      slug: `truncated-after-${f.field.replace(/\[(\d+)\]\./, "$1-")}`,
      description: `Truncated right after field ${f.field} (${end} of ${S.length} bytes).`,
      from: "stored-context",
      error: "ENVELOPE_BAD_FORMAT",
      envelope: S.subarray(0, end),
      mutation: { op: "truncate", length: end, after: f.field },
    });
  }
  negative({
    slug: "truncated-inside-tag",
    description: "Last byte of the tag missing.",
    from: "stored-context",
    error: "ENVELOPE_BAD_FORMAT",
    envelope: S.subarray(0, S.length - 1),
    mutation: { op: "truncate", length: S.length - 1, inside: "tag" },
  });

  // --- negative: a bit flip in each field
  const flipIn = (
    slug: string,
    from: string,
    bytes: Buffer,
    name: string,
    index: number,
    bit: number,
    error: string,
    description: string,
    extra: Partial<NegativeSpec> = {},
  ) => {
    const f = field(bytes, name);
    const offset = f.offset + (index < 0 ? f.length + index : index);
    negative({
      slug,
      description,
      from,
      error,
      envelope: flip(bytes, offset, bit),
      mutation: { op: "flip-bit", field: name, offset, bit },
      ...extra,
    });
  };
  flipIn(
    "flip-version",
    "stored-context",
    S,
    "version",
    0,
    0,
    "ENVELOPE_UNSUPPORTED_VERSION",
    "version 0x01 -> 0x00.",
  );
  flipIn(
    "flip-suite",
    "stored-context",
    S,
    "suite",
    0,
    2,
    "ENVELOPE_UNSUPPORTED_SUITE",
    // Suite 3 exists since FORMAT.md §15; the checked-in neg-020 flipped bit 1 (-> 0x03)
    // and the v1 family pins its new outcome. A regeneration flips bit 2 (-> 0x05).
    "suite 0x01 -> 0x05.",
  );
  flipIn(
    "flip-flags-clear-stored",
    "stored-context",
    S,
    "flags",
    0,
    0,
    "ENVELOPE_BAD_FORMAT",
    "flags 0x01 -> 0x00: the decoder reads contextLength||context-count as the u32 ciphertextLength, which points past the end.",
  );
  flipIn(
    "flip-flags-set-stored",
    "context-aes",
    P,
    "flags",
    0,
    0,
    "ENVELOPE_BAD_FORMAT",
    "flags 0x00 -> 0x01 on an envelope without a stored context: contextLength is read from the first two bytes of ciphertextLength (0x0000), below the minimum of 2.",
  );
  flipIn(
    "flip-flags-unknown-bit",
    "stored-context",
    S,
    "flags",
    0,
    7,
    "ENVELOPE_BAD_FORMAT",
    "flags 0x01 -> 0x81: unknown flag bit 7.",
  );
  flipIn(
    "flip-message-id",
    "stored-context",
    S,
    "messageId",
    5,
    4,
    "ENVELOPE_COMMITMENT_MISMATCH",
    "A bit of the message id (the HKDF salt): the derived commitment no longer matches.",
  );
  flipIn(
    "flip-commitment",
    "stored-context",
    S,
    "commitment",
    31,
    0,
    "ENVELOPE_COMMITMENT_MISMATCH",
    "The last bit of the commitment.",
  );
  flipIn(
    "flip-entry-count-to-zero",
    "stored-context",
    S,
    "entryCount",
    0,
    0,
    "ENVELOPE_BAD_FORMAT",
    "entryCount 1 -> 0.",
  );
  flipIn(
    "flip-entry-count-to-three",
    "stored-context",
    S,
    "entryCount",
    0,
    1,
    "ENVELOPE_BAD_FORMAT",
    "entryCount 1 -> 3: the second entry is read from the context bytes (providerIdLength 0x00).",
  );
  flipIn(
    "flip-provider-id-length",
    "stored-context",
    S,
    "entries[0].providerIdLength",
    0,
    0,
    "ENVELOPE_BAD_FORMAT",
    "providerIdLength 9 -> 8: the provider id 'local-ae' is followed by misaligned fields.",
  );
  flipIn(
    "flip-provider-id-valid",
    "stored-context",
    S,
    "entries[0].providerId",
    8,
    1,
    "ENVELOPE_NO_MATCHING_KEY",
    "providerId 'local-aes' -> 'local-aeq': still a valid id, but no configured provider has it.",
  );
  flipIn(
    "flip-provider-id-invalid",
    "stored-context",
    S,
    "entries[0].providerId",
    0,
    5,
    "ENVELOPE_BAD_FORMAT",
    "providerId 'local-aes' -> 'Local-aes': upper case is outside the provider id pattern.",
  );
  flipIn(
    "flip-key-ref-length",
    "stored-context",
    S,
    "entries[0].keyRefLength",
    1,
    0,
    "ENVELOPE_BAD_FORMAT",
    "keyRefLength 16 -> 17: the fields after it are misaligned.",
  );
  flipIn(
    "flip-key-ref",
    "stored-context",
    S,
    "entries[0].keyRef",
    0,
    6,
    "ENVELOPE_NO_MATCHING_KEY",
    "First keyRef character's bit 6 flipped (still ASCII): the entry names a key that is not configured.",
  );
  flipIn(
    "flip-key-ref-invalid-utf8",
    "stored-context",
    S,
    "entries[0].keyRef",
    0,
    7,
    "ENVELOPE_BAD_FORMAT",
    "First keyRef byte's bit 7 flipped: the key reference is not valid UTF-8.",
  );
  flipIn(
    "flip-wrapped-length",
    "stored-context",
    S,
    "entries[0].wrappedLength",
    1,
    3,
    "ENVELOPE_BAD_FORMAT",
    "wrappedLength 40 -> 32: the fields after it are misaligned.",
  );
  flipIn(
    "flip-wrapped-aes",
    "stored-context",
    S,
    "entries[0].wrapped",
    20,
    0,
    "ENVELOPE_UNWRAP_FAILED",
    "A bit of the AES-KW wrapped key: the RFC 3394 integrity check fails.",
  );
  flipIn(
    "flip-wrapped-rsa",
    "unicode-text",
    R,
    "entries[0].wrapped",
    200,
    2,
    "ENVELOPE_UNWRAP_FAILED",
    "Same fingerprint, corrupted RSA-OAEP wrapped key: OAEP decoding fails.",
  );
  flipIn(
    "flip-context-length",
    "stored-context",
    S,
    "contextLength",
    1,
    0,
    "ENVELOPE_LIMIT_EXCEEDED",
    "contextLength 39 -> 38: the last context byte ('s' = 0x73) becomes the top byte of ciphertextLength, 0x73000000 > 1 GiB.",
  );
  flipIn(
    "flip-context-count",
    "stored-context",
    S,
    "context",
    1,
    2,
    "ENVELOPE_BAD_FORMAT",
    "Stored context pair count 3 -> 7: the stored context is malformed.",
  );
  {
    const f = field(S, "context");
    const where = S.subarray(f.offset, f.offset + f.length).indexOf("email");
    flipIn(
      "flip-context-value",
      "stored-context",
      S,
      "context",
      where,
      0,
      "ENVELOPE_DECRYPT_FAILED",
      "Stored context value 'email' -> 'dmail' (still canonical), decrypt without a context: the AAD differs, GCM fails.",
    );
    flipIn(
      "flip-context-value-context-given",
      "stored-context",
      S,
      "context",
      where,
      0,
      "ENVELOPE_CONTEXT_MISMATCH",
      "Same flip, but decrypt is given the original context: it differs from the stored one.",
      { decryptContext: ctx },
    );
  }
  flipIn(
    "flip-ciphertext-length-low",
    "stored-context",
    S,
    "ciphertextLength",
    3,
    0,
    "ENVELOPE_BAD_FORMAT",
    "ciphertextLength 17 -> 16: one trailing byte.",
  );
  flipIn(
    "flip-ciphertext-length-high",
    "stored-context",
    S,
    "ciphertextLength",
    0,
    7,
    "ENVELOPE_LIMIT_EXCEEDED",
    "ciphertextLength bit 31 set: over the 1 GiB limit.",
  );
  flipIn(
    "flip-ciphertext",
    "stored-context",
    S,
    "ciphertext",
    0,
    0,
    "ENVELOPE_DECRYPT_FAILED",
    "First ciphertext bit.",
  );
  flipIn("flip-tag", "stored-context", S, "tag", 15, 7, "ENVELOPE_DECRYPT_FAILED", "Last tag bit.");

  // --- negative: context
  const ctxCases: [string, string, EncryptionContext | "none", string][] = [
    [
      "context-wrong-value",
      "context-aes",
      { ...ctx, id: "43" },
      "Context of another row (id 43): GCM fails.",
    ],
    [
      "context-key-added",
      "context-aes",
      { ...ctx, tenant: "acme" },
      "Context with an extra key: GCM fails.",
    ],
    [
      "context-key-removed",
      "context-aes",
      { table: "users", column: "email" },
      "Context without id: GCM fails.",
    ],
    ["context-missing", "context-aes", "none", "No context given (canonical 0000): GCM fails."],
    [
      "stored-context-wrong-value",
      "stored-context",
      { ...ctx, id: "43" },
      "Stored context, another one given.",
    ],
    [
      "stored-context-key-added",
      "stored-context",
      { ...ctx, tenant: "acme" },
      "Stored context, one with an extra key given.",
    ],
    [
      "stored-context-key-removed",
      "stored-context",
      { table: "users", column: "email" },
      "Stored context, one without id given.",
    ],
    [
      "stored-context-empty-given",
      "stored-context",
      {},
      "Stored context, {} given: {} is a context too (0000) and differs.",
    ],
  ];
  for (const [slug, from, context, description] of ctxCases) {
    negative({
      slug,
      description,
      from,
      error: from === "stored-context" ? "ENVELOPE_CONTEXT_MISMATCH" : "ENVELOPE_DECRYPT_FAILED",
      envelope: bases.get(from)!.bytes,
      mutation: { op: "decrypt-context" },
      decryptContext: context,
    });
  }

  // --- negative: keys
  negative({
    slug: "wrong-rsa-key",
    description: "A different RSA key is configured: no entry names it.",
    from: "unicode-text",
    error: "ENVELOPE_NO_MATCHING_KEY",
    envelope: R,
    mutation: { op: "keys" },
    keys: ["rsaB"],
  });
  negative({
    slug: "wrong-aes-key",
    description: "A different local-aes key is configured.",
    from: "context-aes",
    error: "ENVELOPE_NO_MATCHING_KEY",
    envelope: P,
    mutation: { op: "keys" },
    keys: ["aes3"],
  });
  negative({
    slug: "wrong-provider",
    description: "Only a local-aes key configured for a local-rsa envelope.",
    from: "unicode-text",
    error: "ENVELOPE_NO_MATCHING_KEY",
    envelope: R,
    mutation: { op: "keys" },
    keys: ["aes1"],
  });

  // --- negative: version / suite
  const setAt = (b: Buffer, offset: number, value: number) => {
    const c = Buffer.from(b);
    c[offset] = value;
    return c;
  };
  for (const [slug, offset, value, error] of [
    ["version-2", 0, 2, "ENVELOPE_UNSUPPORTED_VERSION"],
    ["version-255", 0, 255, "ENVELOPE_UNSUPPORTED_VERSION"],
    // Suite 2 is signed mode since FORMAT.md §14; the checked-in neg-058 was made with 2
    // (the v1 family pins its new outcome). A regeneration uses the next unknown suite (3 is
    // FORMAT.md §15 since, so 4).
    ["suite-4", 1, 4, "ENVELOPE_UNSUPPORTED_SUITE"],
    ["suite-0", 1, 0, "ENVELOPE_UNSUPPORTED_SUITE"],
  ] as const) {
    negative({
      slug,
      description: `${offset === 0 ? "version" : "suite"} byte set to ${value}.`,
      from: "stored-context",
      error,
      envelope: setAt(S, offset, value),
      mutation: { op: "set-u8", field: offset === 0 ? "version" : "suite", offset, value },
    });
  }
  negative({
    slug: "version-and-suite-unknown",
    description: "version 2 and suite 2: the version is checked first.",
    from: "stored-context",
    error: "ENVELOPE_UNSUPPORTED_VERSION",
    envelope: setAt(setAt(S, 0, 2), 1, 2),
    mutation: { op: "set-u8", fields: ["version", "suite"], value: 2 },
  });

  // --- negative: lengths past the end and limits
  const lengthCases: [string, string, Buffer, string, string][] = [
    [
      "provider-id-length-0",
      "entries[0].providerIdLength",
      Buffer.from([0]),
      "ENVELOPE_BAD_FORMAT",
      "providerIdLength 0.",
    ],
    [
      "provider-id-length-65",
      "entries[0].providerIdLength",
      Buffer.from([65]),
      "ENVELOPE_BAD_FORMAT",
      "providerIdLength 65 (limit 64).",
    ],
    [
      "key-ref-length-0",
      "entries[0].keyRefLength",
      u16(0),
      "ENVELOPE_BAD_FORMAT",
      "keyRefLength 0.",
    ],
    [
      "key-ref-length-past-end",
      "entries[0].keyRefLength",
      u16(2048),
      "ENVELOPE_BAD_FORMAT",
      "keyRefLength 2048 (the limit): points past the end.",
    ],
    [
      "key-ref-length-2049",
      "entries[0].keyRefLength",
      u16(2049),
      "ENVELOPE_BAD_FORMAT",
      "keyRefLength 2049 (limit 2048).",
    ],
    [
      "wrapped-length-0",
      "entries[0].wrappedLength",
      u16(0),
      "ENVELOPE_BAD_FORMAT",
      "wrappedLength 0.",
    ],
    [
      "wrapped-length-past-end",
      "entries[0].wrappedLength",
      u16(4096),
      "ENVELOPE_BAD_FORMAT",
      "wrappedLength 4096 (the limit): points past the end.",
    ],
    [
      "wrapped-length-4097",
      "entries[0].wrappedLength",
      u16(4097),
      "ENVELOPE_BAD_FORMAT",
      "wrappedLength 4097 (limit 4096).",
    ],
    [
      "context-length-0",
      "contextLength",
      u16(0),
      "ENVELOPE_BAD_FORMAT",
      "contextLength 0 (minimum 2).",
    ],
    [
      "context-length-1",
      "contextLength",
      u16(1),
      "ENVELOPE_BAD_FORMAT",
      "contextLength 1 (minimum 2).",
    ],
    [
      "context-length-past-end",
      "contextLength",
      u16(0xffff),
      "ENVELOPE_BAD_FORMAT",
      "contextLength 65535: points past the end.",
    ],
    [
      "ciphertext-length-past-end",
      "ciphertextLength",
      u32(17 + 1),
      "ENVELOPE_BAD_FORMAT",
      "ciphertextLength one more than the real one.",
    ],
    [
      "ciphertext-length-1gib",
      "ciphertextLength",
      u32(2 ** 30),
      "ENVELOPE_BAD_FORMAT",
      "ciphertextLength exactly 1 GiB (allowed): points past the end.",
    ],
    [
      "ciphertext-length-over-1gib",
      "ciphertextLength",
      u32(2 ** 30 + 1),
      "ENVELOPE_LIMIT_EXCEEDED",
      "ciphertextLength 1 GiB + 1.",
    ],
    [
      "ciphertext-length-max",
      "ciphertextLength",
      u32(0xffffffff),
      "ENVELOPE_LIMIT_EXCEEDED",
      "ciphertextLength 0xffffffff.",
    ],
    [
      "entry-count-17",
      "entryCount",
      Buffer.from([17]),
      "ENVELOPE_BAD_FORMAT",
      "entryCount 17 (limit 16).",
    ],
  ];
  for (const [slug, name, value, error, description] of lengthCases) {
    const f = field(S, name);
    negative({
      slug,
      description,
      from: "stored-context",
      error,
      envelope: setField(S, name, value),
      mutation: { op: "set-field", field: name, offset: f.offset, valueHex: value.toString("hex") },
    });
  }
  negative({
    slug: "trailing-byte",
    description: "One 0x00 byte appended.",
    from: "stored-context",
    error: "ENVELOPE_BAD_FORMAT",
    envelope: Buffer.concat([S, Buffer.from([0])]),
    mutation: { op: "append", hex: "00" },
  });
  {
    const first = field(S, "entries[0].providerIdLength").offset;
    const after = field(S, "entries[0].wrapped");
    const bytes = replace(
      setAt(S, 67, 0),
      first,
      after.offset + after.length - first,
      Buffer.alloc(0),
    );
    negative({
      slug: "zero-entries",
      description: "entryCount 0 and the only entry removed (an otherwise well-formed envelope).",
      from: "stored-context",
      error: "ENVELOPE_BAD_FORMAT",
      envelope: bytes,
      mutation: { op: "remove-entry", entry: 0, entryCount: 0 },
    });
  }

  // --- negative: splicing between envelopes under the same key
  negative({
    slug: "commitment-from-other-envelope",
    description: "The commitment of another envelope (same key, same context) copied in.",
    from: "stored-context",
    error: "ENVELOPE_COMMITMENT_MISMATCH",
    envelope: setField(S, "commitment", fieldBytes(S2, "commitment")),
    mutation: { op: "splice", field: "commitment", from: "another envelope" },
  });
  negative({
    slug: "spliced-wrapped-key-aes",
    description:
      "The wrapped key of another envelope under the same local-aes key (same keyRef): it unwraps fine, to another data key, and the commitment check rejects it.",
    from: "stored-context",
    error: "ENVELOPE_COMMITMENT_MISMATCH",
    envelope: setField(S, "entries[0].wrapped", fieldBytes(S2, "entries[0].wrapped")),
    mutation: { op: "splice", field: "entries[0].wrapped", from: "another envelope" },
  });
  negative({
    slug: "spliced-wrapped-key-rsa",
    description: "The same, for a local-rsa entry.",
    from: "unicode-text",
    error: "ENVELOPE_COMMITMENT_MISMATCH",
    envelope: setField(R, "entries[0].wrapped", fieldBytes(R2, "entries[0].wrapped")),
    mutation: { op: "splice", field: "entries[0].wrapped", from: "another envelope" },
  });
  {
    const from = field(S, "ciphertextLength").offset;
    const bytes = Buffer.concat([
      S.subarray(0, from),
      S2.subarray(field(S2, "ciphertextLength").offset),
    ]);
    negative({
      slug: "spliced-body",
      description:
        "Header and entries of one envelope, body (ciphertextLength, ciphertext, tag) of another under the same key and context: the commitment matches, GCM fails.",
      from: "stored-context",
      error: "ENVELOPE_DECRYPT_FAILED",
      envelope: bytes,
      mutation: { op: "splice", field: "body", from: "another envelope" },
    });
  }
  {
    const w0 = fieldBytes(M2b, "entries[0].wrapped");
    let bytes = setField(M2, "entries[0].wrapped", w0);
    const w1 = field(bytes, "entries[1].wrapped");
    bytes = flip(bytes, w1.offset + 5, 0);
    negative({
      slug: "multiwrap-all-entries-fail",
      description:
        "multiwrap-2 with entry 0 spliced from another envelope (commitment mismatch) and entry 1 corrupted (unwrap fails), both keys configured: the reported error prefers the provider failure over the commitment mismatch.",
      from: "multiwrap-2",
      error: "ENVELOPE_UNWRAP_FAILED",
      envelope: bytes,
      mutation: { op: "splice+flip-bit", fields: ["entries[0].wrapped", "entries[1].wrapped"] },
      keys: ["rsaA", "aes2"],
    });
  }
  {
    // A validly wrapped 24-byte value under the right key: unwrap succeeds, length is wrong.
    const c = createCipheriv("id-aes256-wrap", K.aes1.key, KW_IV);
    const wrapped = Buffer.concat([c.update(randomBytes(24)), c.final()]);
    const bytes = setVariable(S, "entries[0].wrappedLength", "entries[0].wrapped", wrapped);
    negative({
      slug: "wrapped-key-wrong-dek-length",
      description:
        "The entry is a valid AES-KW wrapping (under the right key) of a 24-byte value: the unwrapped data key is not 32 bytes.",
      from: "stored-context",
      error: "ENVELOPE_UNWRAP_FAILED",
      envelope: bytes,
      mutation: { op: "replace", field: "entries[0].wrapped", note: "AES-KW of 24 random bytes" },
    });
  }

  // --- negative: stored context that is not canonical
  {
    const storedCases: [string, Buffer, string][] = [
      [
        "stored-context-unsorted",
        canonicalPairs([
          ["table", "users"],
          ["column", "email"],
          ["id", "42"],
        ]),
        "Stored context pairs out of order.",
      ],
      [
        "stored-context-duplicate-key",
        canonicalPairs([
          ["id", "42"],
          ["id", "42"],
        ]),
        "Stored context with a duplicate key.",
      ],
      [
        "stored-context-invalid-utf8",
        canonicalPairs([["id", Buffer.from([0xff])]]),
        "Stored context value that is not UTF-8.",
      ],
      [
        "stored-context-trailing",
        Buffer.concat([canonicalContext(ctx), Buffer.from([0])]),
        "A byte after the last pair.",
      ],
      [
        "stored-context-empty-key",
        canonicalPairs([["", "x"]]),
        "Stored context with an empty key.",
      ],
    ];
    for (const [slug, stored, description] of storedCases) {
      const bytes = setVariable(S, "contextLength", "context", stored);
      negative({
        slug,
        description,
        from: "stored-context",
        error: "ENVELOPE_BAD_FORMAT",
        envelope: bytes,
        mutation: { op: "replace", field: "context", hex: stored.toString("hex") },
      });
    }
  }

  // --- negative: text form
  const T = textBase.vector.envelopeText!;
  const payload = T.slice(4);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const last = payload.at(-1)!;
  const nonCanonical = `${T.slice(0, -1)}${alphabet[alphabet.indexOf(last) | 1]}`;
  const textCases: [string, string, string, string][] = [
    ["text-prefix-ev2", `ev2:${payload}`, "ENVELOPE_BAD_FORMAT", "Prefix 'ev2:'."],
    [
      "text-prefix-uppercase",
      `EV1:${payload}`,
      "ENVELOPE_BAD_FORMAT",
      "Prefix 'EV1:' (the prefix is case-sensitive).",
    ],
    ["text-no-prefix", payload, "ENVELOPE_BAD_FORMAT", "Base64url without the prefix."],
    ["text-padding", `${T}==`, "ENVELOPE_BAD_FORMAT", "'==' padding appended."],
    [
      "text-standard-alphabet",
      `ev1:+${payload.slice(1)}`,
      "ENVELOPE_BAD_FORMAT",
      "First payload character replaced by '+' (RFC 4648 §4 alphabet).",
    ],
    [
      "text-slash",
      `ev1:${payload.slice(0, 10)}/${payload.slice(11)}`,
      "ENVELOPE_BAD_FORMAT",
      "A '/' in the payload.",
    ],
    [
      "text-whitespace",
      `ev1:${payload.slice(0, 40)}\n${payload.slice(40)}`,
      "ENVELOPE_BAD_FORMAT",
      "A line break in the payload.",
    ],
    [
      "text-non-canonical",
      nonCanonical,
      "ENVELOPE_BAD_FORMAT",
      "Last character has non-zero unused bits (decodes to the same bytes, but is not the canonical encoding).",
    ],
    [
      "text-length-1-mod-4",
      T.slice(0, -1),
      "ENVELOPE_BAD_FORMAT",
      "Last character dropped: payload length 1 mod 4 is never valid base64.",
    ],
    ["text-empty-payload", "ev1:", "ENVELOPE_BAD_FORMAT", "Only the prefix: zero bytes."],
    [
      "text-trailing-byte",
      `ev1:${Buffer.concat([textBase.bytes, Buffer.from([0])]).toString("base64url")}`,
      "ENVELOPE_BAD_FORMAT",
      "Valid text form of the binary form plus one 0x00 byte.",
    ],
    [
      "text-tampered-tag",
      `ev1:${flip(textBase.bytes, textBase.bytes.length - 3, 0).toString("base64url")}`,
      "ENVELOPE_DECRYPT_FAILED",
      "Valid text form with one tag bit flipped.",
    ],
  ];
  for (const [slug, text, error, description] of textCases) {
    negative({
      slug,
      description,
      from: "text-form",
      error,
      envelope: text,
      mutation: { op: "text", note: description },
    });
  }

  // --- verify every vector against the real decrypt, then write
  const problems: string[] = [];
  for (const v of vectors) {
    const got = await outcome(v, files);
    if (v.kind === "positive") {
      const want = "plaintextHex" in v.expected ? Buffer.from(v.expected.plaintextHex, "hex") : big;
      if (!("plaintext" in got) || !got.plaintext.equals(want))
        problems.push(`${v.id}: ${JSON.stringify(got).slice(0, 200)}`);
    } else {
      const exp = v.expected as { error: string; errorClass: string };
      if (!("code" in got) || got.code !== exp.error || got.name !== exp.errorClass) {
        problems.push(
          `${v.id}: expected ${exp.error}, got ${"code" in got ? `${got.name} ${got.code}` : "plaintext"}`,
        );
      }
    }
  }
  if (problems.length > 0) {
    console.error(`Outcomes differ from the recorded expectations:\n${problems.join("\n")}`);
    process.exit(1);
  }

  for (const f of existing) rmSync(join(DIR, f));
  for (const v of vectors)
    writeFileSync(join(DIR, `${v.id}.json`), `${JSON.stringify(ordered(v), null, 2)}\n`);
  for (const [name, content] of files) writeFileSync(join(DIR, name), content);
  const pos = vectors.filter((v) => v.kind === "positive").length;
  console.log(`Wrote ${pos} positive and ${vectors.length - pos} negative vectors to ${DIR}.`);
}

/** The same vector with its keys in reading order (envelope first, details last). */
function ordered(v: Vector): Vector {
  const {
    id,
    kind,
    description,
    form,
    envelopeHex,
    envelopeText,
    envelopeFile,
    envelopeSha256,
    ...rest
  } = v;
  return {
    id,
    kind,
    description,
    form,
    envelopeHex,
    envelopeText,
    envelopeFile,
    envelopeSha256,
    ...rest,
  };
}

/** A context encoding from explicit pairs, in the given order (to build bad ones). */
function canonicalPairs(pairs: [string, string | Buffer][]): Buffer {
  const parts: Buffer[] = [u16(pairs.length)];
  for (const [k, v] of pairs) {
    const kb = Buffer.from(k, "utf8");
    const vb = typeof v === "string" ? Buffer.from(v, "utf8") : v;
    parts.push(u16(kb.length), kb, u16(vb.length), vb);
  }
  return Buffer.concat(parts);
}

await main();
