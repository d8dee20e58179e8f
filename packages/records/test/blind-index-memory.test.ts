import { randomFillSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createBlindIndexer } from "../src/index.js";

// The blind index's root keys live as long as the indexer, so they must not sit in node's
// shared Buffer pool, beside every other small Buffer of the process (core's
// crypto/secret-bytes.ts says why).
describe("blind index keys are kept out of node's Buffer pool", () => {
  const nodePool = () => Buffer.from(Buffer.allocUnsafe(1).buffer);
  for (const form of ["bytes", "hex", "base64url"] as const) {
    it(`a key given as ${form}`, () => {
      const key = randomFillSync(Buffer.alloc(32)); // Buffer.alloc: not in the pool itself
      const given =
        form === "bytes" ? key : form === "hex" ? key.toString("hex") : key.toString("base64url");
      const indexer = createBlindIndexer({ keys: given });
      expect(indexer.index("email", "users", "a@example.com")).toMatch(/\S/);
      expect(nodePool().includes(key)).toBe(false);
    });
  }
});
