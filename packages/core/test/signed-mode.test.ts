import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  verify,
} from "node:crypto";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { inspect } from "node:util";
import {
  ConfigError,
  configFromEnv,
  createEnvelope,
  DecryptionError,
  decodeEnvelope,
  decryptStream,
  Envelope,
  type EnvelopeOptions,
  encodeContext,
  encryptStream,
  envelopeFromEnv,
  FormatError,
  fromText,
  generateSigningKeyPair,
  type KeyProvider,
  parseStreamHeader,
  SUITE_SIGNED_ED25519,
  toText,
} from "@envelope/core";
import { describe, expect, it } from "vitest";
import { expectEnvelopeError, rejection, thrown } from "./support/codes.js";
import { type CountingProvider, countingProvider } from "./support/counting-provider.js";

const context = { table: "users", column: "ssn", id: "42" };
const writerKeys = generateSigningKeyPair();
const otherKeys = generateSigningKeyPair();

/** Offsets of suite 0x02 (docs/FORMAT.md §14.1). */
const SIGNER_AT = 67;
const SIGNATURE_AT = 99;
const ENTRY_COUNT_AT = 163;

function kms(): CountingProvider {
  return countingProvider();
}

/** A writer (signing) and a reader pinned to it, sharing one KMS key. */
function pair(extra: Partial<EnvelopeOptions> = {}, provider = kms()) {
  const writer = new Envelope({
    encrypt: provider,
    signing: { key: writerKeys.privateKeyPem },
    ...extra,
  });
  const reader = new Envelope({
    encrypt: provider,
    trustedSigners: [writerKeys.publicKey],
    ...extra,
  });
  return { provider, writer, reader };
}

/** A copy of `bytes` with `at` xor-ed by `mask`. */
function flip(bytes: Uint8Array, at: number, mask = 0x01): Buffer {
  const out = Buffer.from(bytes);
  out[at]! ^= mask;
  return out;
}

/**
 * The bytes a suite 0x02 signature covers, built from docs/FORMAT.md §14.2 alone (not
 * from the library's helper), to pin the spec.
 */
function specSignedBytes(value: Buffer, canonicalContext: Buffer): Buffer {
  const parts = decodeEnvelope(value);
  const u16 = Buffer.alloc(2);
  u16.writeUInt16BE(canonicalContext.length);
  const u32 = Buffer.alloc(4);
  u32.writeUInt32BE(parts.body.length - 16);
  return Buffer.concat([
    Buffer.from("envelope:v1:suite2:ed25519-signature", "ascii"),
    value.subarray(0, 3),
    value.subarray(3, 35), // messageId
    value.subarray(35, 67), // commitment
    value.subarray(SIGNER_AT, SIGNATURE_AT), // signer key
    u16,
    canonicalContext,
    u32,
    createHash("sha256").update(parts.body).digest(),
  ]);
}

