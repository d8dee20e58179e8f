// Suite 0x03 (docs/FORMAT.md §15): the one-step SHA-512 KDF, and when writers use it.
import { createHash, hkdfSync, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { describe, expect, it } from "vitest";
import { deriveMessageKeys } from "../src/crypto/kdf.js";
import {
  decryptStream,
  Envelope,
  encryptStream,
  generateSigningKeyPair,
  type KeyProvider,
  localAesProvider,
  parseStreamHeader,
} from "../src/index.js";

const CONTEXT = { table: "users", column: "email", id: "42" };

/** local-aes whose generated data keys ask for `suite` (what hierarchical mode does with suite: 3). */
function askingFor(suite: number, keys = randomBytes(32)): KeyProvider {
  const inner = localAesProvider({ keys });
  return {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    wrap: (k, r) => inner.wrap(k, r),
    unwrap: (e, r) => inner.unwrap(e, r),
    async generateDataKey(request) {
      const dataKey = randomBytes(32);
      return { dataKey, entry: await inner.wrap(dataKey, request), suite };
    },
  };
}

describe("suite 0x03 key derivation", () => {
  it("is SHA-512(u32(1) || DEK || info || messageId), split 32/32", () => {
    for (let i = 0; i < 20; i++) {
      const dek = randomBytes(32);
      const id = randomBytes(32);
      const okm = createHash("sha512")
        .update(Buffer.from([0, 0, 0, 1]))
        .update(dek)
        .update("envelope:v1:suite3:key+commitment")
        .update(id)
        .digest();
      const got = deriveMessageKeys(dek, id, 3);
      expect(Buffer.concat([got.encryptionKey, got.commitment]).equals(okm)).toBe(true);
    }
  });

  it("suites 1 and 2 keep HKDF-SHA256, and the two derivations never agree", () => {
    const dek = randomBytes(32);
    const id = randomBytes(32);
    const hkdf = Buffer.from(hkdfSync("sha256", dek, id, "envelope:v1:suite1:key+commitment", 64));
    for (const suite of [1, 2]) {
      const got = deriveMessageKeys(dek, id, suite);
      expect(Buffer.concat([got.encryptionKey, got.commitment]).equals(hkdf)).toBe(true);
    }
    expect(deriveMessageKeys(dek, id, 3).commitment.equals(hkdf.subarray(32))).toBe(false);
  });

  it("zeroing the message key leaves the commitment intact", () => {
    const keys = deriveMessageKeys(randomBytes(32), randomBytes(32), 3);
    const commitment = Buffer.from(keys.commitment);
    keys.encryptionKey.fill(0);
    expect(keys.commitment.equals(commitment)).toBe(true);
  });
});

describe("writing suite 0x03", () => {
  it("a provider asking for suite 3 gets suite 3 values that open (plain and padded)", async () => {
    const envelope = new Envelope({ encrypt: askingFor(3), cache: false });
    const sealed = await envelope.encrypt("alice@example.com", {
      context: CONTEXT,
      output: "binary",
    });
    expect(sealed[1]).toBe(0x03);
    expect((await envelope.decrypt(sealed, { context: CONTEXT })).toString()).toBe(
      "alice@example.com",
    );
    const padded = await envelope.encrypt("x", { context: CONTEXT, output: "binary", pad: 32 });
    expect([padded[1], padded[2]! & 0x04]).toEqual([0x03, 0x04]);
    expect((await envelope.decrypt(padded, { context: CONTEXT })).toString()).toBe("x");
  });

  it("the suite byte cannot be changed: 3 -> 1 is a commitment mismatch", async () => {
    const envelope = new Envelope({ encrypt: askingFor(3) });
    const sealed = await envelope.encrypt("v", { context: CONTEXT, output: "binary" });
    sealed[1] = 0x01;
    await expect(envelope.decrypt(sealed, { context: CONTEXT })).rejects.toMatchObject({
      code: "ENVELOPE_COMMITMENT_MISMATCH",
    });
  });

  it("any other suite a provider names is ignored: the value is suite 1", async () => {
    for (const suite of [1, 2, 4, 0xff]) {
      const envelope = new Envelope({ encrypt: askingFor(suite) });
      const sealed = await envelope.encrypt("v", { context: CONTEXT, output: "binary" });
      expect(sealed[1]).toBe(0x01);
    }
  });

  it("a signing writer writes suite 2 even when its provider asks for 3", async () => {
    const keys = generateSigningKeyPair();
    const provider = askingFor(3);
    const writer = new Envelope({ encrypt: provider, signing: { key: keys.privateKeyPem } });
    const reader = new Envelope({ encrypt: provider, trustedSigners: [keys.publicKey] });
    const sealed = await writer.encrypt("v", { context: CONTEXT, output: "binary" });
    expect(sealed[1]).toBe(0x02);
    expect((await reader.decrypt(sealed, { context: CONTEXT })).toString()).toBe("v");
  });

  it("rewrap keeps suite 3, and the rewrapped value opens under the new key only", async () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const writer = new Envelope({ encrypt: askingFor(3, oldKey) });
    const sealed = await writer.encrypt("v", { context: CONTEXT, output: "binary" });
    const mover = new Envelope({
      encrypt: localAesProvider({ keys: newKey }),
      decrypt: [localAesProvider({ keys: oldKey })],
    });
    const moved = await mover.rewrap(sealed, { context: CONTEXT });
    expect(moved[1]).toBe(0x03);
    const reader = new Envelope({ encrypt: localAesProvider({ keys: newKey }) });
    expect((await reader.decrypt(moved, { context: CONTEXT })).toString()).toBe("v");
  });

  it("a stream's key envelope is suite 3 too, and the stream opens", async () => {
    const envelope = new Envelope({ encrypt: askingFor(3) });
    const sealed = await buffer(
      Readable.from([Buffer.from("rows")]).pipe(encryptStream(envelope, { context: CONTEXT })),
    );
    expect(parseStreamHeader(sealed)!.keyEnvelope[1]).toBe(0x03);
    const opened = await buffer(
      Readable.from([sealed]).pipe(decryptStream(envelope, { context: CONTEXT })),
    );
    expect(opened.toString()).toBe("rows");
  });
});
