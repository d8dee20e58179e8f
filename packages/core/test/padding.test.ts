import { createCipheriv, hkdfSync, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import {
  ConfigError,
  configFromEnv,
  createEnvelope,
  DecryptionError,
  decodeEnvelope,
  decryptStream,
  Envelope,
  encodeContext,
  encodeEnvelope,
  encryptStream,
  FormatError,
  generateSigningKeyPair,
  localAesProvider,
  parseStreamHeader,
} from "@envelope/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deriveChunkKey, sealChunk } from "../src/stream/chunk-crypto.js";
import { encodeStreamHeader, headerPrefix } from "../src/stream/header.js";
import { expectEnvelopeError, rejection, thrown } from "./support/codes.js";
import { countingProvider } from "./support/counting-provider.js";

const context = { table: "users", column: "email", id: "42" };
const aes = () => localAesProvider({ keys: randomBytes(32) });
const bodyOf = (sealed: Buffer) => decodeEnvelope(sealed).body.length - 16;

/**
 * Seals `gcmPlaintext` as it stands (padding included) with flags `flags`, by the spec
 * alone (FORMAT.md §5, §6): what a writer holding the data key could store, e.g. a faulty
 * implementation or an attacker with an encrypt-only key.
 */
async function sealRaw(
  envelope: Envelope,
  gcmPlaintext: Buffer,
  flags: number,
  ctx = context,
): Promise<Buffer> {
  const materials = await envelope.generateDataKey({ context: ctx });
  const messageId = randomBytes(32);
  const okm = Buffer.from(
    hkdfSync("sha256", materials.dataKey, messageId, "envelope:v1:suite1:key+commitment", 64),
  );
  const aad = Buffer.concat([Buffer.of(1, 1, flags), messageId, encodeContext(ctx)]);
  const gcm = createCipheriv("aes-256-gcm", okm.subarray(0, 32), Buffer.alloc(12));
  gcm.setAAD(aad);
  const ciphertext = Buffer.concat([gcm.update(gcmPlaintext), gcm.final()]);
  return encodeEnvelope({
    version: 1,
    suite: 1,
    flags,
    messageId,
    commitment: okm.subarray(32),
    entries: materials.entries,
    storedContext: undefined,
    body: Buffer.concat([ciphertext, gcm.getAuthTag()]),
  });
}

describe("padded lengths (FORMAT.md §2.3)", () => {
  it.each([
    [32, 0, 32],
    [32, 31, 32],
    [32, 32, 64], // the 0x80 marker always takes a byte
    [32, 63, 64],
    [16, 17, 32],
    [{ bucket: 16, min: 64 }, 0, 64],
    [{ bucket: 16, min: 64 }, 63, 64],
    [{ bucket: 16, min: 64 }, 64, 80],
    [{ bucket: 32, min: 50 }, 10, 64], // min not a multiple of bucket: rounded up
    ["pii", 9, 64],
    ["pii", 63, 64],
    ["pii", 64, 96],
    ["pii", 200, 224],
  ] as const)("pad %j: %i bytes are sealed as %i", async (pad, length, padded) => {
    const envelope = new Envelope({ encrypt: aes(), pad });
    const value = randomBytes(length);
    const sealed = await envelope.encrypt(value, { context });
    expect(bodyOf(sealed)).toBe(padded);
    expect(envelope.inspect(sealed).padded).toBe(true);
    expect(sealed[2]! & 0x04).toBe(0x04);
    expect((await envelope.decrypt(sealed, { context })).equals(value)).toBe(true);
  });

  it("values of different lengths in one bucket are sealed to the same size", async () => {
    const envelope = new Envelope({ encrypt: aes(), pad: "pii" });
    const values = ["123-45-6789", "Ann", "+15550100", "ann.lee@example.com", ""];
    const sizes = await Promise.all(values.map((v) => envelope.encrypt(v, { context })));
    expect(new Set(sizes.map((s) => s.length)).size).toBe(1);
    // Without padding the same values are all told apart by length.
    const plain = new Envelope({ encrypt: aes() });
    const open = await Promise.all(values.map((v) => plain.encrypt(v, { context })));
    expect(new Set(open.map((s) => s.length)).size).toBe(values.length);
  });

  it("any bytes round-trip under any bucket, including values ending in 0x80 and 0x00", async () => {
    const envelope = new Envelope({ encrypt: aes(), cache: { maxEntries: 10 } });
    const tricky = fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      fc
        .uint8Array({ maxLength: 20 })
        .map((b) => Buffer.concat([b, Buffer.of(0x80), Buffer.alloc(b.length % 4)])),
    );
    await fc.assert(
      fc.asyncProperty(tricky, fc.integer({ min: 2, max: 40 }), async (value, bucket) => {
        const sealed = await envelope.encrypt(value, { context, pad: bucket });
        const padded = bodyOf(sealed);
        expect(padded % bucket).toBe(0);
        expect(padded).toBeGreaterThan(value.length);
        expect(Buffer.from(value).equals(await envelope.decrypt(sealed, { context }))).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it("text output and as: 'text' strip the padding too", async () => {
    const envelope = new Envelope({ encrypt: aes(), pad: 32 });
    const sealed = await envelope.encrypt("Zoë", { context, output: "text" });
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe("Zoë");
    expect(envelope.inspect(sealed).padded).toBe(true);
  });
});

describe("where the padding option comes from", () => {
  it("per call: pad on a client without a default, pad: false on a client with one", async () => {
    const plain = new Envelope({ encrypt: aes() });
    expect(bodyOf(await plain.encrypt("x", { context }))).toBe(1);
    expect(bodyOf(await plain.encrypt("x", { context, pad: 16 }))).toBe(16);
    const padded = new Envelope({ encrypt: aes(), pad: 16 });
    const off = await padded.encrypt("x", { context, pad: false });
    expect(bodyOf(off)).toBe(1);
    expect(padded.inspect(off).padded).toBe(false);
    expect(bodyOf(await padded.encrypt("x", { context, pad: { bucket: 8, min: 40 } }))).toBe(40);
  });

  it("encryptWithDataKey pads with the client default or its own option", async () => {
    const envelope = new Envelope({ encrypt: aes(), pad: 32 });
    const materials = await envelope.generateDataKey({ context });
    try {
      const byDefault = envelope.encryptWithDataKey(materials, "a@b.c", { context });
      const own = envelope.encryptWithDataKey(materials, "a@b.c", { context, pad: 8 });
      expect([bodyOf(byDefault), bodyOf(own)]).toEqual([32, 8]);
      expect(await envelope.decrypt(own, { context, as: "text" })).toBe("a@b.c");
    } finally {
      materials.dataKey.fill(0);
    }
  });

  it("data-key reuse and padding together", async () => {
    const envelope = new Envelope({ encrypt: aes(), pad: 32, dataKeyReuse: { maxMessages: 5 } });
    const a = await envelope.encrypt("first", { context });
    const b = await envelope.encrypt("second value", { context });
    expect(envelope.cacheStats().dataKeysReused).toBe(1);
    expect([bodyOf(a), bodyOf(b)]).toEqual([32, 32]);
    expect(await envelope.decrypt(b, { context, as: "text" })).toBe("second value");
  });

  const badOptions: unknown[] = [
    0,
    1,
    -32,
    1.5,
    Number.NaN,
    2 ** 20 + 1,
    "32",
    "PII",
    true,
    null,
    [32],
    {},
    { bucket: 1 },
    { bucket: 32, min: -1 },
    { bucket: 32, min: 2 ** 21 },
    { bucket: 32, max: 64 },
  ];
  it.each(badOptions)("a bad client option %j is ENVELOPE_BAD_CONFIG", (pad) => {
    const error = thrown(() => new Envelope({ encrypt: aes(), pad: pad as never }));
    expect(expectEnvelopeError(error, ConfigError, "ENVELOPE_BAD_CONFIG").details.field).toBe(
      "pad",
    );
  });
  it.each(badOptions)("a bad per-call option %j is ENVELOPE_BAD_INPUT", async (pad) => {
    const envelope = new Envelope({ encrypt: aes() });
    const error = await rejection(envelope.encrypt("x", { context, pad: pad as never }));
    expectEnvelopeError(error, ConfigError, "ENVELOPE_BAD_INPUT");
  });

  it("createEnvelope validates pad before loading any provider", async () => {
    const key = randomBytes(32).toString("hex");
    const env = { AES: key };
    const envelope = await createEnvelope({ encrypt: "local-aes://env/AES", pad: "pii" }, env);
    expect(bodyOf(await envelope.encrypt("x", { context }))).toBe(64);
    const error = await rejection(
      createEnvelope({ encrypt: "no-such-provider://x", pad: 1 } as never, env),
    );
    expect(expectEnvelopeError(error, ConfigError, "ENVELOPE_BAD_CONFIG").details.field).toBe(
      "pad",
    );
  });

  it.each([
    [{ ENVELOPE_PAD: "32" }, 32],
    [{ ENVELOPE_PAD: " pii " }, "pii"],
    [{ ENVELOPE_PAD: "off" }, false],
    [
      { ENVELOPE_PAD: "16", ENVELOPE_PAD_MIN: "64" },
      { bucket: 16, min: 64 },
    ],
    [{}, undefined],
  ])("env %j gives pad %j", (vars, pad) => {
    const config = configFromEnv({ ENVELOPE_ENCRYPT_KEYS: "local-aes://env/AES", ...vars });
    expect(config.pad).toEqual(pad);
  });

  it.each([
    [{ ENVELOPE_PAD: "1" }, "ENVELOPE_PAD"],
    [{ ENVELOPE_PAD: "32 bytes" }, "ENVELOPE_PAD"],
    [{ ENVELOPE_PAD_MIN: "64" }, "ENVELOPE_PAD_MIN"],
    [{ ENVELOPE_PAD: "pii", ENVELOPE_PAD_MIN: "64" }, "ENVELOPE_PAD_MIN"],
    [{ ENVELOPE_PAD: "off", ENVELOPE_PAD_MIN: "64" }, "ENVELOPE_PAD_MIN"],
    [{ ENVELOPE_PADDING: "32" }, "ENVELOPE_PADDING"],
  ])("env %j is refused, naming %s", (vars, field) => {
    const error = thrown(() =>
      configFromEnv({ ENVELOPE_ENCRYPT_KEYS: "local-aes://env/AES", ...vars }),
    );
    expect(expectEnvelopeError(error, ConfigError, "ENVELOPE_BAD_CONFIG").details.field).toBe(
      field,
    );
  });
});

describe("the padded flag is authenticated and checked", () => {
  it("clearing bit 2 of a padded value, or setting it on an unpadded one, fails GCM", async () => {
    const envelope = new Envelope({ encrypt: aes(), cache: false });
    const padded = await envelope.encrypt("ann", { context, pad: 32 });
    const cleared = Buffer.from(padded);
    cleared[2]! &= ~0x04;
    const error = await rejection(envelope.decrypt(cleared, { context }));
    expectEnvelopeError(error, DecryptionError, "ENVELOPE_DECRYPT_FAILED");
    const plain = await envelope.encrypt("ann", { context });
    const set = Buffer.from(plain);
    set[2]! |= 0x04;
    const error2 = await rejection(envelope.decrypt(set, { context }));
    expectEnvelopeError(error2, DecryptionError, "ENVELOPE_DECRYPT_FAILED");
  });

  it("the spec-built value with well-formed padding opens (any padding length, not only a bucket)", async () => {
    const envelope = new Envelope({ encrypt: aes(), cache: false });
    const value = Buffer.from("ann");
    const sealed = await sealRaw(
      envelope,
      Buffer.concat([value, Buffer.of(0x80), Buffer.alloc(96)]),
      4,
    );
    expect((await envelope.decrypt(sealed, { context })).equals(value)).toBe(true);
  });

  it.each([
    ["all zero", Buffer.alloc(16)],
    ["no marker", Buffer.from("ann")],
    ["marker followed by a non-zero byte", Buffer.concat([Buffer.from("ann\x80"), Buffer.of(1)])],
    ["0x81 in place of the marker", Buffer.concat([Buffer.from("ann"), Buffer.of(0x81, 0, 0)])],
  ])("authentic but malformed padding (%s) is ENVELOPE_BAD_PADDING", async (_, plaintext) => {
    const envelope = new Envelope({ encrypt: aes() });
    const sealed = await sealRaw(envelope, plaintext, 4);
    const error = await rejection(envelope.decrypt(sealed, { context }));
    const e = expectEnvelopeError(error, DecryptionError, "ENVELOPE_BAD_PADDING");
    expect(e.message).not.toContain("ann");
    // Rewrap with body verification refuses it too, and writes nothing.
    const error2 = await rejection(envelope.rewrap(sealed, { context, verifyBody: true }));
    expectEnvelopeError(error2, DecryptionError, "ENVELOPE_BAD_PADDING");
  });

  it("the decoder refuses a padded value with an empty ciphertext, and bits 1 and 2 together", async () => {
    const envelope = new Envelope({ encrypt: aes() });
    const sealed = await envelope.encrypt("x", { context, pad: 16 });
    const parts = decodeEnvelope(sealed);
    const encodeError = thrown(() => encodeEnvelope({ ...parts, body: parts.body.subarray(16) }));
    expectEnvelopeError(encodeError, ConfigError, "ENVELOPE_BAD_INPUT");
    const both = Buffer.from(sealed);
    both[2] = 0x06;
    const error = await rejection(envelope.decrypt(both, { context }));
    expect(expectEnvelopeError(error, FormatError, "ENVELOPE_BAD_FORMAT").details.field).toBe(
      "flags",
    );
  });
});

describe("padding with the other modes", () => {
  it("rewrap keeps every byte but the entries: flags, header and padded body", async () => {
    const from = aes();
    const to = aes();
    const writer = new Envelope({ encrypt: from, pad: "pii" });
    const sealed = await writer.encrypt("078-05-1120", { context });
    const operator = new Envelope({ encrypt: to, decrypt: [from] });
    const rewrapped = await operator.rewrap(sealed, { context, verifyBody: true });
    const before = decodeEnvelope(sealed);
    const after = decodeEnvelope(rewrapped);
    expect(rewrapped.subarray(0, 67).equals(sealed.subarray(0, 67))).toBe(true);
    expect(Buffer.from(after.body).equals(Buffer.from(before.body))).toBe(true);
    expect(after.entries[0]!.keyRef).toBe(to.keyRef);
    const reader = new Envelope({ encrypt: to });
    expect(await reader.decrypt(rewrapped, { context, as: "text" })).toBe("078-05-1120");
  });

  it("signed mode: padding is signed; clearing bit 2 is ENVELOPE_BAD_SIGNATURE", async () => {
    const { privateKeyPem, publicKey } = generateSigningKeyPair();
    const key = aes();
    const writer = new Envelope({ encrypt: key, signing: { key: privateKeyPem }, pad: 32 });
    const reader = new Envelope({ encrypt: key, trustedSigners: [publicKey], cache: false });
    const sealed = await writer.encrypt("Ann", { context });
    expect(sealed[1]).toBe(2);
    expect(await reader.decrypt(sealed, { context, as: "text" })).toBe("Ann");
    const cleared = Buffer.from(sealed);
    cleared[2]! &= ~0x04;
    const error = await rejection(reader.decrypt(cleared, { context }));
    expectEnvelopeError(error, DecryptionError, "ENVELOPE_BAD_SIGNATURE");
  });

  it("a client default never pads a stream key envelope, and the stream still opens", async () => {
    const envelope = new Envelope({ encrypt: aes(), pad: "pii" });
    const sealed = await buffer(
      Readable.from([Buffer.from("rows")]).pipe(encryptStream(envelope, { context })),
    );
    const keyEnvelope = parseStreamHeader(sealed)!.keyEnvelope;
    expect(keyEnvelope[2]! & 0x04).toBe(0);
    expect(bodyOf(Buffer.from(keyEnvelope))).toBe(32);
    const opened = await buffer(Readable.from([sealed]).pipe(decryptStream(envelope, { context })));
    expect(opened.toString()).toBe("rows");
  });

  it("a padded value used as a stream key envelope is refused, even with allowLegacyKeyEnvelope", async () => {
    const kms = countingProvider();
    const envelope = new Envelope({ encrypt: kms, cache: false });
    const planted = randomBytes(32);
    const value = await envelope.encrypt(planted, { context, pad: 64 });
    const { messageId } = decodeEnvelope(value);
    const chunkKey = deriveChunkKey(planted, messageId);
    const base = { prefix: headerPrefix(0, 1024), messageId: Buffer.from(messageId) };
    const forged = Buffer.concat([
      encodeStreamHeader(1024, value),
      sealChunk(chunkKey, base, 0, true, Buffer.from("planted rows")),
    ]);
    kms.reset();
    const error = await rejection(
      buffer(
        Readable.from([forged]).pipe(
          decryptStream(envelope, { context, allowLegacyKeyEnvelope: true }),
        ),
      ),
    );
    expectEnvelopeError(error, DecryptionError, "ENVELOPE_WRONG_PURPOSE");
    expect(kms.calls.unwrap).toBe(0);
  });
});