describe("signed mode: round trips", () => {
  it("a signing writer seals suite 0x02 and a pinned reader opens it (binary and text)", async () => {
    const { writer, reader } = pair();
    const sealed = await writer.encrypt("123-45-6789", { context });
    expect(sealed[0]).toBe(1);
    expect(sealed[1]).toBe(SUITE_SIGNED_ED25519);
    expect(sealed.subarray(SIGNER_AT, SIGNATURE_AT).toString("hex")).toBe(
      writerKeys.publicKey.slice("ed25519:".length),
    );
    expect(await reader.decrypt(sealed, { context, as: "text" })).toBe("123-45-6789");
    const text = await writer.encrypt("x", { context, output: "text" });
    expect(text.startsWith("ev1:")).toBe(true);
    expect(await reader.decrypt(text, { context, as: "text" })).toBe("x");
    expect(writer.inspect(text).signer).toBe(writerKeys.publicKey);
    expect(writer.inspect(text).suite).toBe(2);
  });

  it("the signature is over exactly the bytes FORMAT.md §14.2 lists (entries excluded)", async () => {
    const { writer } = pair();
    for (const storeContext of [false, true]) {
      const w = new Envelope({
        encrypt: [kms(), kms()],
        signing: { key: writerKeys.privateKeyPem },
        storeContext,
      });
      const sealed = await w.encrypt(randomBytes(100), { context });
      const message = specSignedBytes(sealed, encodeContext(context));
      expect(message.length).toBe(173 + encodeContext(context).length);
      const signature = sealed.subarray(SIGNATURE_AT, ENTRY_COUNT_AT);
      const key = createPublicKey(writerKeys.publicKeyPem);
      expect(verify(null, message, key, signature)).toBe(true);
      // Entry count sits right after the signature.
      expect(sealed[ENTRY_COUNT_AT]).toBe(2);
    }
    // The empty context (`00 00`) is signed when none is given.
    const bare = await writer.encrypt("v");
    const key = createPublicKey(writerKeys.publicKeyPem);
    expect(
      verify(
        null,
        specSignedBytes(bare, Buffer.from("0000", "hex")),
        key,
        bare.subarray(SIGNATURE_AT, ENTRY_COUNT_AT),
      ),
    ).toBe(true);
  });

  it("stored context, multi-wrap, data-key reuse and empty plaintext", async () => {
    const a = kms();
    const b = kms();
    const writer = new Envelope({
      encrypt: [a, b],
      signing: { key: writerKeys.privateKeyPem },
      storeContext: true,
      dataKeyReuse: { maxMessages: 10 },
    });
    const onlyB = new Envelope({ encrypt: b, trustedSigners: [writerKeys.publicKey] });
    for (const pt of ["", "one", "two"]) {
      const sealed = await writer.encrypt(pt, { context });
      expect(await onlyB.decrypt(sealed, { as: "text" })).toBe(pt);
    }
  });

  it("encryptWithDataKey signs too", async () => {
    const { writer, reader } = pair();
    const materials = await writer.generateDataKey({ context });
    try {
      const sealed = writer.encryptWithDataKey(materials, "field", { context });
      expect(sealed[1]).toBe(2);
      expect(await reader.decrypt(sealed, { context, as: "text" })).toBe("field");
    } finally {
      materials.dataKey.fill(0);
    }
  });

  it("stream key envelopes are signed, and a pinned reader opens the stream", async () => {
    const { writer, reader, provider } = pair();
    const data = randomBytes(200_000);
    const chunks: Buffer[] = [];
    await pipeline(Readable.from([data]), encryptStream(writer, { context }), async (source) => {
      for await (const c of source) chunks.push(c as Buffer);
    });
    const stream = Buffer.concat(chunks);
    const header = parseStreamHeader(stream)!;
    expect(header.keyEnvelope[1]).toBe(2);
    const out: Buffer[] = [];
    await pipeline(Readable.from([stream]), decryptStream(reader, { context }), async (source) => {
      for await (const c of source) out.push(c as Buffer);
    });
    expect(Buffer.concat(out).equals(data)).toBe(true);
    // A stream written without a signing key is refused by the pinned reader.
    const unsigned = new Envelope({ encrypt: provider });
    const plain: Buffer[] = [];
    await pipeline(Readable.from([data]), encryptStream(unsigned, { context }), async (source) => {
      for await (const c of source) plain.push(c as Buffer);
    });
    const error = await rejection(
      pipeline(
        Readable.from([Buffer.concat(plain)]),
        decryptStream(reader, { context }),
        async (s) => {
          for await (const _ of s);
        },
      ),
    );
    expectEnvelopeError(error, DecryptionError, "ENVELOPE_UNSIGNED");
  });
});

