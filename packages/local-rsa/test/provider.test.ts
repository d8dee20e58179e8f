import { createHash, createPublicKey } from "node:crypto";
import { decodeEnvelope, Envelope, type WrappedKey } from "@envelope/core";
import { localRsaProvider, rsaKeyRef } from "@envelope/local-rsa";
import { beforeAll, describe, expect, it } from "vitest";
import { ctx, type PemPair, rsaPem } from "./helpers.js";

let a: PemPair;
let b: PemPair;
beforeAll(() => {
  a = rsaPem();
  b = rsaPem();
});

const ref = (pem: string) =>
  createHash("sha256")
    .update(createPublicKey(pem).export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 32);

describe("localRsaProvider", () => {
  it("round-trips through an Envelope, binary and text", async () => {
    const provider = localRsaProvider({ keys: { pem: a.privatePem } });
    const envelope = new Envelope({ encrypt: provider });
    const sealed = await envelope.encrypt("alice@example.com", { context: ctx });
    expect(await envelope.decrypt(sealed, { context: ctx, as: "text" })).toBe("alice@example.com");
    const text = await envelope.encrypt(new Uint8Array([0, 1, 2, 255]), {
      context: ctx,
      output: "text",
    });
    expect([...(await envelope.decrypt(text, { context: ctx }))]).toEqual([0, 1, 2, 255]);
    const entry = envelope.inspect(sealed).entries[0]!;
    expect(entry).toEqual({ provider: "local-rsa", keyRef: ref(a.publicPem), wrappedBytes: 256 });
  });

  it("uses the SPKI SHA-256 fingerprint (32 lowercase hex) as key reference", () => {
    const provider = localRsaProvider({ keys: { pem: a.privatePem } });
    expect(provider.id).toBe("local-rsa");
    expect(provider.keyRef).toMatch(/^[0-9a-f]{32}$/);
    expect(provider.keyRef).toBe(ref(a.publicPem));
    expect(rsaKeyRef(a.publicPem)).toBe(provider.keyRef);
    expect(rsaKeyRef(a.privatePem)).toBe(provider.keyRef);
    expect(rsaKeyRef(createPublicKey(a.publicPem))).toBe(provider.keyRef);
    expect(rsaKeyRef(createPublicKey(a.publicPem).export({ type: "spki", format: "der" }))).toBe(
      provider.keyRef,
    );
    expect(rsaKeyRef(Buffer.from(a.publicPem))).toBe(provider.keyRef);
    expect(rsaKeyRef(b.publicPem)).not.toBe(provider.keyRef);
  });

  it("wraps with RSA-OAEP-SHA256 that plain node:crypto can unwrap", async () => {
    const { privateDecrypt, constants } = await import("node:crypto");
    const provider = localRsaProvider({ keys: { pem: a.publicPem } });
    const dataKey = Buffer.alloc(32, 7);
    const entry = await provider.wrap(dataKey, { context: {} });
    const opened = privateDecrypt(
      { key: a.privatePem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      entry.wrapped,
    );
    expect(opened.equals(dataKey)).toBe(true);
  });

  it("rotation: the first key wraps, older keys still unwrap, rewrap moves data to the new key", async () => {
    const oldOnly = new Envelope({ encrypt: localRsaProvider({ keys: { pem: a.privatePem } }) });
    const sealedOld = await oldOnly.encrypt("555-0100", { context: ctx, output: "binary" });

    const rotated = localRsaProvider({ keys: [{ pem: b.privatePem }, { pem: a.privatePem }] });
    expect(rotated.keyRef).toBe(ref(b.publicPem));
    expect(rotated.keys.map((k) => k.keyRef)).toEqual([ref(b.publicPem), ref(a.publicPem)]);
    const both = new Envelope({ encrypt: rotated });
    expect(await both.decrypt(sealedOld, { context: ctx, as: "text" })).toBe("555-0100");
    const sealedNew = await both.encrypt("555-0199", { context: ctx });
    expect(both.inspect(sealedNew).entries[0]!.keyRef).toBe(ref(b.publicPem));

    const newOnlyProvider = localRsaProvider({ keys: { pem: b.privatePem } });
    const moved = await both.rewrap(sealedOld, { to: newOnlyProvider, context: ctx });
    expect(both.inspect(moved).entries.map((e) => e.keyRef)).toEqual([ref(b.publicPem)]);
    // The body (ciphertext + tag) is byte-for-byte the same after rewrap.
    const body = (x: Buffer) => x.subarray(x.length - both.inspect(x).bodyBytes);
    expect(body(moved).equals(body(sealedOld))).toBe(true);

    const newOnly = new Envelope({ encrypt: newOnlyProvider });
    expect(await newOnly.decrypt(moved, { context: ctx, as: "text" })).toBe("555-0100");
    await expect(newOnly.decrypt(sealedOld, { context: ctx })).rejects.toMatchObject({
      code: "ENVELOPE_NO_MATCHING_KEY",
    });
  });

  it("encrypt-only: a public key wraps, decrypt fails with ENVELOPE_ENCRYPT_ONLY", async () => {
    const publicOnly = localRsaProvider({ keys: { pem: a.publicPem } });
    expect(publicOnly.keys).toEqual([
      { keyRef: ref(a.publicPem), kind: "public", modulusLength: 2048 },
    ]);
    const writer = new Envelope({ encrypt: publicOnly });
    const sealed = await writer.encrypt("123-45-6789", { context: ctx, output: "binary" });
    // handles() stays true so the encrypt-only error surfaces instead of "no matching key".
    expect(publicOnly.handles(decodeEnvelope(sealed).entries[0]!)).toBe(true);
    const error = await writer.decrypt(sealed, { context: ctx }).catch((e) => e);
    expect(error).toMatchObject({ name: "ConfigError", code: "ENVELOPE_ENCRYPT_ONLY" });
    expect(error.message).toContain(
      "this service holds only the public key; decrypt where the private key is configured",
    );

    const reader = new Envelope({ encrypt: localRsaProvider({ keys: { pem: a.privatePem } }) });
    expect(await reader.decrypt(sealed, { context: ctx, as: "text" })).toBe("123-45-6789");
  });

  it("a private key wins over the same public key, in either order", () => {
    for (const keys of [
      [{ pem: a.publicPem }, { pem: a.privatePem }],
      [{ pem: a.privatePem }, { pem: a.publicPem }],
    ]) {
      const provider = localRsaProvider({ keys });
      expect(provider.keys).toEqual([
        { keyRef: ref(a.publicPem), kind: "private", modulusLength: 2048 },
      ]);
    }
  });

  it("handles only its own provider id and loaded fingerprints", () => {
    const provider = localRsaProvider({ keys: [{ pem: a.privatePem }, { pem: b.publicPem }] });
    const entry = (providerId: string, keyRef: string): WrappedKey => ({
      providerId,
      keyRef,
      wrapped: new Uint8Array(1),
    });
    expect(provider.handles(entry("local-rsa", ref(a.publicPem)))).toBe(true);
    expect(provider.handles(entry("local-rsa", ref(b.publicPem)))).toBe(true);
    expect(provider.handles(entry("local-aes", ref(a.publicPem)))).toBe(false);
    expect(provider.handles(entry("local-rsa", "0".repeat(32)))).toBe(false);
  });

  it("wrong key or corrupted wrapped bytes -> ENVELOPE_UNWRAP_FAILED", async () => {
    const pa = localRsaProvider({ keys: { pem: a.privatePem } });
    const pb = localRsaProvider({ keys: { pem: b.privatePem } });
    const entry = await pa.wrap(Buffer.alloc(32, 1), { context: {} });
    const flipped = Buffer.from(entry.wrapped);
    flipped[100]! ^= 0x01;
    await expect(pa.unwrap({ ...entry, wrapped: flipped }, { context: {} })).rejects.toMatchObject({
      name: "ProviderError",
      code: "ENVELOPE_UNWRAP_FAILED",
      message: expect.stringContaining("wrong key or corrupted entry"),
    });
    // b's wrapped bytes labelled with a's key reference: decrypting under a fails.
    const other = await pb.wrap(Buffer.alloc(32, 1), { context: {} });
    await expect(pa.unwrap({ ...other, keyRef: pa.keyRef }, { context: {} })).rejects.toMatchObject(
      {
        code: "ENVELOPE_UNWRAP_FAILED",
      },
    );
    await expect(pa.unwrap({ ...entry, keyRef: pb.keyRef }, { context: {} })).rejects.toMatchObject(
      {
        code: "ENVELOPE_KEY_NOT_FOUND",
      },
    );
  });

  it("rejects an unwrapped key that is not 32 bytes", async () => {
    const { publicEncrypt, constants } = await import("node:crypto");
    const pa = localRsaProvider({ keys: { pem: a.privatePem } });
    const wrapped = publicEncrypt(
      { key: a.publicPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      Buffer.alloc(16, 9),
    );
    await expect(
      pa.unwrap({ providerId: "local-rsa", keyRef: pa.keyRef, wrapped }, { context: {} }),
    ).rejects.toMatchObject({
      code: "ENVELOPE_UNWRAP_FAILED",
    });
  });

  it("a corrupted entry in an envelope surfaces as a typed error", async () => {
    const envelope = new Envelope({
      encrypt: localRsaProvider({ keys: { pem: a.privatePem } }),
      cache: false,
    });
    const sealed = await envelope.encrypt("x", { context: ctx, output: "binary" });
    // The wrapped key sits right before the body-length field; flip a byte inside it.
    const info = envelope.inspect(sealed);
    const at = sealed.length - info.bodyBytes - 4 - 10;
    const broken = Buffer.from(sealed);
    broken[at]! ^= 0xff;
    await expect(envelope.decrypt(broken, { context: ctx })).rejects.toMatchObject({
      code: "ENVELOPE_UNWRAP_FAILED",
    });
  });

  it("validates options", () => {
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
    const bad = (options: any) => () => localRsaProvider(options);
    expect(bad(undefined)).toThrow(expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }));
    expect(bad({ keys: [] })).toThrow(expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }));
    expect(bad({ keys: {} })).toThrow(expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }));
    expect(bad({ keys: { pem: a.privatePem, path: "/x" } })).toThrow(
      expect.objectContaining({
        code: "ENVELOPE_BAD_CONFIG",
        message: expect.stringContaining("exactly one of pem, path or env"),
      }),
    );
    expect(bad({ keys: { pem: a.privatePem, passphrase: "x", passphraseEnv: "Y" } })).toThrow(
      expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }),
    );
  });
});
