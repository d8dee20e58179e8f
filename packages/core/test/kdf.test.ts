import { hkdfSync, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { deriveMessageKeys, hkdfHmacs } from "../src/crypto/kdf.js";

const INFO = "envelope:v1:suite1:key+commitment";

describe("kdf", () => {
  // Both HKDF paths are checked on every runtime: which one runs depends on the Node version.
  it("derives suite 0x01 keys as node's hkdfSync does, byte for byte, by either path", () => {
    for (let i = 0; i < 50; i++) {
      const dek = randomBytes(32);
      const id = randomBytes(32);
      const expected = Buffer.from(hkdfSync("sha256", dek, id, INFO, 64));
      for (const got of [deriveMessageKeys(dek, id, 1), hkdfHmacs(dek, id)]) {
        expect(Buffer.concat([got.encryptionKey, got.commitment]).equals(expected)).toBe(true);
      }
    }
  });
});