describe("signed mode: refusals, each before any unwrap", () => {
  it.each([
    ["an unsigned value", "ENVELOPE_UNSIGNED"],
    ["a value signed by an untrusted key", "ENVELOPE_UNTRUSTED_SIGNER"],
    ["a flipped signature byte", "ENVELOPE_BAD_SIGNATURE"],
    ["a flipped body byte", "ENVELOPE_BAD_SIGNATURE"],
    ["a flipped commitment byte", "ENVELOPE_BAD_SIGNATURE"],
    ["a flipped message id byte", "ENVELOPE_BAD_SIGNATURE"],
    ["a flipped signer key", "ENVELOPE_UNTRUSTED_SIGNER"],
    ["the signature of another value", "ENVELOPE_BAD_SIGNATURE"],
    ["the wrong context", "ENVELOPE_BAD_SIGNATURE"],
  ] as const)("%s → %s, no KMS call", async (name, code) => {
    const { writer, reader, provider } = pair();
    let value = await writer.encrypt("secret", { context });
    const decryptContext = name === "the wrong context" ? { ...context, id: "43" } : context;
    switch (name) {
      case "an unsigned value":
        value = await new Envelope({ encrypt: provider }).encrypt("secret", { context });
        break;
      case "a value signed by an untrusted key":
        value = await new Envelope({
          encrypt: provider,
          signing: { key: otherKeys.privateKeyPem },
        }).encrypt("secret", { context });
        break;
      case "a flipped signature byte":
        value = flip(value, SIGNATURE_AT + 10);
        break;
      case "a flipped body byte":
        value = flip(value, value.length - 20);
        break;
      case "a flipped commitment byte":
        value = flip(value, 40);
        break;
      case "a flipped message id byte":
        value = flip(value, 5);
        break;
      case "a flipped signer key":
        value = flip(value, SIGNER_AT);
        break;
      case "the signature of another value": {
        const other = await writer.encrypt("secret", { context });
        value = Buffer.from(value);
        other.copy(value, SIGNATURE_AT, SIGNATURE_AT, ENTRY_COUNT_AT);
        break;
      }
    }
    provider.reset();
    const error = await rejection(reader.decrypt(value, { context: decryptContext }));
    expectEnvelopeError(error, DecryptionError, code);
    expect(provider.calls.unwrap).toBe(0);
    // Same with a warm cache: the genuine value was opened first, so its data key and
    // message key are cached; the tampered one must still be refused without them.
    const genuine = await writer.encrypt("warm", { context });
    await reader.decrypt(genuine, { context });
    const hits = reader.cacheStats().hits;
    const tampered =
      name === "a flipped signature byte"
        ? flip(genuine, SIGNATURE_AT + 10)
        : name === "a flipped body byte"
          ? flip(genuine, genuine.length - 20)
          : undefined;
    if (tampered) {
      expectEnvelopeError(
        await rejection(reader.decrypt(tampered, { context })),
        DecryptionError,
        code,
      );
      expect(reader.cacheStats().hits).toBe(hits);
    }
  });

  it("a signed value stripped to suite 0x01 (downgrade) is refused in both modes", async () => {
    const { writer, reader, provider } = pair();
    const value = await writer.encrypt("secret", { context });
    const downgraded = Buffer.concat([
      Buffer.from([1, 1, value[2]!]),
      value.subarray(3, SIGNER_AT),
      value.subarray(ENTRY_COUNT_AT),
    ]);
    expectEnvelopeError(
      await rejection(reader.decrypt(downgraded, { context })),
      DecryptionError,
      "ENVELOPE_UNSIGNED",
    );
    // An unpinned reader checks the body: the suite byte is in the AAD.
    const open = new Envelope({ encrypt: provider });
    expectEnvelopeError(
      await rejection(open.decrypt(downgraded, { context })),
      DecryptionError,
      "ENVELOPE_DECRYPT_FAILED",
    );
  });

  it("warm cache: after the genuine value is cached, a same-id copy re-signed by another key is refused with no cache hit", async () => {
    const { writer, reader, provider } = pair();
    const value = await writer.encrypt("secret", { context });
    await reader.decrypt(value, { context });
    await reader.decrypt(value, { context }); // message key remembered
    const stats = reader.cacheStats();
    // Same message id, commitment, entries and body: only the signer differs.
    const resigned = Buffer.from(value);
    const otherKey = createPrivateKey(otherKeys.privateKeyPem);
    Buffer.from(otherKeys.publicKey.slice(8), "hex").copy(resigned, SIGNER_AT);
    const { sign } = await import("node:crypto");
    sign(null, specSignedBytes(resigned, encodeContext(context)), otherKey).copy(
      resigned,
      SIGNATURE_AT,
    );
    expectEnvelopeError(
      await rejection(reader.decrypt(resigned, { context })),
      DecryptionError,
      "ENVELOPE_UNTRUSTED_SIGNER",
    );
    expect(reader.cacheStats().hits).toBe(stats.hits);
    // ...and an unpinned reader, which only checks integrity, opens it.
    const unpinned = new Envelope({ encrypt: provider });
    expect(await unpinned.decrypt(resigned, { context, as: "text" })).toBe("secret");
    expect(writer.inspect(resigned).signer).toBe(otherKeys.publicKey);
  });

  it("truncated signature or a trailing byte is ENVELOPE_BAD_FORMAT", async () => {
    const { writer, reader } = pair();
    const value = await writer.encrypt("secret", { context });
    for (const bad of [
      value.subarray(0, SIGNATURE_AT + 30),
      value.subarray(0, SIGNER_AT + 5),
      Buffer.concat([value, Buffer.of(0)]),
    ]) {
      expectEnvelopeError(
        await rejection(reader.decrypt(bad, { context })),
        FormatError,
        "ENVELOPE_BAD_FORMAT",
      );
    }
  });
});

