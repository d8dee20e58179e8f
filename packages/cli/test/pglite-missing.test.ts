import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { EXIT_CODES } from "@envelope/cli";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, tempDir } from "./support.js";

// A mistyped pglite:// folder made PGlite create an empty database there, and the command
// ran on it (rotate found no job to wait for, status counted nothing). Only seed-demo
// creates one.
describe("a pglite:// folder that does not exist", () => {
  let cwd: string;
  let typo: string;
  let oldKey: string;
  // seed-demo's relative folder; before the fix it landed in the test process's directory.
  const demo = `pglite-demo-${process.pid}-${randomBytes(3).toString("hex")}`;
  beforeAll(async () => {
    cwd = tempDir();
    typo = join(cwd, "typo");
    expect((await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd })).code).toBe(
      0,
    );
    expect((await cli(["rotate", "--bits", "2048", "--name", "k2"], { cwd })).code).toBe(0);
    const config = JSON.parse(readFileSync(join(cwd, "envelope.config.json"), "utf8"));
    oldKey = config.decrypt[0];
  });
  afterAll(() => {
    rmSync(resolve(process.cwd(), demo), { recursive: true, force: true });
  });

  const where = ["--table", "users", "--column", "email"];
  it.each([
    ["rotate", ["rotate", "--bits", "2048", "--name", "k3"]],
    ["rewrap", ["rewrap", ...where, "--apply"]],
    ["migrate", ["migrate", "--table", "users", "--column", "ssn", "--from", "plaintext"]],
    ["status", ["status", ...where]],
    ["retire", () => ["retire", oldKey, ...where]],
  ] as const)("%s: exit 2 naming the path, and nothing created", async (_, command) => {
    const args = typeof command === "function" ? command() : [...command];
    const config = readFileSync(join(cwd, "envelope.config.json"), "utf8");
    const keys = readdirSync(join(cwd, "keys"));
    for (const [extra, env] of [
      [["--db", `pglite://${typo}`], {}],
      [[], { ENVELOPE_DB_URL: `pglite://${typo}` }],
    ] as const) {
      const run = await cli([...args, ...extra], { cwd, env });
      expect(run.code, run.stderr).toBe(EXIT_CODES.USAGE);
      expect(run.stderr).toContain(`No PGlite database at ${typo}`);
      expect(run.stderr).toContain("the folder does not exist");
      expect(run.stderr).toContain(`envelope seed-demo --db pglite://${typo}`);
      expect(existsSync(typo)).toBe(false);
    }
    const json = await cli(["--json", ...args, "--db", `pglite://${typo}`], { cwd });
    expect(json.code).toBe(EXIT_CODES.USAGE);
    expect(json.json().error).toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
      details: { field: "db", path: typo },
    });
    expect(existsSync(typo)).toBe(false);
    expect(readFileSync(join(cwd, "envelope.config.json"), "utf8")).toBe(config);
    expect(readdirSync(join(cwd, "keys"))).toEqual(keys);
  });

  it("an existing folder that holds no PGlite database is refused too, and left empty", async () => {
    const empty = join(cwd, "empty");
    mkdirSync(empty);
    const run = await cli(["status", ...where, "--db", `pglite://${empty}`], { cwd });
    expect(run.code, run.stderr).toBe(EXIT_CODES.USAGE);
    expect(run.stderr).toContain(`No PGlite database at ${empty}`);
    expect(run.stderr).toContain("holds no PGlite database");
    expect(readdirSync(empty)).toEqual([]);
  });

  it("a relative folder is the working directory's, for seed-demo (which creates it) and the others", {
    timeout: 60_000,
  }, async () => {
    const url = `pglite://./${demo}`;
    const seeded = await cli(["seed-demo", "--db", url, "--table", "users", "--rows", "5"], {
      cwd,
    });
    expect(seeded.code, seeded.stderr).toBe(0);
    expect(existsSync(join(cwd, demo))).toBe(true);
    expect(existsSync(resolve(process.cwd(), demo))).toBe(false);
    const status = await cli(["--json", "status", "--db", url, ...where], { cwd });
    expect(status.code, status.stderr).toBe(0);
    expect(Object.values(status.json().column.byKeyRef)).toEqual([5]);
  });

  it("pglite://memory is still a fresh in-memory database", { timeout: 60_000 }, async () => {
    const other = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd: other })).code).toBe(0);
    const rotated = await cli(["rotate", "--bits", "2048", "--db", "pglite://memory"], {
      cwd: other,
    });
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(existsSync(join(other, "memory"))).toBe(false);
  });
});
