/**
 * Generates packages/core/test/vectors/stream/streaming-purpose.json: streaming vectors whose key
 * envelope carries the stream-key purpose flag (FORMAT.md flags bit 1), and the negative
 * vectors for that flag and for the stream header's error codes. Run once:
 *   pnpm exec tsx packages/core/test/vectors/stream/generate-streaming-purpose.ts
 * Refuses to overwrite an existing file unless given --force: a changed vector is a
 * format change.
 *
 * Imports @envelope/core from its sources (not the built package): the purpose option
 * is a module-private symbol, and the generator needs the same module instance the
 * client uses to seal odd key envelopes (31 bytes, a value used as a key envelope).
 * Streams that the encoder cannot produce (an empty final chunk after full chunks, and
 * every stream around a hand-made key envelope) are framed here from STREAMING.md with
 * plain node:crypto, then every vector is checked against decryptStream / decrypt.
 */
import { createCipheriv, hkdfSync, randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { PURPOSE } from "../../../src/format/purpose.js";
import {
  decodeEnvelope,
  decryptStream,
  Envelope,
  EnvelopeError,
  encryptStream,
  localAesProvider,
} from "../../../src/index.js";

const out = fileURLToPath(new URL("./streaming-purpose.json", import.meta.url));
if (existsSync(out) && !process.argv.includes("--force")) {
  console.error(`${out} exists; pass --force to regenerate (a changed vector is a format change).`);
  process.exit(1);
}

// The same published test key, context and chunk size as streaming.json.
const KEY = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const context = { file: "vector.bin", purpose: "test" };
const envelope = new Envelope({ encrypt: localAesProvider({ keys: KEY }), cache: false });
const CHUNK = 1024;

const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));
const viaEncoder = async (plaintext: Buffer) =>
  buffer(Readable.from([plaintext]).pipe(encryptStream(envelope, { context, chunkSize: CHUNK })));

/** Seals `bytes` as the client does, as a stream key envelope or as an ordinary value. */
const sealKey = (bytes: Buffer, streamKey: boolean) =>
  envelope.encrypt(bytes, {
    context,
    output: "binary",
    ...(streamKey ? { [PURPOSE]: "stream-key" } : {}),
  } as Parameters<Envelope["encrypt"]>[1] & { output: "binary" });

/** A whole stream framed from STREAMING.md: header, then chunks with the given markers. */
function frame(
  keyEnvelope: Buffer,
  key: Buffer,
  chunks: { plaintext: Buffer; final: boolean }[],
  { flags = 0, chunkSize = CHUNK } = {},
): Buffer {
  const prefix = Buffer.alloc(11);
  prefix.write("ENVS", 0, "ascii");
  prefix[4] = 1;
  prefix[5] = 1;
  prefix[6] = flags;
  prefix.writeUInt32BE(chunkSize, 7);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(keyEnvelope.length);
  const messageId = Buffer.from(decodeEnvelope(keyEnvelope).messageId);
  const chunkKey = Buffer.from(
    hkdfSync("sha256", key, messageId, Buffer.from("envelope:stream1:chunk-key", "ascii"), 32),
  );
  const parts = [prefix, length, keyEnvelope];
  chunks.forEach(({ plaintext, final }, i) => {
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64BE(BigInt(i), 4);
    const index = Buffer.alloc(8);
    index.writeBigUInt64BE(BigInt(i));
    const cipher = createCipheriv("aes-256-gcm", chunkKey, nonce);
    cipher.setAAD(Buffer.concat([prefix, messageId, index, Buffer.from([final ? 1 : 0])]));
    const head = Buffer.alloc(5);
    head[0] = final ? 1 : 0;
    head.writeUInt32BE(plaintext.length, 1);
    parts.push(head, cipher.update(plaintext), cipher.final(), cipher.getAuthTag());
  });
  return Buffer.concat(parts);
}

const chunksOf = (plaintext: Buffer, emptyFinal: boolean) => {
  const out: { plaintext: Buffer; final: boolean }[] = [];
  for (let o = 0; o < plaintext.length; o += CHUNK) {
    out.push({ plaintext: plaintext.subarray(o, o + CHUNK), final: false });
  }
  if (emptyFinal || out.length === 0) out.push({ plaintext: Buffer.alloc(0), final: true });
  else out[out.length - 1]!.final = true;
  return out;
};

