import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { aesKeyUnwrap, aesKeyWrap } from "../src/crypto/key-wrap.js";
import { blockKeyUnwrap, blockKeyWrap } from "../src/crypto/key-wrap-blocks.js";
import { EnvelopeError } from "../src/errors.js";

// RFC 3394 §4.3 and §4.6: 256-bit KEK, 128- and 256-bit key data.
const KEK = Buffer.from("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "hex");
const VECTORS = [
  {
    key: "00112233445566778899AABBCCDDEEFF",
    wrapped: "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7",
  },
  {
    key: "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
    wrapped: "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
  },
].map((v) => ({ key: Buffer.from(v.key, "hex"), wrapped: Buffer.from(v.wrapped, "hex") }));

// The block implementation is what Bun runs (its node:crypto has no AES-KW cipher); under
// Node it is checked against the RFC vectors and against OpenSSL's id-aes256-wrap.
describe.each([
  ["OpenSSL AES-KW (Node, Deno)", aesKeyWrap, aesKeyUnwrap],
  ["AES-KW from single AES blocks (Bun)", blockKeyWrap, blockKeyUnwrap],
])("%s", (_name, wrap, unwrap) => {
  it("matches the RFC 3394 test vectors both ways", () => {
    for (const v of VECTORS) {
      expect(wrap(KEK, v.key).toString("hex")).toBe(v.wrapped.toString("hex"));
      expect(unwrap(KEK, v.wrapped).toString("hex")).toBe(v.key.toString("hex"));
    }
  });

  it("refuses a wrapped key with any bit flipped, or under another KEK", () => {
    const wrapped = VECTORS[1]!.wrapped;
    for (let bit = 0; bit < wrapped.length * 8; bit += 13) {
      const bad = Buffer.from(wrapped);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(() => unwrap(KEK, bad)).toThrow();
    }
    expect(() => unwrap(randomBytes(32), wrapped)).toThrow();
  });

  it("refuses lengths AES-KW cannot carry", () => {
    expect(() => wrap(KEK, Buffer.alloc(12))).toThrow();
    expect(() => unwrap(KEK, Buffer.alloc(16))).toThrow();
    expect(() => unwrap(KEK, Buffer.alloc(41))).toThrow();
    // AES-256 KEKs only (Deno's aes256-wrap would run AES-128/192-KW on these).
    for (const size of [16, 24, 31, 33]) {
      expect(() => wrap(Buffer.alloc(size), Buffer.alloc(32))).toThrow();
      expect(() => unwrap(Buffer.alloc(size), VECTORS[1]!.wrapped)).toThrow();
    }
  });
});

describe("aesKeyWrap / aesKeyUnwrap errors (public API)", () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return EnvelopeError.isInstance(e) ? e.code : `untyped ${(e as Error).name}`;
    }
    return "no error";
  };

  it("a key-wrapping key that is not 32 bytes is ENVELOPE_BAD_KEY", () => {
    for (const size of [0, 16, 24, 31, 33]) {
      expect(code(() => aesKeyWrap(Buffer.alloc(size), Buffer.alloc(32)))).toBe("ENVELOPE_BAD_KEY");
      expect(code(() => aesKeyUnwrap(Buffer.alloc(size), VECTORS[1]!.wrapped))).toBe(
        "ENVELOPE_BAD_KEY",
      );
    }
  });

  it("a key AES-KW cannot carry is ENVELOPE_BAD_INPUT", () => {
    for (const size of [0, 8, 12, 33, 4104]) {
      expect(code(() => aesKeyWrap(KEK, Buffer.alloc(size)))).toBe("ENVELOPE_BAD_INPUT");
    }
  });

  it("an altered, truncated or foreign wrapped key is ENVELOPE_UNWRAP_FAILED", () => {
    const wrapped = VECTORS[1]!.wrapped;
    const flipped = Buffer.from(wrapped);
    flipped[5]! ^= 1;
    for (const [kek, bytes] of [
      [KEK, flipped],
      [randomBytes(32), wrapped],
      [KEK, wrapped.subarray(0, 16)],
      [KEK, Buffer.concat([wrapped, Buffer.alloc(1)])],
      [KEK, Buffer.alloc(0)],
    ] as const) {
      expect(code(() => aesKeyUnwrap(kek, bytes))).toBe("ENVELOPE_UNWRAP_FAILED");
    }
  });
});

describe("both implementations agree", () => {
  it("on random keys and KEKs", () => {
    for (let i = 0; i < 50; i++) {
      const kek = randomBytes(32);
      const key = randomBytes(8 * (2 + (i % 7)));
      const wrapped = aesKeyWrap(kek, key);
      expect(blockKeyWrap(kek, key).equals(wrapped)).toBe(true);
      expect(blockKeyUnwrap(kek, wrapped).equals(key)).toBe(true);
    }
  });
});
