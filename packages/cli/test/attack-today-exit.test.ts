/**
 * Review of today's CLI exit timing (src/cli.ts: the process leaves 0.5 s after main()
 * resolves, whatever is still pending): a command whose output is still draining into a
 * slow reader must not be cut. The built bin, run as a user runs it.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BuiltBin, buildBin, tempDir } from "./support.js";

describe("today: the CLI's exit 0.5 s after a command returns", () => {
  let built: BuiltBin;
  beforeAll(() => {
    built = buildBin();
  }, 120_000);
  afterAll(() => built?.remove());

  it("decrypt of a 24 MiB stream to a reader that starts reading after 2 s delivers every byte, exit 0; keygen writes its files", async () => {
    const cwd = tempDir();
    const run = (args: string[]) =>
      spawnSync(process.execPath, [built.bin, ...args], { cwd, encoding: "utf8" });
    const keygen = run(["keygen", "--init", "--bits", "2048", "--name", "k1"]);
    expect(keygen.status, keygen.stderr).toBe(0);
    const plain = randomBytes(24 * 1024 * 1024);
    writeFileSync(join(cwd, "big.bin"), plain);
    const enc = run(["encrypt", "big.bin", "-o", "big.env", "-c", "file=x"]);
    expect(enc.status, enc.stderr).toBe(0);
    const child = spawn(process.execPath, [built.bin, "decrypt", "big.env", "-c", "file=x"], {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.pause();
    const parts: Buffer[] = [];
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const ended = new Promise<void>((r) => child.stdout.on("end", () => r()));
    setTimeout(() => {
      child.stdout.on("data", (d: Buffer) => parts.push(d));
      child.stdout.resume();
    }, 2000);
    await ended;
    expect(await exited).toBe(0);
    const out = Buffer.concat(parts);
    expect(out.length).toBe(plain.length);
    expect(out.equals(plain)).toBe(true);
  }, 120_000);
});
