import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { Envelope, localAesProvider } from "@envelope/core";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import {
  blindIndexKeysFrom,
  createBlindIndexer,
  createRecordCipher,
  normalizeEmail,
  normalizePhone,
  normalizeTrimLower,
} from "../src/index.js";
import { INDEX_KEY_1, INDEX_KEY_2 } from "./support.js";

describe("normalizers", () => {
  it.each([
    ["  Alice@Example.COM ", "alice@example.com"],
    ["BOB@x.io", "bob@x.io"],
    ["e\u0301@x.io", "\u00e9@x.io"], // NFC: decomposed é equals composed é
  ])("normalizeEmail(%j) = %j", (input, expected) => {
    expect(normalizeEmail(input)).toBe(expected);
  });

  it.each([
    ["+1 (555) 010-0199", "15550100199"],
    ["1-555-010-0199", "15550100199"],
    ["０１２", "012"], // full-width digits
    [" n/a ", "n/a"], // no digit: kept (trimmed), not ""
    ["unknown", "unknown"],
    ["", ""],
  ])("normalizePhone(%j) = %j", (input, expected) => {
    expect(normalizePhone(input)).toBe(expected);
  });

  it('"phone": values without digits neither index nor match alike (they all were "")', () => {
    const idx = createBlindIndexer({ keys: INDEX_KEY_1 });
    const phone = (v: string) => idx.index("phone", "users", v, { normalize: "phone" });
    expect(phone("n/a")).not.toBe(phone("unknown"));
    expect(phone("n/a")).not.toBe(phone(""));
    expect(phone(" n/a")).toBe(phone("n/a"));
    expect(phone("+1 555 0100")).toBe(phone("1-555-0100"));
    const cipher = createRecordCipher(
      new Envelope({ encrypt: localAesProvider({ keys: [randomBytes(32)] }) }),
      { table: "users", encrypted: ["phone"], blindIndexes: { phone: { normalize: "phone" } } },
      { blindIndex: idx },
    );
    expect(cipher.matches("phone", "n/a", "unknown")).toBe(false);
    expect(cipher.matches("phone", "n/a", "n/a ")).toBe(true);
  });

  it("trim-lower", () => expect(normalizeTrimLower("  MiXed ")).toBe("mixed"));
});

