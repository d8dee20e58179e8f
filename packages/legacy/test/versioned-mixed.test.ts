import { randomBytes } from "node:crypto";
import {
  cbcDecoder,
  fernetDecoder,
  gcmJsonDecoder,
  mixedDecoder,
  parseFernetKey,
  versionedDecoder,
} from "@envelope/legacy";
import * as fernet from "fernet";
import { describe, expect, it } from "vitest";
import { codeOf, handRolledCbc, handRolledGcmJson } from "./support.js";

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const fernetKeyText = randomBytes(32).toString("base64url");
const fernetToken = (m: string) =>
  new fernet.Token({ secret: new fernet.Secret(fernetKeyText) }).encode(m);

describe("versioned values", () => {
  const versions = {
    "1": cbcDecoder(k1),
    "2": gcmJsonDecoder(k2),
    "3": fernetDecoder([parseFernetKey(fernetKeyText)]),
  };

  it("reads the version from the default v<N>: prefix, one key and cipher per version", () => {
    const from = versionedDecoder({ versions });
    const cases = [
      [`v1:${handRolledCbc(k1, "one")}`, "one"],
      [`v2:${handRolledGcmJson(k2, "two")}`, "two"],
      [`v3:${fernetToken("three")}`, "three"],
    ] as const;
    for (const [value, plain] of cases) {
      expect(from.matches(value)).toBe(true);
      expect(from.decode(value).toString()).toBe(plain);
    }
  });

  it("takes a configured prefix pattern", () => {
    const from = versionedDecoder({ versions, tag: { prefix: "^\\$enc\\$(\\d+)\\$" } });
    expect(from.decode(`$enc$2$${handRolledGcmJson(k2, "dollar")}`).toString()).toBe("dollar");
    expect(from.matches(`v2:${handRolledGcmJson(k2, "x")}`)).toBe(false);
  });

  it("reads the version from a column of the row", () => {
    const from = versionedDecoder({ versions, tag: { column: "key_version" } });
    expect(from.columns).toEqual(["key_version"]);
    expect(from.decode(handRolledCbc(k1, "col"), { key_version: 1 }).toString()).toBe("col");
    expect(codeOf(() => from.decode(handRolledCbc(k1, "col")))).toBe("ENVELOPE_BAD_CONFIG");
  });

  it("a version without a key, a wrong key, and no prefix are typed errors", () => {
    const from = versionedDecoder({ versions });
    expect(codeOf(() => from.decode(`v9:${handRolledCbc(k1, "x")}`))).toBe(
      "ENVELOPE_NO_MATCHING_KEY",
    );
    expect(codeOf(() => from.decode(`v2:${handRolledGcmJson(k1, "x")}`))).toBe(
      "ENVELOPE_DECRYPT_FAILED",
    );
    expect(codeOf(() => from.decode(handRolledCbc(k1, "x")))).toBe("ENVELOPE_BAD_FORMAT");
    expect(codeOf(() => versionedDecoder({ versions, tag: { prefix: "^v\\d+:" } }))).toBe(
      "ENVELOPE_BAD_CONFIG",
    );
    expect(codeOf(() => versionedDecoder({ versions: {} }))).toBe("ENVELOPE_BAD_CONFIG");
  });
});

describe("mixed columns", () => {
  const gcm = gcmJsonDecoder(k1);
  const f = fernetDecoder([parseFernetKey(fernetKeyText)]);

  it("sends each value to the format it looks like", () => {
    const from = mixedDecoder({ decoders: [f, gcm] });
    expect(from.decode(fernetToken("from fernet")).toString()).toBe("from fernet");
    expect(from.decode(handRolledGcmJson(k1, "from gcm")).toString()).toBe("from gcm");
    expect(from.formatOf(fernetToken("x"))).toBe("fernet");
    expect(from.formatOf(handRolledGcmJson(k1, "x"))).toBe("aes-256-gcm-json");
  });

  it("plaintext only when configured; otherwise ENVELOPE_LEGACY_UNRECOGNIZED", () => {
    const strict = mixedDecoder({ decoders: [f, gcm] });
    expect(strict.matches("alice@example.com")).toBe(false);
    expect(codeOf(() => strict.decode("alice@example.com"))).toBe("ENVELOPE_LEGACY_UNRECOGNIZED");
    const lenient = mixedDecoder({ decoders: [f, gcm], plaintext: true });
    expect(lenient.decode("alice@example.com").toString()).toBe("alice@example.com");
    expect(lenient.formatOf("alice@example.com")).toBe("plaintext");
  });

  it("a value that looks like a format but fails is that format's error, never plaintext", () => {
    const lenient = mixedDecoder({ decoders: [f, gcm], plaintext: true });
    const tampered = JSON.parse(handRolledGcmJson(k1, "secret"));
    // Flip a bit of the last byte (setting it to 00 left it as it was 1 time in 256).
    const last = (Number.parseInt(tampered.encrypted.slice(-2), 16) ^ 0x01).toString(16);
    tampered.encrypted = `${tampered.encrypted.slice(0, -2)}${last.padStart(2, "0")}`;
    expect(codeOf(() => lenient.decode(JSON.stringify(tampered)))).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(codeOf(() => lenient.decode(handRolledGcmJson(k2, "other key")))).toBe(
      "ENVELOPE_DECRYPT_FAILED",
    );
  });

  it("refuses plaintext as a listed decoder (it would swallow everything)", async () => {
    const { plaintextDecoder } = await import("@envelope/legacy");
    expect(codeOf(() => mixedDecoder({ decoders: [plaintextDecoder(), gcm] }))).toBe(
      "ENVELOPE_BAD_CONFIG",
    );
  });
});
