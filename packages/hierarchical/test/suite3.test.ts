// Hierarchical mode and suite 0x03 (docs/FORMAT.md §15): opt-in for writers, always read.
import { createHmac, randomBytes } from "node:crypto";
import { Envelope, inspectEnvelope } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { derive } from "../src/data-key.js";
import { hierarchicalProvider, memoryKeyStore, rotateMaster } from "../src/index.js";
import { countingMaster, rotatingMasters } from "./helpers.js";

const context = { table: "users", column: "email", id: "42" };
const LABEL = "envelope:hierarchical:v1:data-key:";

describe("hierarchical suite option", () => {
  it("derive is HMAC-SHA256(IK, label || seed) byte for byte, and leaves its inputs alone", () => {
    for (let i = 0; i < 50; i++) {
      const ik = randomBytes(32);
      const seed = randomBytes(32);
      const [ikCopy, seedCopy] = [Buffer.from(ik), Buffer.from(seed)];
      const expected = createHmac("sha256", ik).update(LABEL).update(seed).digest();
      expect(derive(ik, seed).equals(expected)).toBe(true);
      expect([ik.equals(ikCopy), seed.equals(seedCopy)]).toEqual([true, true]);
    }
  });

  it("writes suite 1 by default and suite 3 with suite: 3; either opens with either setting", async () => {
    const { provider: master } = countingMaster();
    const store = memoryKeyStore();
    const old = new Envelope({ encrypt: hierarchicalProvider({ master, store }) });
    const fast = new Envelope({ encrypt: hierarchicalProvider({ master, store, suite: 3 }) });
    const a = await old.encrypt("a", { context, output: "binary" });
    const b = await fast.encrypt("b", { context, output: "binary" });
    expect([a[1], b[1]]).toEqual([0x01, 0x03]);
    // A new process (cold IK cache) of each kind reads both.
    for (const suite of [1, 3] as const) {
      const reader = new Envelope({ encrypt: hierarchicalProvider({ master, store, suite }) });
      expect((await reader.decrypt(a, { context })).toString()).toBe("a");
      expect((await reader.decrypt(b, { context })).toString()).toBe("b");
    }
  });

  it("suite 3 values with padding survive a master rotation untouched", async () => {
    const { old, next, newOnly } = rotatingMasters();
    const store = memoryKeyStore();
    const writer = new Envelope({
      encrypt: hierarchicalProvider({ master: old, store, suite: 3 }),
      pad: "pii",
    });
    const sealed = await writer.encrypt("078-05-1120", { context });
    expect(inspectEnvelope(sealed).padded).toBe(true);
    expect((await rotateMaster(store, { from: old, to: next })).failed).toEqual([]);
    const reader = new Envelope({ encrypt: hierarchicalProvider({ master: newOnly, store }) });
    expect(await reader.decrypt(sealed, { context, as: "text" })).toBe("078-05-1120");
  });

  it.each([0, 2, 4, "3"])("refuses suite %s with a typed config error", (suite) => {
    const { provider: master } = countingMaster();
    expect(() =>
      hierarchicalProvider({ master, store: memoryKeyStore(), suite: suite as 3 }),
    ).toThrow(expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }));
  });
});