describe("blind indexer", () => {
  const idx = createBlindIndexer({ keys: INDEX_KEY_1 });

  it("is deterministic, keyed, normalized, and 32 bits (8 hex) by default", () => {
    const a = idx.index("email", "users", "Ann@Example.com", { normalize: "email" });
    expect(a).toMatch(/^[0-9a-f]{8}$/);
    expect(idx.index("email", "users", " ann@example.COM", { normalize: "email" })).toBe(a);
    expect(idx.index("email", "users", "Ann@Example.com")).not.toBe(a); // no normalizer
    const other = createBlindIndexer({ keys: INDEX_KEY_2 });
    expect(other.index("email", "users", "ann@example.com", { normalize: "email" })).not.toBe(a);
  });

  it("separates tables and fields (the same value indexes differently)", () => {
    const v = "shared-value";
    const all = [
      idx.index("email", "users", v, { bits: 128 }),
      idx.index("email2", "users", v, { bits: 128 }),
      idx.index("email", "users2", v, { bits: 128 }),
      // length prefixes: ("ab","c") and ("a","bc") must not collide
      idx.index("c", "ab", v, { bits: 128 }),
      idx.index("bc", "a", v, { bits: 128 }),
    ];
    expect(new Set(all).size).toBe(all.length);
  });

  it("truncates to `bits`, as a prefix of the full HMAC", () => {
    const full = idx.index("f", "t", "v", { bits: 256 });
    expect(full).toHaveLength(64);
    for (const bits of [8, 16, 64, 128]) {
      expect(idx.index("f", "t", "v", { bits })).toBe(full.slice(0, bits / 4));
    }
    for (const bits of [0, 7, 12, 264, 1.5]) {
      expect(() => idx.index("f", "t", "v", { bits })).toThrow(/multiple of 8/);
    }
  });

  it("distinct values practically never collide at 64 bits (property)", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        fc.pre(a !== b);
        expect(idx.index("f", "t", a, { bits: 64 })).not.toBe(idx.index("f", "t", b, { bits: 64 }));
      }),
    );
  });

  it("at 8 bits, collisions happen (which is why lookups re-check the opened value)", () => {
    const seen = new Set<string>();
    let collisions = 0;
    for (let i = 0; i < 100; i++) {
      const h = idx.index("f", "t", `user${i}@x.io`, { bits: 8 });
      if (seen.has(h)) collisions++;
      seen.add(h);
    }
    expect(collisions).toBeGreaterThan(0);
  });

  it("rotation: candidates lists the current key's index first, then the old keys'", () => {
    const rotated = createBlindIndexer({ keys: [INDEX_KEY_2, INDEX_KEY_1] });
    const old = idx.index("email", "users", "a@b.c");
    const current = createBlindIndexer({ keys: INDEX_KEY_2 }).index("email", "users", "a@b.c");
    expect(rotated.index("email", "users", "a@b.c")).toBe(current);
    expect(rotated.candidates("email", "users", "a@b.c")).toEqual([current, old]);
    expect(rotated.keyIds).toHaveLength(2);
    // The same key twice is a configuration mistake (cipher-review.test.ts), refused.
    expect(() => createBlindIndexer({ keys: [INDEX_KEY_1, INDEX_KEY_1] })).toThrow(/same key/);
  });

  it("accepts exactly 32 bytes as bytes, hex, base64 (padded or not) and base64url", () => {
    const bytes = randomBytes(32);
    const b64 = bytes.toString("base64");
    const forms = [
      bytes,
      new Uint8Array(bytes),
      bytes.toString("hex"),
      bytes.toString("hex").toUpperCase(),
      b64,
      b64.slice(0, 43),
      bytes.toString("base64url"),
      `${bytes.toString("base64url")}=`,
      `  ${bytes.toString("hex")}\n`,
    ];
    const results = forms.map((k) => createBlindIndexer({ keys: k }).index("f", "t", "v"));
    expect(new Set(results).size).toBe(1);
    expect(() => createBlindIndexer({ keys: [] })).toThrow(/at least one key/);
  });

  const k = randomBytes(32);
  const hex = k.toString("hex");
  const b64 = k.toString("base64");
  // A base64 key whose last character carries non-zero unused bits: decodes to 32 bytes
  // (Node is lenient) but is not the canonical text of any key.
  const lastFlipped = (text: string) => {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const last = alphabet.indexOf(text[42]!);
    return text.slice(0, 42) + alphabet[last ^ 1]! + text.slice(43);
  };
  const mixed = (() => {
    // 43 characters with both alphabets: force a "+" and a "_" in.
    const t = k.toString("base64url").slice(0, 43);
    return `+_${t.slice(2)}`;
  })();
  const badKeys: [string, string | Uint8Array, RegExp][] = [
    ['"a" × 43 (non-canonical base64)', "a".repeat(43), /not canonical/],
    ["22-byte hex (44 hex characters)", randomBytes(22).toString("hex"), /43\/44 base64/],
    ["16-byte hex", randomBytes(16).toString("hex"), /got 32 characters/],
    ["48-byte hex (96 characters)", randomBytes(48).toString("hex"), /got 96 characters/],
    ["63 hex characters", hex.slice(0, 63), /got 63 characters/],
    ["65 hex characters", `${hex}0`, /got 65 characters/],
    ["64 characters, not all hex", `${hex.slice(0, 63)}g`, /got 64 characters/],
    ["base64 of 31 bytes", randomBytes(31).toString("base64"), /got 44 characters/],
    ["base64 of 33 bytes", randomBytes(33).toString("base64"), /got 44 characters/],
    ["base64 of 48 bytes", randomBytes(48).toString("base64"), /got 64 characters/],
    ["base64 with non-zero unused bits", lastFlipped(b64), /not canonical/],
    ["unpadded base64 with non-zero unused bits", lastFlipped(b64).slice(0, 43), /not canonical/],
    ["two padding characters", `${b64.slice(0, 42)}==`, /43\/44 base64/],
    ["padding in the middle", `${b64.slice(0, 20)}=${b64.slice(21)}`, /43\/44 base64/],
    ["both alphabets", mixed, /mixes/],
    ["a space inside", `${hex.slice(0, 32)} ${hex.slice(32)}`, /got 65 characters/],
    ["empty string", "", /got 0 characters/],
    ["31 bytes", randomBytes(31), /has 31 bytes/],
    ["33 bytes", randomBytes(33), /has 33 bytes/],
    ["64 bytes", randomBytes(64), /has 64 bytes/],
  ];
  it.each(badKeys)("refuses %s with ENVELOPE_BAD_KEY, never echoing the key", (_, key, why) => {
    let error: unknown;
    try {
      createBlindIndexer({ keys: [hex, key] });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: "ENVELOPE_BAD_KEY", details: { field: "keys[1]" } });
    const shown = `${(error as Error).message} ${(error as Error).stack} ${JSON.stringify(error)} ${inspect(error, { showHidden: true, depth: 5 })}`;
    expect((error as Error).message).toMatch(why);
    const text = typeof key === "string" ? key.trim() : Buffer.from(key).toString("hex");
    for (const part of [text, text.slice(0, 16), text.slice(-16)].filter((t) => t.length >= 8)) {
      expect(shown).not.toContain(part);
    }
  });

  it("shows key ids only", () => {
    const shown = `${inspect(idx)} ${JSON.stringify(idx)}`;
    expect(shown).toContain(idx.keyIds[0]!);
    expect(shown).not.toContain(INDEX_KEY_1);
  });

  it("reads keys from env (comma-separated) and from a file (one per line, comments)", () => {
    expect(
      blindIndexKeysFrom({ env: "K", environment: { K: `${INDEX_KEY_2}, ${INDEX_KEY_1}` } }),
    ).toEqual([INDEX_KEY_2, INDEX_KEY_1]);
    const dir = mkdtempSync(join(tmpdir(), "records-keys-"));
    const file = join(dir, "keys");
    writeFileSync(file, `# current\n${INDEX_KEY_2}\n# previous\n${INDEX_KEY_1}\n`, {
      mode: 0o600,
    });
    expect(blindIndexKeysFrom({ file })).toEqual([INDEX_KEY_2, INDEX_KEY_1]);
    expect(() => blindIndexKeysFrom({ env: "NOPE", environment: {} })).toThrow(/openssl rand/);
    expect(() => blindIndexKeysFrom({ file: join(dir, "missing") })).toThrow(/Could not read/);
  });

  it("warns once about a key file group or others can read, and refuses it when strict", async () => {
    const dir = mkdtempSync(join(tmpdir(), "records-keys-"));
    const file = join(dir, "keys");
    writeFileSync(file, `${INDEX_KEY_1}\n`, { mode: 0o644 });
    chmodSync(file, 0o644);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      expect(blindIndexKeysFrom({ file })).toEqual([INDEX_KEY_1]);
      expect(blindIndexKeysFrom({ file })).toEqual([INDEX_KEY_1]);
      vi.stubEnv("ENVELOPE_STRICT_KEY_FILES", "1");
      const error = (() => {
        try {
          blindIndexKeysFrom({ file });
        } catch (e) {
          return e as { code?: string; message: string };
        }
      })();
      expect(error?.code).toBe("ENVELOPE_BAD_KEY");
      expect(error?.message).toContain("chmod 600");
      expect(error?.message).not.toContain(INDEX_KEY_1);
    } finally {
      vi.unstubAllEnvs();
      await new Promise((resolve) => setImmediate(resolve));
      process.off("warning", onWarning);
    }
    const ours = warnings.filter(
      (w) => (w as { code?: string }).code === "ENVELOPE_KEY_FILE_PERMISSIONS",
    );
    expect(ours).toHaveLength(1);
    expect(ours[0]!.message).not.toContain(INDEX_KEY_1);
  });

  it("refuses non-string values and unknown normalizers", () => {
    expect(() => idx.index("f", "t", 42 as unknown as string)).toThrow(/must be a string/);
    expect(() => idx.index("f", "t", "v", { normalize: "upper" as unknown as "email" })).toThrow(
      /Unknown blind index normalizer/,
    );
    expect(idx.index("f", "t", "V", { normalize: (v) => v.toLowerCase() })).toBe(
      idx.index("f", "t", "v"),
    );
  });
});