describe("signed mode: rewrap and the forged-value attack", () => {
  it("rewrap by an operator without a signing key keeps the signature bytes and validity", async () => {
    const { writer, reader, provider } = pair();
    const value = await writer.encrypt("secret", { context });
    const next = kms();
    const operator = new Envelope({ encrypt: next, decrypt: [provider] });
    const moved = await operator.rewrap(value, { context });
    expect(moved.subarray(0, ENTRY_COUNT_AT).equals(value.subarray(0, ENTRY_COUNT_AT))).toBe(true);
    // The body region (ciphertextLength, ciphertext, tag: 4 + 6 + 16 bytes) is unchanged too.
    expect(moved.subarray(moved.length - 26).equals(value.subarray(value.length - 26))).toBe(true);
    expect(decodeEnvelope(moved).entries[0]!.keyRef).toBe(next.keyRef);
    const newReader = new Envelope({ encrypt: next, trustedSigners: [writerKeys.publicKey] });
    expect(await newReader.decrypt(moved, { context, as: "text" })).toBe("secret");
    // Text form too.
    const text = toText(value);
    const movedText = await operator.rewrap(text, { context });
    expect(fromText(movedText).subarray(SIGNATURE_AT, ENTRY_COUNT_AT)).toEqual(
      value.subarray(SIGNATURE_AT, ENTRY_COUNT_AT),
    );
    expect(await reader.decrypt(value, { context, as: "text" })).toBe("secret");
  });

  it("an attacker with encrypt rights only forges a value: accepted without signed mode, refused with it", async () => {
    const masterKey = randomBytes(32);
    const real = countingProvider({ keyRef: "pii", masterKey });
    // kms:Encrypt (or an RSA public key) without decrypt: wraps, cannot unwrap.
    const wrapOnly = countingProvider({ keyRef: "pii", masterKey });
    const encryptOnly: KeyProvider = {
      ...wrapOnly,
      id: wrapOnly.id,
      keyRef: wrapOnly.keyRef,
      wrap: (k, r) => wrapOnly.wrap(k, r),
      handles: (e) => wrapOnly.handles(e),
      unwrap: async () => {
        throw new Error("encrypt-only");
      },
    };
    delete (encryptOnly as { generateDataKey?: unknown }).generateDataKey;
    const attacker = new Envelope({ encrypt: encryptOnly });
    const forged = await attacker.encrypt("attacker's SSN", { context });

    // Without signed mode the application reads the forged value as genuine: the reason
    // signed mode exists.
    const unsignedReader = new Envelope({ encrypt: real });
    expect(await unsignedReader.decrypt(forged, { context, as: "text" })).toBe("attacker's SSN");

    const pinned = new Envelope({ encrypt: real, trustedSigners: [writerKeys.publicKey] });
    expectEnvelopeError(
      await rejection(pinned.decrypt(forged, { context })),
      DecryptionError,
      "ENVELOPE_UNSIGNED",
    );
    // Signing with a key of their own does not help either.
    const selfSigned = await new Envelope({
      encrypt: encryptOnly,
      signing: { key: otherKeys.privateKeyPem },
    }).encrypt("attacker's SSN", { context });
    expectEnvelopeError(
      await rejection(pinned.decrypt(selfSigned, { context })),
      DecryptionError,
      "ENVELOPE_UNTRUSTED_SIGNER",
    );
    expect(real.calls.unwrap).toBe(1); // only the unsigned reader's successful open
  });
});

