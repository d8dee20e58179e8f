import * as crypto from "node:crypto";
import { describe, expect, it, vi } from "vitest";

// Every buffer node:crypto's decipher returns is recorded, to check that the decoders zero
// them: GCM's update() returns the whole plaintext before the tag is checked, CBC's all but
// the last block before the padding is, so a failing value left its plaintext in memory.
const outputs: Buffer[] = [];
vi.mock("node:crypto", async (importOriginal) => {
  const real = await importOriginal<typeof crypto>();
  return {
    ...real,
    createDecipheriv: (...args: Parameters<typeof real.createDecipheriv>) => {
      const decipher = real.createDecipheriv(...args);
      const update = decipher.update.bind(decipher) as (data: Buffer) => Buffer;
      const final = decipher.final.bind(decipher) as () => Buffer;
      Object.assign(decipher, {
        update: (data: Buffer) => {
          const out = update(data);
          outputs.push(out);
          return out;
        },
        final: () => {
          const out = final();
          outputs.push(out);
          return out;
        },
      });
      return decipher;
    },
  };
});

const { cbcDecoder, gcmJsonDecoder } = await import("../src/index.js");

const SECRET = "078-05-1120 and more text than one block";
const key = crypto.randomBytes(32);
const allZero = () => outputs.every((b) => b.every((byte) => byte === 0));

function gcmValue(tamperTag: boolean): string {
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv("aes-256-gcm", key, iv);
  const encrypted = Buffer.concat([c.update(SECRET), c.final()]);
  const tag = c.getAuthTag();
  if (tamperTag) tag[0]! ^= 1;
  return JSON.stringify({
    iv: iv.toString("hex"),
    authTag: tag.toString("hex"),
    encrypted: encrypted.toString("hex"),
  });
}

function cbcValue(breakPadding: boolean): string {
  const iv = crypto.randomBytes(16);
  const c = crypto.createCipheriv("aes-256-cbc", key, iv);
  const ct = Buffer.concat([c.update(SECRET), c.final()]);
  if (breakPadding) ct[ct.length - 17]! ^= 0xff; // the last block's plaintext, so its padding
  return `${iv.toString("hex")}:${ct.toString("hex")}`;
}

describe("legacy decoders zero the decipher's outputs", () => {
  it("aes-256-gcm-json: an altered tag leaves no plaintext behind (update had returned all of it)", () => {
    outputs.length = 0;
    expect(() => gcmJsonDecoder(key).decode(gcmValue(true))).toThrow();
    expect(outputs.length).toBeGreaterThan(0);
    expect(allZero()).toBe(true);
  });

  it("aes-256-cbc: a broken padding leaves no plaintext behind", () => {
    outputs.length = 0;
    expect(() => cbcDecoder(key).decode(cbcValue(true))).toThrow();
    expect(outputs.length).toBeGreaterThan(0);
    expect(allZero()).toBe(true);
  });

  it("a value that opens returns its plaintext, and the intermediate outputs are zeroed", () => {
    for (const [decoder, value] of [
      [gcmJsonDecoder(key), gcmValue(false)],
      [cbcDecoder(key), cbcValue(false)],
    ] as const) {
      outputs.length = 0;
      expect(decoder.decode(value).toString()).toBe(SECRET);
      expect(allZero()).toBe(true);
    }
  });
});
