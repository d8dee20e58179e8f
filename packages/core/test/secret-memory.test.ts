import { randomFillSync } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageChannel } from "node:worker_threads";
import {
  createEnvelope,
  Envelope,
  type KeyProvider,
  localAesProvider,
  type WrappedKey,
} from "@envelope/core";
import { secretBytes, secretCopy, secretFromFile, secretFromText } from "@envelope/core/internal";
import { describe, expect, it } from "vitest";

// Node places small Buffers (`Buffer.from`, `allocUnsafe`, `concat`) in one shared pool, so
// a key copied there would share its ArrayBuffer with the envelope handed back, and with
// every other small Buffer of the process. An app that stores or transfers `value.buffer`
// instead of the view (a known driver and serializer bug) would carry the key with it.
// These tests look for key bytes where such a bug would look: the ArrayBuffer behind the
// envelopes, and node's current pool.

/** A random key in memory of its own (`Buffer.alloc` never uses node's pool). */
function ownKey(): Buffer {
  return randomFillSync(Buffer.alloc(32));
}

/** Node's current pool: the ArrayBuffer the next small Buffer is cut from. */
function nodePool(): Buffer {
  return Buffer.from(Buffer.allocUnsafe(1).buffer);
}

function holds(memory: ArrayBufferLike, key: Buffer): boolean {
  return Buffer.from(memory).includes(key);
}

/** local-aes, with every data key it wraps copied aside (into memory of their own). */
function recordingLocalAes(master: Buffer): { provider: KeyProvider; dataKeys: Buffer[] } {
  const inner = localAesProvider({ keys: master.toString("hex") });
  const dataKeys: Buffer[] = [];
  const provider = new Proxy(inner, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== "function") return value;
      if (property === "wrap") {
        return (dataKey: Uint8Array, ...rest: unknown[]): Promise<WrappedKey> => {
          const copy = Buffer.alloc(dataKey.length);
          copy.set(dataKey);
          dataKeys.push(copy);
          return (value as (...args: unknown[]) => Promise<WrappedKey>).call(
            target,
            dataKey,
            ...rest,
          );
        };
      }
      return (value as (...args: unknown[]) => unknown).bind(target);
    },
  });
  return { provider, dataKeys };
}