const positive: { name: string; description: string; plaintext: string; stream: string }[] = [];
for (const [name, size, description] of [
  ["empty", 0, "0 bytes: header and one empty final chunk"],
  ["one-byte", 1, "1 byte"],
  ["exactly-one-chunk", CHUNK, "1024 bytes: a single full final chunk"],
  ["three-chunks", 2 * CHUNK + 452, "2500 bytes: two full chunks and a final chunk of 452"],
] as const) {
  const plaintext = pattern(size);
  positive.push({
    name,
    description: `${description}, written by encryptStream`,
    plaintext: plaintext.toString("hex"),
    stream: (await viaEncoder(plaintext)).toString("hex"),
  });
}

// An empty final chunk after full chunks: valid, though the reference encoder never
// writes it (it marks the last full chunk final instead).
const streamKey = randomBytes(32);
const keyEnvelope = await sealKey(streamKey, true);
const twoChunks = pattern(2 * CHUNK);
positive.push({
  name: "full-chunks-then-empty-final",
  description:
    "2048 bytes as two full non-final chunks and an empty final chunk (framed by the generator; valid)",
  plaintext: twoChunks.toString("hex"),
  stream: frame(keyEnvelope, streamKey, chunksOf(twoChunks, true)).toString("hex"),
});

const base = Buffer.from(positive[3]!.stream, "hex");
const headerLength = 15 + base.readUInt32BE(11);
const flip = (b: Buffer, at: number, mask = 0x01) => {
  const copy = Buffer.from(b);
  copy[at]! ^= mask;
  return copy;
};
const setU32 = (b: Buffer, at: number, value: number) => {
  const copy = Buffer.from(b);
  copy.writeUInt32BE(value, at);
  return copy;
};
const small = pattern(1500);

// A value envelope (flags bit 1 clear) that seals 32 bytes under the stream's context:
// exactly what an attacker with an encrypt-only key, or any ordinary 32-byte value
// under that context, could provide. Only `allowLegacyKeyEnvelope` accepts it.
const plantedKey = randomBytes(32);
const planted = frame(await sealKey(plantedKey, false), plantedKey, chunksOf(small, false));
// A value envelope with flags bit 1 set afterwards: the AAD no longer matches.
const valueFlagged = flip(await sealKey(plantedKey, false), 2, 0x02);
const shortKey = randomBytes(31);

type Negative = {
  name: string;
  description: string;
  code: string;
  stream: string;
  /** Outcome with `allowLegacyKeyEnvelope: true`, when it differs. */
  withAllowLegacy?: { plaintext: string } | { code: string };
};
const negative: Negative[] = [
  {
    name: "value-envelope-as-key-envelope",
    description:
      "the header holds an ordinary value envelope (flags 0x00) sealing 32 bytes under the stream's context, and chunks made with those 32 bytes",
    code: "ENVELOPE_WRONG_PURPOSE",
    stream: planted,
    withAllowLegacy: { plaintext: small.toString("hex") },
  },
  {
    name: "key-envelope-purpose-flag-cleared",
    description: "three-chunks with flags bit 1 of the key envelope cleared (0x02 -> 0x00)",
    code: "ENVELOPE_WRONG_PURPOSE",
    stream: flip(base, 15 + 2, 0x02),
    withAllowLegacy: { code: "ENVELOPE_DECRYPT_FAILED" },
  },
  {
    name: "value-envelope-with-purpose-flag-set",
    description:
      "the header holds a value envelope whose flags were changed 0x00 -> 0x02 afterwards: the flag is in its AAD",
    code: "ENVELOPE_DECRYPT_FAILED",
    stream: frame(valueFlagged, plantedKey, chunksOf(small, false)),
  },
  {
    name: "stream-key-not-32-bytes",
    description: "a well-formed stream key envelope (flags 0x02) that seals 31 bytes",
    code: "ENVELOPE_BAD_FORMAT",
    stream: frame(await sealKey(shortKey, true), Buffer.concat([shortKey, Buffer.alloc(1)]), [
      { plaintext: Buffer.alloc(0), final: true },
    ]),
  },
  {
    name: "header-flags-set",
    description: "three-chunks with the stream header's flags byte 0x00 -> 0x01",
    code: "ENVELOPE_BAD_FORMAT",
    stream: flip(base, 6),
  },
  {
    name: "unknown-suite",
    description: "three-chunks with the stream suite 0x01 -> 0x02",
    code: "ENVELOPE_UNSUPPORTED_SUITE",
    stream: flip(base, 5, 0x03),
  },
  {
    name: "chunk-size-below-minimum",
    description: "chunkSize 1023",
    code: "ENVELOPE_LIMIT_EXCEEDED",
    stream: setU32(base, 7, 1023),
  },
  {
    name: "chunk-size-above-maximum",
    description: "chunkSize 16777217",
    code: "ENVELOPE_LIMIT_EXCEEDED",
    stream: setU32(base, 7, 16 * 1024 * 1024 + 1),
  },
  {
    name: "key-envelope-length-zero",
    description: "keyEnvelopeLength 0",
    code: "ENVELOPE_LIMIT_EXCEEDED",
    stream: setU32(base, 11, 0),
  },
  {
    name: "key-envelope-length-above-maximum",
    description: "keyEnvelopeLength 262145 (checked before the bytes are awaited)",
    code: "ENVELOPE_LIMIT_EXCEEDED",
    stream: setU32(base, 11, 256 * 1024 + 1),
  },
  {
    name: "key-envelope-length-off-by-one",
    description:
      "keyEnvelopeLength one less than the key envelope: the key envelope is cut by one byte (its GCM tag is truncated) and is refused before any chunk byte is examined",
    code: "ENVELOPE_BAD_FORMAT",
    stream: setU32(base, 11, headerLength - 15 - 1),
  },
  {
    name: "unknown-chunk-marker",
    description: "chunk 0's marker 0x00 -> 0x02",
    code: "ENVELOPE_BAD_FORMAT",
    stream: flip(base, headerLength, 0x02),
  },
  {
    name: "key-envelope-before-chunks",
    description:
      "wrapped key altered AND chunk 0's marker 0x00 -> 0x02: the key envelope is checked first",
    code: "ENVELOPE_UNWRAP_FAILED",
    stream: flip(flip(base, headerLength - 70 - 5), headerLength, 0x02),
  },
  {
    name: "tag-before-trailing-bytes",
    description:
      "last tag byte flipped AND a byte appended: the final chunk's tag is checked before the trailing-bytes check",
    code: "ENVELOPE_DECRYPT_FAILED",
    stream: Buffer.concat([flip(base, base.length - 1), Buffer.from([0])]),
  },
].map((v) => ({ ...v, stream: v.stream.toString("hex") }));

