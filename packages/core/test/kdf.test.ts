import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";

describe("kdf", () => {
  it("matches node's hkdfSync byte for byte", async () => {
    const { hkdfSync } = await import("node:crypto");
    const { deriveMessageKeys } = await import("../src/crypto/kdf.js");
    for (let i = 0; i < 50; i++) {
      const dek = randomBytes(32);
      const id = randomBytes(32);
      const expected = Buffer.from(
        hkdfSync("sha256", dek, id, "envelope:v1:suite1:key+commitment", 64),
      );
      const got = deriveMessageKeys(dek, id, 1);
      expect(Buffer.concat([got.encryptionKey, got.commitment]).equals(expected)).toBe(true);
    }
  });
});
