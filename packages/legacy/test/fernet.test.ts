import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import { EnvelopeError } from "@envelope/core";
import { deriveFernetKey, fernetDecoder, looksLikeFernet, parseFernetKey } from "@envelope/legacy";
import * as fernet from "fernet";
import { describe, expect, it } from "vitest";

const python = JSON.parse(
  readFileSync(new URL("./fixtures/python-fernet.json", import.meta.url), "utf8"),
) as {
  newKey: string;
  oldKey: string;
  byNewKey: { message: string; token: string }[];
  byOldKey: { message: string; token: string }[];
  multiFernet: { message: string; token: string }[];
  django: {
    secretKey: string;
    salt: string;
    iterations: number;
    raw: { key: string; token: string; message: string };
    hex: { key: string; token: string; message: string };
  };
};

const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return EnvelopeError.isInstance(e) ? e.code : `not typed: ${String(e)}`;
  }
  return "no error";
};

// The fernet npm package's url-safe base64 of a fresh key.
const npmKey = () => randomBytes(32).toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
const npmToken = (key: string, message: string, iv?: number[]) =>
  new fernet.Token({ secret: new fernet.Secret(key), ...(iv ? { iv } : {}) }).encode(message);

describe("fernet tokens from the fernet npm package", () => {
  it("decodes tokens with random IVs", () => {
    const key = npmKey();
    const from = fernetDecoder([parseFernetKey(key)]);
    for (const message of ["alice@example.com", "", "a".repeat(1000), "ünïcödé ✓"]) {
      const token = npmToken(key, message);
      expect(from.matches(token)).toBe(true);
      expect(from.decode(token).toString("utf8")).toBe(message);
      expect(from.decode(Buffer.from(token)).toString("utf8")).toBe(message);
    }
  });

  it("decodes the package's fixed-IV use (same plaintext, same token)", () => {
    const key = npmKey();
    const iv = Array.from({ length: 16 }, (_, i) => i * 7);
    const a = npmToken(key, "555-0100", iv);
    const b = npmToken(key, "555-0100", iv);
    expect(a.slice(25)).toBe(b.slice(25)); // IV, ciphertext and HMAC equal (timestamps may differ)
    expect(
      fernetDecoder([parseFernetKey(key)])
        .decode(a)
        .toString(),
    ).toBe("555-0100");
  });
});

describe("fernet tokens from Python's cryptography (Fernet, MultiFernet)", () => {
  const newKey = parseFernetKey(python.newKey);
  const oldKey = parseFernetKey(python.oldKey);

  it("tries keys in MultiFernet order: the new key, then the old one", () => {
    const from = fernetDecoder([newKey, oldKey]);
    for (const { message, token } of [
      ...python.byNewKey,
      ...python.byOldKey,
      ...python.multiFernet,
    ])
      expect(from.decode(token).toString("utf8")).toBe(message);
  });

  it("rejects a token when its key is not configured (HMAC fails, nothing decrypted)", () => {
    const onlyNew = fernetDecoder([newKey]);
    for (const { token } of python.byOldKey)
      expect(codeOf(() => onlyNew.decode(token))).toBe("ENVELOPE_DECRYPT_FAILED");
  });

  it("derives the Django PBKDF2 key (raw and hex output) like Python does", () => {
    const { django } = python;
    for (const output of ["raw", "hex"] as const) {
      const key = deriveFernetKey({
        secret: django.secretKey,
        salt: django.salt,
        iterations: django.iterations,
        output,
      });
      expect(key.equals(parseFernetKey(django[output].key))).toBe(true);
      expect(fernetDecoder([key]).decode(django[output].token).toString()).toBe(
        django[output].message,
      );
    }
    const wrongIterations = deriveFernetKey({
      secret: django.secretKey,
      salt: django.salt,
      iterations: django.iterations - 1,
    });
    expect(codeOf(() => fernetDecoder([wrongIterations]).decode(django.raw.token))).toBe(
      "ENVELOPE_DECRYPT_FAILED",
    );
  });
});

describe("fernet: every damaged token is a typed error", () => {
  const key = npmKey();
  const from = fernetDecoder([parseFernetKey(key)]);
  const token = Buffer.from(npmToken(key, "secret value"), "base64");
  const enc = (b: Buffer) => b.toString("base64url");

  it.each([
    ["version byte", 0],
    ["timestamp", 4],
    ["IV", 12],
    ["ciphertext", 30],
    ["HMAC", token.length - 1],
  ])("a bit flipped in the %s fails the HMAC check", (_, at) => {
    const bad = Buffer.from(token);
    bad[at]! ^= 0x01;
    const code = codeOf(() => from.decode(enc(bad)));
    expect(["ENVELOPE_DECRYPT_FAILED", "ENVELOPE_BAD_FORMAT"]).toContain(code);
    if (at !== 0) expect(code).toBe("ENVELOPE_DECRYPT_FAILED");
  });

  it.each([
    ["not base64", `${enc(token).slice(0, 40)}!${enc(token).slice(41)}`],
    ["empty", ""],
  ])("%s is ENVELOPE_BAD_FORMAT", (_, value) => {
    expect(codeOf(() => from.decode(value))).toBe("ENVELOPE_BAD_FORMAT");
    expect(looksLikeFernet(value)).toBe(false);
  });

  // A token cut short still looks like Fernet (so a mixed column with plaintext allowed
  // fails it instead of reading the ciphertext as plaintext) and fails to decode.
  it.each([
    ["truncated", enc(token.subarray(0, token.length - 1))],
    ["too short", enc(token.subarray(0, 60))],
  ])("%s is ENVELOPE_BAD_FORMAT, and still matches", (_, value) => {
    expect(codeOf(() => from.decode(value))).toBe("ENVELOPE_BAD_FORMAT");
    expect(looksLikeFernet(value)).toBe(true);
  });

  it("does not mistake other values for tokens", () => {
    for (const v of ["alice@example.com", '{"iv":"00"}', `${"ab".repeat(16)}:${"cd".repeat(16)}`])
      expect(looksLikeFernet(v)).toBe(false);
  });

  it("refuses bad keys and never shows them", () => {
    expect(codeOf(() => parseFernetKey("too-short"))).toBe("ENVELOPE_BAD_KEY");
    expect(codeOf(() => fernetDecoder([Buffer.alloc(16)]))).toBe("ENVELOPE_BAD_KEY");
    expect(codeOf(() => fernetDecoder([]))).toBe("ENVELOPE_BAD_CONFIG");
    expect(codeOf(() => deriveFernetKey({ secret: "s", salt: "t", iterations: 0 }))).toBe(
      "ENVELOPE_BAD_CONFIG",
    );
    expect(JSON.stringify(from)).toBe('{"format":"fernet"}');
    expect(inspect(from)).not.toContain(key.slice(0, 10));
  });
});