describe("secret-only memory (crypto/secret-bytes.ts)", () => {
  it("never cuts a secret from node's pool, and never shares memory with other Buffers", () => {
    const key = secretBytes(32);
    const pooled = Buffer.allocUnsafe(32);
    expect(key.buffer).not.toBe(pooled.buffer);
    expect(key.buffer).not.toBe(Buffer.from("not a secret").buffer);
    expect(secretCopy(pooled).buffer).not.toBe(pooled.buffer);
    // Larger secrets get an ArrayBuffer of their own.
    const big = secretBytes(4096);
    expect(big.buffer.byteLength).toBe(4096);
  });

  it("gives each secret its own bytes, even when a slab fills up", () => {
    const keys = Array.from({ length: 2000 }, (_, i) => secretCopy(Buffer.alloc(32, i % 251)));
    keys.forEach((k, i) => {
      expect(k.length).toBe(32);
      expect(k.every((b) => b === i % 251)).toBe(true);
    });
    expect(new Set(keys.map((k) => k.buffer)).size).toBeGreaterThan(1);
  });

  it("copies any bytes Buffer.from copied, and refuses the rest instead of copying zeros", () => {
    expect(() => secretCopy("a string" as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => secretCopy(42 as unknown as Uint8Array)).toThrow(TypeError);
    const bytes = Buffer.alloc(32, 3);
    const { buffer } = new Uint8Array(bytes);
    expect(secretCopy(buffer as unknown as Uint8Array).equals(bytes)).toBe(true);
    const view = new DataView(buffer, 4, 8);
    expect(secretCopy(view as unknown as Uint8Array).equals(bytes.subarray(4, 12))).toBe(true);
  });

  it("a key's .buffer cannot be transferred away with the other keys in its slab", () => {
    const other = secretCopy(Buffer.alloc(32, 9));
    const given = secretCopy(Buffer.alloc(32, 5));
    const { port1, port2 } = new MessageChannel();
    try {
      // Node 22 and 24, Bun and Deno refuse; Node 20 copies instead of moving.
      port1.postMessage(given, [given.buffer as ArrayBuffer]);
    } catch {}
    port1.close();
    port2.close();
    expect(other.length).toBe(32);
    expect(other.every((b) => b === 9)).toBe(true);
    expect(secretBytes(32).length).toBe(32);
  });

  it("reads a key file into secret memory and zeroes node's copy", () => {
    const dir = mkdtempSync(join(tmpdir(), "envelope-secret-"));
    try {
      const key = ownKey();
      const file = join(dir, "key.bin");
      writeFileSync(file, key);
      expect(secretFromFile(file).equals(key)).toBe(true);
      expect(holds(nodePool().buffer, key)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("decodes key text without a copy in node's pool", () => {
    const hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const key = secretFromText(hex, "hex");
    expect(key.toString("hex")).toBe(hex);
    expect(secretFromText(key.toString("base64url"), "base64").equals(key)).toBe(true);
    expect(secretFromText(key.toString("base64"), "base64").equals(key)).toBe(true);
    expect(secretFromText("pass phrase é", "utf8").toString("utf8")).toBe("pass phrase é");
    expect(holds(nodePool().buffer, key)).toBe(false);
  });
});

describe("no key bytes in the memory behind an envelope, or in node's pool", () => {
  for (const cache of [true, false]) {
    it(`local-aes, unwrap cache ${cache ? "on" : "off"}: encrypt, then decrypt cold and warm`, async () => {
      const master = ownKey();
      const { provider, dataKeys } = recordingLocalAes(master);
      const env = new Envelope({ encrypt: provider, cache: cache ? {} : false });
      const sealed: Buffer[] = [];
      for (let i = 0; i < 50; i++) {
        sealed.push(await env.encrypt(`value ${i}`, { context: { id: String(i) } }));
      }
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < sealed.length; i++) {
          const text = await env.decrypt(sealed[i]!, { context: { id: String(i) }, as: "text" });
          expect(text).toBe(`value ${i}`);
        }
      }
      expect(dataKeys.length).toBe(50);
      const places = [...new Set(sealed.map((s) => s.buffer)), nodePool().buffer];
      for (const memory of places) {
        expect(holds(memory, master)).toBe(false);
        for (const dataKey of dataKeys) expect(holds(memory, dataKey)).toBe(false);
      }
      await env.close();
    });
  }

  for (const form of ["raw", "hex"] as const) {
    it(`local-aes from a key file (${form}): the master key is not behind the envelope`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "envelope-secret-"));
      try {
        const master = ownKey();
        const file = join(dir, "master.key");
        writeFileSync(file, form === "raw" ? master : master.toString("hex"));
        chmodSync(file, 0o600);
        const env = await createEnvelope({ encrypt: `local-aes://${file}` });
        const sealed = await env.encrypt("hello");
        expect(await env.decrypt(sealed, { as: "text" })).toBe("hello");
        expect(holds(sealed.buffer, master)).toBe(false);
        expect(holds(nodePool().buffer, master)).toBe(false);
        await env.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("a string plaintext's UTF-8 copy is zeroed once sealed", async () => {
    const env = new Envelope({ encrypt: localAesProvider({ keys: ownKey() }) });
    // Made at run time, not written here: Node 22.23 and 24 read a module's source text
    // into the pool, so a literal would be found there whatever Envelope did.
    const ssn = Array.from(randomFillSync(Buffer.alloc(9)), (byte) => byte % 10).join("");
    const secret = `SSN ${ssn} of a canary`;
    const sealed = await env.encrypt(secret);
    const needle = Buffer.alloc(9);
    needle.write(ssn, "latin1"); // not in node's pool itself
    expect(holds(sealed.buffer, needle)).toBe(false);
    await env.close();
  });
});
