/**
 * Generates packages/core/test/vectors/stream/streaming-coverage.json: streams whose key
 * envelope is signed (suite 0x02), suite 0x03 or stores its context (flags 0x03), read by
 * readers with and without trustedSigners and with the same, no or another context; a
 * padded value used as a key envelope under allowLegacyKeyEnvelope; and a trailing byte
 * that arrives in its own write after the final chunk verified. Run once:
 *   pnpm exec tsx packages/core/test/vectors/stream/generate-streaming-coverage.ts
 * Refuses to overwrite an existing file unless given --force: a changed vector is a
 * format change.
 *
 * Every stream but one is written by encryptStream through the public API (clients with
 * `signing`, `suite: 3`, `storeContext: true`). The padded-key-envelope stream cannot be
 * written by the encoder: its key envelope is a padded value sealed by the public
 * `encrypt(…, { pad: 32 })`, and the stream around it is framed here from STREAMING.md
 * with plain node:crypto, as generate-streaming-purpose.ts does. Every outcome is checked
 * against decryptStream, fed as the vector says, before the file is written.
 */
import { createCipheriv, createHash, createPrivateKey, hkdfSync, randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import {
  decodeEnvelope,
  decryptStream,
  Envelope,
  EnvelopeError,
  encryptStream,
  localAesProvider,
} from "@envelope/core";

const out = fileURLToPath(new URL("./streaming-coverage.json", import.meta.url));
if (existsSync(out) && !process.argv.includes("--force")) {
  console.error(`${out} exists; pass --force to regenerate (a changed vector is a format change).`);
  process.exit(1);
}

// The same published test key, context, chunk size and plaintext rule as the other stream files.
const KEY = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const context = { file: "vector.bin", purpose: "test" };
const otherContext = { file: "other.bin", purpose: "test" };
const CHUNK = 1024;
const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));
const plaintext = pattern(1500); // one full chunk and a final chunk of 476

// Published Ed25519 test keys (never use them for data): the private key is the PKCS#8
// wrapping of a fixed 32-byte seed, SHA-256 of the role's label.
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const ed25519 = (role: "writer" | "other") => {
  const seed = createHash("sha256").update(`envelope stream vectors: ${role}`).digest();
  const key = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, seed]),
    format: "der",
    type: "pkcs8",
  });
  const x = key.export({ format: "jwk" }).x as string;
  return {
    role,
    publicKeyHex: Buffer.from(x, "base64url").toString("hex"),
    privateKeyPem: key.export({ type: "pkcs8", format: "pem" }) as string,
  };
};
const writer = ed25519("writer");
const other = ed25519("other");

const aes = () => localAesProvider({ keys: KEY });
const plain = new Envelope({ encrypt: aes(), cache: false });
const signing = new Envelope({
  encrypt: aes(),
  signing: { key: writer.privateKeyPem },
  cache: false,
});
const suite3 = new Envelope({ encrypt: aes(), suite: 3, cache: false });
const storing = new Envelope({ encrypt: aes(), storeContext: true, cache: false });

const viaEncoder = async (client: Envelope) =>
  buffer(Readable.from([plaintext]).pipe(encryptStream(client, { context, chunkSize: CHUNK })));

/** A whole stream framed from STREAMING.md around a given key envelope (see the purpose generator). */
function frame(keyEnvelope: Buffer, key: Buffer, data: Buffer): Buffer {
  const prefix = Buffer.alloc(11);
  prefix.write("ENVS", 0, "ascii");
  prefix[4] = 1;
  prefix[5] = 1;
  prefix[6] = 0;
  prefix.writeUInt32BE(CHUNK, 7);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(keyEnvelope.length);
  const messageId = Buffer.from(decodeEnvelope(keyEnvelope).messageId);
  const chunkKey = Buffer.from(
    hkdfSync("sha256", key, messageId, Buffer.from("envelope:stream1:chunk-key", "ascii"), 32),
  );
  const parts = [prefix, length, keyEnvelope];
  const count = Math.max(1, Math.ceil(data.length / CHUNK));
  for (let i = 0; i < count; i++) {
    const final = i === count - 1;
    const chunk = data.subarray(i * CHUNK, (i + 1) * CHUNK);
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64BE(BigInt(i), 4);
    const index = Buffer.alloc(8);
    index.writeBigUInt64BE(BigInt(i));
    const cipher = createCipheriv("aes-256-gcm", chunkKey, nonce);
    cipher.setAAD(Buffer.concat([prefix, messageId, index, Buffer.from([final ? 1 : 0])]));
    const head = Buffer.alloc(5);
    head[0] = final ? 1 : 0;
    head.writeUInt32BE(chunk.length, 1);
    parts.push(head, cipher.update(chunk), cipher.final(), cipher.getAuthTag());
  }
  return Buffer.concat(parts);
}

