import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import {
  DecryptionError,
  decodeEnvelope,
  decryptStream,
  Envelope,
  encryptStream,
  inspectEnvelope,
  inspectStream,
  localAesProvider,
  parseStreamHeader,
  rewrapStream,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { deriveChunkKey, sealChunk } from "../src/stream/chunk-crypto.js";
import { encodeStreamHeader, headerPrefix } from "../src/stream/header.js";
import { countingProvider } from "./support/counting-provider.js";

const context = { file: "backup.sql" };

async function run(transform: NodeJS.ReadWriteStream, input: Buffer | Buffer[]): Promise<Buffer> {
  return buffer(Readable.from(Array.isArray(input) ? input : [input]).pipe(transform));
}

const fail = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (error: unknown) => error as DecryptionError,
  );

/**
 * A stream around any key envelope: what someone who can write the file (or the row that
 * stores it) builds from a value envelope sealing 32 bytes they know.
 */
function streamAround(keyEnvelope: Buffer, streamKey: Buffer, plaintext: Buffer): Buffer {
  const { messageId } = decodeEnvelope(keyEnvelope);
  const key = deriveChunkKey(streamKey, messageId);
  const base = { prefix: headerPrefix(0, 1024), messageId: Buffer.from(messageId) };
  return Buffer.concat([
    encodeStreamHeader(1024, keyEnvelope),
    sealChunk(key, base, 0, true, plaintext),
  ]);
}

describe("stream key envelopes are domain-separated from values (flags bit 1)", () => {
  it("encryptStream marks its key envelope; decrypt refuses it before any unwrap", async () => {
    const kms = countingProvider();
    const envelope = new Envelope({ encrypt: kms, cache: false });
    const sealed = await run(encryptStream(envelope, { context }), Buffer.from("secret rows"));
    const keyEnvelope = Buffer.from(parseStreamHeader(sealed)!.keyEnvelope);
    expect(keyEnvelope[2]! & 0x02).toBe(0x02);
    expect(inspectStream(sealed).key.streamKey).toBe(true);

    kms.reset();
    const error = await fail(envelope.decrypt(keyEnvelope, { context }));
    expect(error).toBeInstanceOf(DecryptionError);
    expect(error.code).toBe("ENVELOPE_WRONG_PURPOSE");
    expect(kms.calls.unwrap).toBe(0);
    // The text form is refused the same way.
    const { toText } = await import("@envelope/core");
    await expect(envelope.decrypt(toText(keyEnvelope), { context })).rejects.toMatchObject({
      code: "ENVELOPE_WRONG_PURPOSE",
    });
  });

  it("decryptStream refuses a value envelope used as a key envelope, before any unwrap", async () => {
    const kms = countingProvider();
    const envelope = new Envelope({ encrypt: kms, cache: false });
    // Any 32-byte value sealed under the stream's context, e.g. planted by a writer.
    const planted = randomBytes(32);
    const value = await envelope.encrypt(planted, { context });
    expect(inspectEnvelope(value).streamKey).toBe(false);
    const forged = streamAround(value, planted, Buffer.from("attacker's rows"));

    kms.reset();
    const error = await fail(run(decryptStream(envelope, { context }), forged));
    expect(error).toBeInstanceOf(DecryptionError);
    expect(error.code).toBe("ENVELOPE_WRONG_PURPOSE");
    expect(kms.calls.unwrap).toBe(0);

    // The documented, weaker legacy opt-in accepts it: that is why it is off by default.
    const opened = await run(
      decryptStream(envelope, { context, allowLegacyKeyEnvelope: true }),
      forged,
    );
    expect(opened.toString()).toBe("attacker's rows");
  });

  it("the flag is authenticated: setting or clearing it breaks the key envelope", async () => {
    const envelope = new Envelope({ encrypt: countingProvider(), cache: false });
    const planted = randomBytes(32);
    const value = await envelope.encrypt(planted, { context });
    const flagged = Buffer.from(value);
    flagged[2]! |= 0x02;
    await expect(
      run(decryptStream(envelope, { context }), streamAround(flagged, planted, Buffer.from("x"))),
    ).rejects.toMatchObject({ code: "ENVELOPE_DECRYPT_FAILED" });

    const sealed = await run(encryptStream(envelope, { context }), Buffer.from("rows"));
    const cleared = Buffer.from(sealed);
    cleared[15 + 2]! &= ~0x02;
    await expect(run(decryptStream(envelope, { context }), cleared)).rejects.toMatchObject({
      code: "ENVELOPE_WRONG_PURPOSE",
    });
    await expect(
      run(decryptStream(envelope, { context, allowLegacyKeyEnvelope: true }), cleared),
    ).rejects.toMatchObject({ code: "ENVELOPE_DECRYPT_FAILED" });
  });

  it("allowLegacyKeyEnvelope still opens a current stream", async () => {
    const envelope = new Envelope({ encrypt: countingProvider() });
    const sealed = await run(encryptStream(envelope, { context }), Buffer.from("rows"));
    const opened = await run(
      decryptStream(envelope, { context, allowLegacyKeyEnvelope: true }),
      sealed,
    );
    expect(opened.toString()).toBe("rows");
  });

  it("rewrap keeps the purpose flag (it is in the body's AAD)", async () => {
    const a = countingProvider();
    const b = countingProvider();
    const envelope = new Envelope({ encrypt: a, decrypt: [b] });
    const sealed = await run(encryptStream(envelope, { context }), Buffer.from("rows"));
    const keyEnvelope = Buffer.from(parseStreamHeader(sealed)!.keyEnvelope);
    const moved = await envelope.rewrap(keyEnvelope, { to: b, context });
    expect(moved[2]).toBe(keyEnvelope[2]);
    const streamMoved = await run(rewrapStream(envelope, { to: b, context }), sealed);
    const onlyB = new Envelope({ encrypt: b });
    expect((await run(decryptStream(onlyB, { context }), streamMoved)).toString()).toBe("rows");
  });

  it("with data-key reuse on, a stream key never shares a data key with values", async () => {
    const aes = localAesProvider({ keys: randomBytes(32) });
    const envelope = new Envelope({ encrypt: aes, dataKeyReuse: { maxMessages: 100 } });
    const value = await envelope.encrypt("v", { context });
    const again = await envelope.encrypt("w", { context });
    // Reuse is on: the two values share a data key (AES-KW is deterministic).
    expect(decodeEnvelope(again).entries[0]!.wrapped).toEqual(
      decodeEnvelope(value).entries[0]!.wrapped,
    );
    const stream = await run(encryptStream(envelope, { context }), Buffer.from("data"));
    const keyEntry = decodeEnvelope(parseStreamHeader(stream)!.keyEnvelope).entries[0]!;
    expect(Buffer.from(keyEntry.wrapped).equals(decodeEnvelope(value).entries[0]!.wrapped)).toBe(
      false,
    );
  });

  it("values stay values: ordinary encrypt never sets the flag", async () => {
    const envelope = new Envelope({ encrypt: countingProvider(), storeContext: true });
    const value = await envelope.encrypt(randomBytes(32), { context });
    expect(value[2]).toBe(0x01);
    expect(inspectEnvelope(value)).toMatchObject({ contextStored: true, streamKey: false });
  });
});