describe("a reader not in signed mode", () => {
  it("verifies a suite 0x02 value's signature and opens it; a bad signature is refused before unwrap", async () => {
    const { writer, provider } = pair();
    const reader = new Envelope({ encrypt: provider, cache: false });
    const value = await writer.encrypt("secret", { context });
    expect(await reader.decrypt(value, { context, as: "text" })).toBe("secret");
    provider.reset();
    for (const bad of [flip(value, SIGNATURE_AT), flip(value, SIGNER_AT + 3)]) {
      expectEnvelopeError(
        await rejection(reader.decrypt(bad, { context })),
        DecryptionError,
        "ENVELOPE_BAD_SIGNATURE",
      );
    }
    expect(provider.calls.unwrap).toBe(0);
  });

  it("refuses a small-order signer key whose 'signature' verifies for every message (FORMAT.md §14.5.1), on every runtime", async () => {
    const { writer, provider } = pair();
    const reader = new Envelope({ encrypt: provider, cache: false });
    const forged = Buffer.from(await writer.encrypt("secret", { context, output: "binary" }));
    // signerKey = R = the identity point (01 00…00), S = 0: [S]B − [k]A = R for any k.
    const identity = Buffer.alloc(32);
    identity[0] = 1;
    identity.copy(forged, SIGNER_AT);
    identity.copy(forged, SIGNATURE_AT);
    forged.fill(0, SIGNATURE_AT + 32, SIGNATURE_AT + 64);
    provider.reset();
    expectEnvelopeError(
      await rejection(reader.decrypt(forged, { context })),
      DecryptionError,
      "ENVELOPE_BAD_SIGNATURE",
    );
    expect(provider.calls.unwrap).toBe(0);
    // Nor can such a key be pinned (the identity with its sign bit, a point of order 8, y = p).
    for (const hex of [
      `01${"00".repeat(30)}80`,
      "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
      `ed${"ff".repeat(30)}7f`,
    ]) {
      expectEnvelopeError(
        thrown(() => new Envelope({ encrypt: provider, trustedSigners: [`ed25519:${hex}`] })),
        ConfigError,
        "ENVELOPE_BAD_CONFIG",
      );
    }
  });
});

