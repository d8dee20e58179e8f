import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BuiltBin, buildBin, cli, tempDir } from "./support.js";

describe("the envelope bin as a process", () => {
  let built: BuiltBin;
  beforeAll(() => {
    built = buildBin();
  });
  afterAll(() => built.remove());

  it("stops quietly (exit 141) when the reader of its stdout goes away", async () => {
    const cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd })).code).toBe(0);
    // Far more than a pipe buffer, so decrypt is still writing when the reader leaves.
    writeFileSync(join(cwd, "big.bin"), randomBytes(8 * 2 ** 20));
    const sealed = await cli(["encrypt", "big.bin", "-o", "big.env", "-c", "f=big"], { cwd });
    expect(sealed.code).toBe(0);

    const child = spawn(process.execPath, [built.bin, "decrypt", "big.env", "-c", "f=big"], {
      cwd,
      env: { PATH: process.env.PATH },
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    // Read one chunk, then close our end, like `| head -c 1`.
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(stderr).not.toMatch(/EPIPE|Unhandled|at /);
    expect(code).toBe(141);
  });
});