const signedStream = await viaEncoder(signing);
const unsignedStream = await viaEncoder(plain);
const suite3Stream = await viaEncoder(suite3);
const storedStream = await viaEncoder(storing);
// A padded value (flags 0x04) sealing 32 bytes under the stream's context, as the header's
// key envelope, with chunks made from those 32 bytes: only the padded-flag rule refuses it.
const plantedKey = randomBytes(32);
const paddedValue = await plain.encrypt(plantedKey, { context, output: "binary", pad: 32 });
const paddedStream = frame(paddedValue, plantedKey, plaintext);

interface Options {
  context?: Record<string, string>;
  trustedSigners?: string[];
  allowLegacyKeyEnvelope?: boolean;
}
interface Common {
  name: string;
  description: string;
  /** The key envelope's suite and flags bytes (stream offsets 16 and 17). */
  keyEnvelope: { suite: number; flags: number };
  decryptOptions: Options;
  /** Byte lengths of the successive writes; absent: any split. */
  feed?: number[];
  stream: Buffer;
}
const keyEnvelopeOf = (s: Buffer) => ({ suite: s[15 + 1]!, flags: s[15 + 2]! });
const withContext = { context };
const pinned = (hex: string) => ({ context, trustedSigners: [hex] });

const positive: (Common & { plaintext: string })[] = [
  {
    name: "signed-key-envelope-unpinned-reader",
    description:
      "key envelope signed by the writer key (suite 0x02), written by a client with `signing`; a reader without trustedSigners verifies the signature and opens it",
    keyEnvelope: keyEnvelopeOf(signedStream),
    decryptOptions: withContext,
    stream: signedStream,
    plaintext: plaintext.toString("hex"),
  },
  {
    name: "signed-key-envelope-pinned-reader",
    description: "the same stream; a reader whose trustedSigners is the writer key opens it",
    keyEnvelope: keyEnvelopeOf(signedStream),
    decryptOptions: pinned(writer.publicKeyHex),
    stream: signedStream,
    plaintext: plaintext.toString("hex"),
  },
  {
    name: "suite3-key-envelope",
    description:
      "key envelope in suite 0x03 (a client with `suite: 3`); the chunk key is still HKDF-SHA256",
    keyEnvelope: keyEnvelopeOf(suite3Stream),
    decryptOptions: withContext,
    stream: suite3Stream,
    plaintext: plaintext.toString("hex"),
  },
  {
    name: "stored-context-same-context",
    description:
      "key envelope storing its context (flags 0x03, a client with `storeContext: true`), opened with the same context",
    keyEnvelope: keyEnvelopeOf(storedStream),
    decryptOptions: withContext,
    stream: storedStream,
    plaintext: plaintext.toString("hex"),
  },
  {
    name: "stored-context-no-context",
    description: "the same stream opened with no context: the stored one is used",
    keyEnvelope: keyEnvelopeOf(storedStream),
    decryptOptions: {},
    stream: storedStream,
    plaintext: plaintext.toString("hex"),
  },
];

const negative: (Common & {
  code: string;
  errorClass: string;
  details?: Record<string, string>;
  releasedBeforeError?: string;
})[] = [
  {
    name: "signed-key-envelope-other-signer-pinned",
    description:
      "the signed stream; the reader's trustedSigners holds only the 'other' key: refused before any unwrap",
    keyEnvelope: keyEnvelopeOf(signedStream),
    decryptOptions: pinned(other.publicKeyHex),
    stream: signedStream,
    code: "ENVELOPE_UNTRUSTED_SIGNER",
    errorClass: "DecryptionError",
    details: { signer: `ed25519:${writer.publicKeyHex}` },
  },
  {
    name: "unsigned-key-envelope-pinned-reader",
    description:
      "key envelope unsigned (suite 0x01, flags 0x02); the reader pins the writer key: refused before any unwrap",
    keyEnvelope: keyEnvelopeOf(unsignedStream),
    decryptOptions: pinned(writer.publicKeyHex),
    stream: unsignedStream,
    code: "ENVELOPE_UNSIGNED",
    errorClass: "DecryptionError",
  },
  {
    name: "stored-context-other-context",
    description:
      "the stored-context stream (flags 0x03) opened with another context: refused before any unwrap",
    keyEnvelope: keyEnvelopeOf(storedStream),
    decryptOptions: { context: otherContext },
    stream: storedStream,
    code: "ENVELOPE_CONTEXT_MISMATCH",
    errorClass: "DecryptionError",
  },
  {
    name: "padded-value-as-key-envelope-legacy",
    description:
      "the header holds a padded value envelope (flags 0x04, `encrypt(…, { pad: 32 })`) sealing 32 bytes under the stream's context, and chunks made with those 32 bytes; opened with allowLegacyKeyEnvelope: true, it is refused because it is padded (without the opt-in, it is refused for flags bit 1 clear, with the same code)",
    keyEnvelope: keyEnvelopeOf(paddedStream),
    decryptOptions: { context, allowLegacyKeyEnvelope: true },
    stream: paddedStream,
    code: "ENVELOPE_WRONG_PURPOSE",
    errorClass: "DecryptionError",
    details: { field: "flags" },
  },
  {
    name: "trailing-byte-separate-write",
    description:
      "the unsigned stream and one 0x00 byte, fed as two writes: the whole stream, then the byte. The final chunk verifies and its plaintext is released; the byte that arrives afterwards is refused",
    keyEnvelope: keyEnvelopeOf(unsignedStream),
    decryptOptions: withContext,
    feed: [unsignedStream.length, 1],
    stream: Buffer.concat([unsignedStream, Buffer.from([0])]),
    code: "ENVELOPE_BAD_FORMAT",
    errorClass: "FormatError",
    details: { field: "trailing" },
    releasedBeforeError: plaintext.toString("hex"),
  },
];