describe("signing keys and trusted signers: inputs, config, env", () => {
  const dir = mkdtempSync(join(tmpdir(), "envelope-signed-"));
  const privPath = join(dir, "signer.pem");
  const pubPath = join(dir, "signer.pub.pem");
  writeFileSync(privPath, writerKeys.privateKeyPem);
  chmodSync(privPath, 0o600);
  writeFileSync(pubPath, writerKeys.publicKeyPem);

  it("accepts every documented form", async () => {
    const provider = kms();
    const raw = Buffer.from(writerKeys.publicKey.slice(8), "hex");
    for (const key of [
      writerKeys.privateKeyPem,
      createPrivateKey(writerKeys.privateKeyPem),
      `ed25519://${privPath}`,
    ]) {
      const writer = new Envelope({ encrypt: provider, signing: { key } });
      for (const trusted of [
        writerKeys.publicKey,
        writerKeys.publicKey.toUpperCase().replace("ED25519:", "ed25519:"),
        writerKeys.publicKeyPem,
        createPublicKey(writerKeys.publicKeyPem),
        raw,
        new Uint8Array(raw),
        `ed25519://${pubPath}`,
      ]) {
        const reader = new Envelope({
          encrypt: provider,
          trustedSigners: [otherKeys.publicKey, trusted],
        });
        expect(await reader.decrypt(await writer.encrypt("x"), { as: "text" })).toBe("x");
      }
    }
  });

  it("a signing key file group or others can read: one warning, refused when strict", async () => {
    const loose = join(dir, "loose-signer.pem");
    writeFileSync(loose, writerKeys.privateKeyPem);
    chmodSync(loose, 0o640);
    const warnings: (Error & { code?: string })[] = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      new Envelope({ encrypt: kms(), signing: { key: `ed25519://${loose}` } });
      new Envelope({ encrypt: kms(), signing: { key: `ed25519://${loose}` } });
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.filter((w) => w.code === "ENVELOPE_KEY_FILE_PERMISSIONS")).toHaveLength(1);
    const strict = await createEnvelope(
      { encrypt: "local-aes://env/AES", signing: { key: `ed25519://${loose}` } },
      { AES: randomBytes(32).toString("hex"), ENVELOPE_STRICT_KEY_FILES: "1" },
    ).catch((e: unknown) => e);
    const e = expectEnvelopeError(strict, undefined, "ENVELOPE_BAD_KEY");
    expect(e.message).toContain("chmod 600");
    expect(e.message).not.toContain("PRIVATE KEY");
    // A trusted signer's public key file is not secret: no check.
    chmodSync(pubPath, 0o644);
    expect(
      () => new Envelope({ encrypt: kms(), trustedSigners: [`ed25519://${pubPath}`] }),
    ).not.toThrow();
  });

  it("createEnvelope: signing from a file URI or ed25519://env/VAR, trustedSigners pinned", async () => {
    const aesKey = randomBytes(32).toString("hex");
    const env = { SIGNER_PEM: writerKeys.privateKeyPem, AES: aesKey };
    const writer = await createEnvelope(
      { encrypt: "local-aes://env/AES", signing: { key: "ed25519://env/SIGNER_PEM" } },
      env,
    );
    const fromFile = await createEnvelope(
      { encrypt: "local-aes://env/AES", signing: { key: `ed25519://${privPath}` } },
      env,
    );
    const reader = await createEnvelope(
      { encrypt: "local-aes://env/AES", trustedSigners: [writerKeys.publicKey] },
      env,
    );
    for (const w of [writer, fromFile]) {
      expect(await reader.decrypt(await w.encrypt("x", { context }), { context, as: "text" })).toBe(
        "x",
      );
    }
  });

  it("env: ENVELOPE_SIGNING_KEY and ENVELOPE_TRUSTED_SIGNERS", async () => {
    const aesKey = randomBytes(32).toString("hex");
    const base = { ENVELOPE_ENCRYPT_KEYS: "local-aes://env/AES", AES: aesKey };
    const writer = await envelopeFromEnv({
      ...base,
      ENVELOPE_SIGNING_KEY: `ed25519://${privPath}`,
    });
    const inline = await envelopeFromEnv({
      ...base,
      ENVELOPE_SIGNING_KEY: writerKeys.privateKeyPem,
    });
    const readers = [
      { ENVELOPE_TRUSTED_SIGNERS: `${otherKeys.publicKey}, ${writerKeys.publicKey}` },
      { ENVELOPE_TRUSTED_SIGNERS: `${otherKeys.publicKeyPem}\n${writerKeys.publicKeyPem}` },
      { ENVELOPE_TRUSTED_SIGNERS: `ed25519://${pubPath}` },
    ];
    for (const extra of readers) {
      const reader = await envelopeFromEnv({ ...base, ...extra });
      for (const w of [writer, inline]) {
        expect(await reader.decrypt(await w.encrypt("y"), { as: "text" })).toBe("y");
      }
      const unsigned = await envelopeFromEnv(base);
      expectEnvelopeError(
        await rejection(reader.decrypt(await unsigned.encrypt("y"))),
        DecryptionError,
        "ENVELOPE_UNSIGNED",
      );
    }
    expect(configFromEnv({ ...base, ENVELOPE_TRUSTED_SIGNERS: "" }).trustedSigners).toBeUndefined();
    const typo = thrown(() => configFromEnv({ ...base, ENVELOPE_TRUSTED_SIGNERS_LIST: "x" }));
    expectEnvelopeError(typo, ConfigError, "ENVELOPE_BAD_CONFIG");
  });

  const secretHex = randomBytes(32).toString("hex");
  const rsa = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  it.each([
    ["signing.key", { signing: { key: secretHex } }],
    ["signing.key", { signing: { key: `ed25519:${secretHex}` } }],
    ["signing.key", { signing: { key: writerKeys.publicKeyPem } }],
    ["signing.key", { signing: { key: rsa.privateKey } }],
    ["signing.key", { signing: { key: "ed25519:///nonexistent/signer.pem" } }],
    ["signing.key", { signing: { key: "ed25519://env/NOT_SET_ANYWHERE" } }],
    ["signing.key", { signing: { key: 42 } }],
    ["signing.key", { signing: {} }],
    ["trustedSigners", { trustedSigners: [] }],
    ["trustedSigners", { trustedSigners: "ed25519:00" }],
    ["trustedSigners[0]", { trustedSigners: [writerKeys.privateKeyPem] }],
    ["trustedSigners[0]", { trustedSigners: [createPrivateKey(writerKeys.privateKeyPem)] }],
    ["trustedSigners[0]", { trustedSigners: [rsa.publicKey] }],
    ["trustedSigners[1]", { trustedSigners: [writerKeys.publicKey, randomBytes(31)] }],
    ["trustedSigners[0]", { trustedSigners: [secretHex] }],
    ["trustedSigners[0]", { trustedSigners: [`ed25519://${privPath}`] }],
  ])("bad config %s → ENVELOPE_BAD_CONFIG naming the field, no key bytes", (field, bad) => {
    const error = thrown(() => new Envelope({ encrypt: kms(), ...(bad as object) }));
    const e = expectEnvelopeError(error, ConfigError, "ENVELOPE_BAD_CONFIG");
    expect(e.details.field).toBe(field);
    expect(e.message.startsWith(`${field}:`)).toBe(true);
    const shown = `${e.message} ${JSON.stringify(e)} ${inspect(e, { showHidden: true, depth: 5 })}`;
    expect(shown).not.toContain(secretHex);
    expect(shown).not.toContain(writerKeys.privateKeyPem.split("\n")[1]);
    expect(shown).not.toContain(rsa.privateKey.split("\n")[1]);
  });

  it("createEnvelope refuses a bad signing config with the field named", async () => {
    const e = expectEnvelopeError(
      await rejection(
        createEnvelope(
          { encrypt: "local-aes://env/AES", signing: { key: secretHex } },
          {
            AES: randomBytes(32).toString("hex"),
          },
        ),
      ),
      ConfigError,
      "ENVELOPE_BAD_CONFIG",
    );
    expect(e.details.field).toBe("signing.key");
    expect(e.message).not.toContain(secretHex);
  });

  it("signing keys never print: key pair, client, config", () => {
    const line = writerKeys.privateKeyPem.split("\n")[1]!;
    const pairShown = `${inspect(writerKeys)} ${JSON.stringify(writerKeys)}`;
    expect(pairShown).not.toContain(line);
    expect(pairShown).toContain(writerKeys.publicKey);
    const writer = new Envelope({ encrypt: kms(), signing: { key: writerKeys.privateKeyPem } });
    const shown = `${inspect(writer, { showHidden: true, depth: 10 })} ${JSON.stringify(writer)}`;
    expect(shown).not.toContain(line);
    // The key pair still hands out the PEM to the code that asked for it.
    expect(createPrivateKey(writerKeys.privateKeyPem).asymmetricKeyType).toBe("ed25519");
  });
});