const keyEnvelopeOfThreeChunks = base.subarray(15, headerLength);
const doc = {
  description:
    "Envelope streaming format v1 vectors with the stream-key purpose flag (docs/STREAMING.md, docs/FORMAT.md flags bit 1). Key: local-aes test key below. Decrypt each positive stream with the context and compare with plaintext; each negative stream must fail with the given code (default options). `withAllowLegacy` gives the outcome with allowLegacyKeyEnvelope: true where it differs. `keyEnvelopeViaDecrypt` is the key envelope of three-chunks given to the single-value decrypt.",
  generatedBy: "packages/core/test/vectors/stream/generate-streaming-purpose.ts",
  localAesKeyHex: KEY,
  chunkSize: CHUNK,
  context,
  positive,
  negative,
  keyEnvelopeViaDecrypt: {
    envelope: keyEnvelopeOfThreeChunks.toString("hex"),
    context,
    code: "ENVELOPE_WRONG_PURPOSE",
  },
};

// Check every outcome against the implementation before writing anything.
const opened = async (hex: string, allowLegacyKeyEnvelope = false) =>
  buffer(
    Readable.from([Buffer.from(hex, "hex")]).pipe(
      decryptStream(envelope, { context, allowLegacyKeyEnvelope }),
    ),
  ).then(
    (b) => ({ plaintext: b.toString("hex") }),
    (e: unknown) => ({ code: EnvelopeError.isInstance(e) ? e.code : `untyped ${String(e)}` }),
  );
const same = (a: object, b: object) => JSON.stringify(a) === JSON.stringify(b);
for (const p of positive) {
  const got = await opened(p.stream);
  if (!same(got, { plaintext: p.plaintext })) throw new Error(`${p.name}: ${JSON.stringify(got)}`);
}
for (const n of negative) {
  const got = await opened(n.stream);
  if (!same(got, { code: n.code })) throw new Error(`${n.name}: ${JSON.stringify(got)}`);
  const legacy = await opened(n.stream, true);
  const want = n.withAllowLegacy ?? { code: n.code };
  if (!same(legacy, want)) throw new Error(`${n.name} (legacy): ${JSON.stringify(legacy)}`);
}
const viaDecrypt = await envelope.decrypt(keyEnvelopeOfThreeChunks, { context }).then(
  () => "opened",
  (e: unknown) => (EnvelopeError.isInstance(e) ? e.code : "untyped"),
);
if (viaDecrypt !== "ENVELOPE_WRONG_PURPOSE")
  throw new Error(`keyEnvelopeViaDecrypt: ${viaDecrypt}`);

writeFileSync(out, `${JSON.stringify(doc, null, 2)}\n`);
console.log(`wrote ${out}`);