/** Opens `stream` as a reader configured by `options`, fed in the given writes. */
async function open(stream: Buffer, options: Options, feed?: number[]) {
  const client = new Envelope({
    encrypt: aes(),
    cache: false,
    ...(options.trustedSigners
      ? { trustedSigners: options.trustedSigners.map((h) => Buffer.from(h, "hex")) }
      : {}),
  });
  const writes: Buffer[] = [];
  let at = 0;
  for (const n of feed ?? [stream.length]) {
    writes.push(stream.subarray(at, at + n));
    at += n;
  }
  if (at !== stream.length) throw new Error("feed does not cover the stream");
  const transform = decryptStream(client, {
    ...(options.context ? { context: options.context } : {}),
    ...(options.allowLegacyKeyEnvelope ? { allowLegacyKeyEnvelope: true } : {}),
  });
  const released: Buffer[] = [];
  transform.on("data", (d: Buffer) => released.push(d));
  const error = await new Promise<unknown>((resolve) => {
    transform.on("end", () => resolve(undefined));
    transform.on("error", resolve);
    Readable.from(writes).pipe(transform);
  });
  return { released: Buffer.concat(released).toString("hex"), error };
}

for (const p of positive) {
  const { released, error } = await open(p.stream, p.decryptOptions);
  if (error || released !== p.plaintext) throw new Error(`${p.name}: ${String(error)}`);
}
for (const n of negative) {
  const { released, error } = await open(n.stream, n.decryptOptions, n.feed);
  const e = error as EnvelopeError;
  const ok =
    EnvelopeError.isInstance(error) &&
    e.code === n.code &&
    e.name === n.errorClass &&
    Object.entries(n.details ?? {}).every(([k, v]) => e.details[k] === v) &&
    released === (n.releasedBeforeError ?? "");
  if (!ok) throw new Error(`${n.name}: ${String(error)} ${JSON.stringify(e?.details)}`);
}
// The stated key envelopes: suite 2, 1, 3 with flags 0x02; flags 0x03; flags 0x04.
const want = {
  signedStream: [2, 2],
  unsignedStream: [1, 2],
  suite3Stream: [3, 2],
  storedStream: [1, 3],
  paddedStream: [1, 4],
};
for (const [label, s] of Object.entries({
  signedStream,
  unsignedStream,
  suite3Stream,
  storedStream,
  paddedStream,
})) {
  const got = keyEnvelopeOf(s);
  const [suite, flags] = want[label as keyof typeof want];
  if (got.suite !== suite || got.flags !== flags)
    throw new Error(`${label}: ${JSON.stringify(got)}`);
}

const hex = <T extends { stream: Buffer }>(v: T) => ({ ...v, stream: v.stream.toString("hex") });
const doc = {
  description:
    "Envelope streaming format v1 vectors for key envelope variants (docs/STREAMING.md): signed (suite 0x02) with and without a pinning reader, suite 0x03, stored context (flags 0x03), a padded value as key envelope under allowLegacyKeyEnvelope, and a trailing byte in its own write. Key: local-aes test key below. Each vector is opened by decryptStream with its decryptOptions: context and allowLegacyKeyEnvelope are decryptStream options; trustedSigners (raw Ed25519 public keys, hex) is the reading client's option. `feed`, when present, gives the byte lengths of the successive writes (otherwise any split gives the same outcome). A positive must output exactly plaintext; a negative must fail with code, errorClass and the given details, having released exactly releasedBeforeError (default: nothing). `keyEnvelope` is the key envelope's suite and flags bytes (stream offsets 16 and 17).",
  generatedBy: "packages/core/test/vectors/stream/generate-streaming-coverage.ts",
  localAesKeyHex: KEY,
  chunkSize: CHUNK,
  context,
  signers: [writer, { role: other.role, publicKeyHex: other.publicKeyHex }],
  positive: positive.map(hex),
  negative: negative.map(hex),
};
writeFileSync(out, `${JSON.stringify(doc, null, 2)}\n`);
console.log(`wrote ${out}`);
