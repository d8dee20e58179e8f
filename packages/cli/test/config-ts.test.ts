import { spawnSync } from "node:child_process";
import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BuiltBin, buildBin, cli, tempDir } from "./support.js";

describe("envelope.config.ts under plain node", () => {
  let built: BuiltBin;
  let bin: string;
  beforeAll(() => {
    built = buildBin();
    bin = built.bin;
  });
  afterAll(() => built.remove());

  const node = (args: string[], cwd: string) =>
    spawnSync(process.execPath, [bin, ...args], {
      cwd,
      encoding: "utf8",
      env: { PATH: process.env.PATH },
    });

  it("loads a config that uses TypeScript-only syntax (an interface, annotations, satisfies)", async () => {
    const cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd })).code).toBe(0);
    const json = JSON.parse(readFileSync(join(cwd, "envelope.config.json"), "utf8"));
    unlinkSync(join(cwd, "envelope.config.json"));
    writeFileSync(
      join(cwd, "envelope.config.ts"),
      [
        "interface Settings { encrypt: string; rotation: { warnDays: number; dueDays: number } }",
        "const warn: number = 7;",
        `export default { encrypt: ${JSON.stringify(json.encrypt)}, rotation: { warnDays: warn, dueDays: warn * 2 } } satisfies Settings;`,
        "",
      ].join("\n"),
    );
    const run = node(["--json", "status"], cwd);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    const status = JSON.parse(run.stdout);
    expect(status).toMatchObject({
      config: join(cwd, "envelope.config.ts"),
      warnDays: 7,
      dueDays: 14,
    });
    expect(status.keys).toHaveLength(1);
    expect(status.keys[0]).toMatchObject({ role: "encrypt", provider: "local-rsa", state: "ok" });

    // `export const config` works too, and so does --config pointing at a .ts file elsewhere.
    writeFileSync(
      join(cwd, "other.config.ts"),
      `export const config: { encrypt: string } = { encrypt: ${JSON.stringify(json.encrypt)} };\n`,
    );
    const named = node(["--config", "other.config.ts", "--json", "status"], cwd);
    expect(named.status, named.stdout + named.stderr).toBe(0);
    expect(JSON.parse(named.stdout)).toMatchObject({ warnDays: 80, dueDays: 90 });
  });

  it("a .ts config with a syntax error is a configuration error (exit 2) that names the file", () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "envelope.config.ts"), "export default { encrypt: \n");
    const run = node(["status"], cwd);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`Cannot load config file ${join(cwd, "envelope.config.ts")}`);
    expect(run.stderr).toContain("ENVELOPE_BAD_CONFIG");
  });
});
