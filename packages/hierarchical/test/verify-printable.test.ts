import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { formatVerifyReport, memoryKeyStore, verifyKeyStore } from "../src/index.js";
import type { StoredKeyRecord } from "../src/record.js";

const RAW_CONTROL =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe("formatVerifyReport", () => {
  it("escapes and caps ids and master references read from the store's records", async () => {
    const store = memoryKeyStore();
    // A record someone wrote into the store table by hand: fails its checks, and its strings
    // are hostile.
    await store.put({
      id: "ik-\n\u001b[2J\u009b31m",
      createdAt: 1,
      master: {
        providerId: "local-aes",
        keyRef: `\u202e${"x".repeat(1000)}`,
        wrapped: randomBytes(40),
      },
      keyCheck: "0".repeat(64),
      checksum: "0".repeat(64),
    } as unknown as StoredKeyRecord);
    const report = await verifyKeyStore(store);
    expect(report.failures).toHaveLength(1);
    const text = formatVerifyReport(report);
    expect(text).toContain("ik-\\x0a\\x1b[2J\\x9b31m");
    expect(text.split("\n").join("")).not.toMatch(RAW_CONTROL);
    expect(text).not.toContain("x".repeat(300));
  });
});
