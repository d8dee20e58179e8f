/**
 * Generates packages/core/test/vectors/stream/streaming.json. Run once:
 *   node --import tsx packages/core/test/vectors/stream/generate-streaming.ts
 * Refuses to overwrite an existing file unless given --force: a changed vector is a
 * format change and needs a version bump.
 */
import { existsSync, writeFileSync } from "node:fs";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { Envelope, encryptStream, localAesProvider } from "@envelope/core";

const out = fileURLToPath(new URL("./streaming.json", import.meta.url));
if (existsSync(out) && !process.argv.includes("--force")) {
  console.error(
    `${out} exists; pass --force to regenerate (a format change needs a version bump).`,
  );
  process.exit(1);
}

// A published test key: never use it for real data.
const KEY = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const context = { file: "vector.bin", purpose: "test" };
const envelope = new Envelope({ encrypt: localAesProvider({ keys: KEY }), cache: false });
const CHUNK = 1024;

const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));
const seal = async (plaintext: Buffer) =>
  buffer(Readable.from([plaintext]).pipe(encryptStream(envelope, { context, chunkSize: CHUNK })));

const positive = [];
for (const [name, size] of [
  ["empty", 0],
  ["one-byte", 1],
  ["exactly-one-chunk", CHUNK],
  ["three-chunks", 2 * CHUNK + 452],
] as const) {
  const plaintext = pattern(size);
  positive.push({
    name,
    plaintext: plaintext.toString("hex"),
    stream: (await seal(plaintext)).toString("hex"),
  });
}

// Negative vectors are derived from the three-chunk stream.
const base = Buffer.from(positive[3]!.stream, "hex");
const headerLength = 15 + base.readUInt32BE(11);
const chunkLen = 5 + CHUNK + 16;
const c0 = base.subarray(headerLength, headerLength + chunkLen);
const c1 = base.subarray(headerLength + chunkLen, headerLength + 2 * chunkLen);
const last = base.subarray(headerLength + 2 * chunkLen);
const header = base.subarray(0, headerLength);
const flip = (b: Buffer, at: number) => {
  const copy = Buffer.from(b);
  copy[at]! ^= 0x01;
  return copy;
};
const negative = [
  {
    name: "truncated-last-byte",
    code: "ENVELOPE_BAD_FORMAT",
    stream: base.subarray(0, base.length - 1),
  },
  {
    name: "final-chunk-removed",
    code: "ENVELOPE_BAD_FORMAT",
    stream: Buffer.concat([header, c0, c1]),
  },
  {
    name: "chunks-reordered",
    code: "ENVELOPE_DECRYPT_FAILED",
    stream: Buffer.concat([header, c1, c0, last]),
  },
  {
    name: "bit-flip-in-chunk-1",
    code: "ENVELOPE_DECRYPT_FAILED",
    stream: flip(base, headerLength + chunkLen + 100),
  },
  { name: "bit-flip-in-tag", code: "ENVELOPE_DECRYPT_FAILED", stream: flip(base, base.length - 1) },
  {
    name: "non-final-marked-final",
    code: "ENVELOPE_DECRYPT_FAILED",
    stream: Buffer.concat([header, c0, flip(c1, 0)]),
  },
  {
    name: "trailing-byte",
    code: "ENVELOPE_BAD_FORMAT",
    stream: Buffer.concat([base, Buffer.from([0])]),
  },
  { name: "header-truncated", code: "ENVELOPE_BAD_FORMAT", stream: base.subarray(0, 10) },
  { name: "bad-magic", code: "ENVELOPE_BAD_FORMAT", stream: flip(base, 0) },
  { name: "unknown-version", code: "ENVELOPE_UNSUPPORTED_VERSION", stream: flip(base, 4) },
  { name: "chunk-size-changed", code: "ENVELOPE_BAD_FORMAT", stream: flip(base, 9) },
  {
    name: "wrapped-key-altered",
    code: "ENVELOPE_UNWRAP_FAILED",
    stream: flip(base, headerLength - 70 - 5),
  },
].map((v) => ({ ...v, stream: v.stream.toString("hex") }));

const doc = {
  description:
    "Envelope streaming format v1 vectors (docs/STREAMING.md). Key: local-aes test key below. Decrypt each positive stream with the context and compare with plaintext; each negative stream must fail with the given error code.",
  generatedBy: "packages/core/test/vectors/stream/generate-streaming.ts",
  localAesKeyHex: KEY,
  chunkSize: CHUNK,
  context,
  positive,
  negative,
  wrongContext: {
    stream: "three-chunks",
    context: { file: "other.bin", purpose: "test" },
    code: "ENVELOPE_DECRYPT_FAILED",
  },
};
writeFileSync(out, `${JSON.stringify(doc, null, 2)}\n`);
console.log(`wrote ${out}`);
