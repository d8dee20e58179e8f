import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { cli, tempDir } from "./support.js";

describe("key file names", () => {
  it("`keygen --init && rotate && rotate` in the same second: three commands succeed, three distinct keys", async () => {
    const cwd = tempDir();
    // All three inside one millisecond: the old one-second names collided on the third.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.parse("2026-03-04T05:06:07.089Z") });
    try {
      for (const args of [["keygen", "--init"], ["rotate"], ["rotate"]]) {
        const run = await cli([...args, "--bits", "2048"], { cwd });
        expect(run.code, run.stderr).toBe(0);
      }
    } finally {
      vi.useRealTimers();
    }
    const pems = readdirSync(join(cwd, "keys")).filter((f) => !f.endsWith(".pub.pem"));
    expect(pems).toHaveLength(3);
    const config = JSON.parse(readFileSync(join(cwd, "envelope.config.json"), "utf8"));
    const uris = [config.encrypt, ...config.decrypt];
    expect(new Set(uris).size).toBe(3);
    expect(uris.map((u: string) => u.replace(/^.*\//, "")).sort()).toEqual(pems.sort());
  });
});