describe("verified-signature memo (warm reads skip Ed25519 verify)", () => {
  it("is bounded, oldest first, and hits only on the same signature AND signed bytes", async () => {
    const { VerifiedSignatures } = await import("../src/crypto/signature.js");
    const memo = new VerifiedSignatures(3);
    const sigs = [0, 1, 2, 3].map((i) => Buffer.alloc(64, i));
    const message = (i: number) => Buffer.alloc(200, i);
    for (const [i, sig] of sigs.entries()) memo.add(sig, message(i));
    expect(memo.has(sigs[0]!, message(0))).toBe(false); // evicted
    expect([1, 2, 3].every((i) => memo.has(sigs[i]!, message(i)))).toBe(true);
    expect(memo.has(sigs[1]!, message(2))).toBe(false); // same signature, other bytes
    const other = message(1);
    other[199]! ^= 1;
    expect(memo.has(sigs[1]!, other)).toBe(false);
  });

  it("a value re-signed with a different signature after the genuine one was memoized is still checked", async () => {
    const { writer, provider } = pair();
    const reader = new Envelope({ encrypt: provider }); // cache on: memo on, unpinned
    const value = await writer.encrypt("secret", { context });
    await reader.decrypt(value, { context });
    await reader.decrypt(value, { context }); // memo hit
    for (const bad of [flip(value, SIGNATURE_AT + 63), flip(value, value.length - 1)]) {
      expectEnvelopeError(
        await rejection(reader.decrypt(bad, { context })),
        DecryptionError,
        "ENVELOPE_BAD_SIGNATURE",
      );
    }
    // The memo holds the verification of (key, signature, signed bytes) only: the same
    // signature with another context is verified again, and fails.
    expectEnvelopeError(
      await rejection(reader.decrypt(value, { context: { ...context, id: "43" } })),
      DecryptionError,
      "ENVELOPE_BAD_SIGNATURE",
    );
  });
});

describe("every bit flip of a signed value (pinned reader)", () => {
  it("is a typed refusal; outside the entries it is refused before any unwrap", async () => {
    const { writer, reader, provider } = pair({ cache: false });
    const value = await writer.encrypt("abc", { context });
    const parts = decodeEnvelope(value);
    const entriesStart = ENTRY_COUNT_AT;
    const entriesEnd = value.length - (4 + parts.body.length);
    const allowed = new Set([
      "ENVELOPE_BAD_FORMAT",
      "ENVELOPE_UNSUPPORTED_VERSION",
      "ENVELOPE_UNSUPPORTED_SUITE",
      "ENVELOPE_LIMIT_EXCEEDED",
      "ENVELOPE_WRONG_PURPOSE", // flags bit 1 (stream key envelope), checked first
      "ENVELOPE_UNSIGNED",
      "ENVELOPE_UNTRUSTED_SIGNER",
      "ENVELOPE_BAD_SIGNATURE",
      "ENVELOPE_NO_MATCHING_KEY",
      "ENVELOPE_UNWRAP_FAILED",
      "ENVELOPE_COMMITMENT_MISMATCH",
    ]);
    for (let bit = 0; bit < value.length * 8; bit++) {
      const at = bit >> 3;
      provider.reset();
      const error = await rejection(reader.decrypt(flip(value, at, 1 << (bit & 7)), { context }));
      const e = expectEnvelopeError(error);
      expect(allowed.has(e.code), `${e.code} at bit ${bit}`).toBe(true);
      if (at < entriesStart || at >= entriesEnd) {
        expect(provider.calls.unwrap, `unwrap after a flip at byte ${at}`).toBe(0);
      }
    }
  });
});

describe("suite 0x02 decoder on hostile bytes", () => {
  it("random bytes behind a suite 2 header, and every truncation of a signed value, are FormatErrors", async () => {
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.concat([Buffer.of(1, 2, i & 1), randomBytes(i % 400)]);
      const error = thrown(() => decodeEnvelope(bytes));
      expectEnvelopeError(error, FormatError);
    }
    const { writer } = pair();
    const value = await writer.encrypt("abc", { context, output: "binary" });
    for (let cut = 0; cut < value.length; cut++) {
      const error = thrown(() => decodeEnvelope(value.subarray(0, cut)));
      expectEnvelopeError(error, FormatError, "ENVELOPE_BAD_FORMAT");
    }
  });
});
