import { spawnSync } from "node:child_process";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTsx } from "../src/config/typescript-config.js";
import { type BuiltBin, buildBin, cli, tempDir } from "./support.js";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

describe("envelope --version", () => {
  it("is the version in package.json", async () => {
    const run = await cli(["--version"], { cwd: tempDir() });
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(pkg.version);
  });
});

describe("tsx is an optional peer dependency, loaded only for envelope.config.ts", () => {
  it("is not a runtime dependency of the CLI", () => {
    expect(pkg.dependencies.tsx).toBeUndefined();
    expect(pkg.peerDependenciesMeta.tsx).toEqual({ optional: true });
  });

  it("a missing package other than tsx itself (one of its own imports) is passed on unchanged", async () => {
    const missing = "envelope-test-package-that-is-not-installed";
    const error = await loadTsx("/app/envelope.config.ts", () => import(missing)).catch((e) => e);
    expect(ConfigError.isInstance(error)).toBe(false);
    expect(error.code).toBe("ERR_MODULE_NOT_FOUND");
  });

  it("another failure while loading tsx is passed on unchanged", async () => {
    const boom = new Error("tsx failed to start");
    await expect(loadTsx("/app/envelope.config.ts", () => Promise.reject(boom))).rejects.toBe(boom);
  });

  describe("the built bin with tsx made unresolvable (a resolve hook refuses it, as if not installed)", () => {
    let built: BuiltBin;
    let cwd: string;
    let hook: string;
    beforeAll(async () => {
      built = buildBin();
      cwd = tempDir();
      expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd })).code).toBe(0);
      writeFileSync(
        join(cwd, "no-tsx-hook.mjs"),
        [
          "export async function resolve(specifier, context, next) {",
          '  if (specifier === "tsx" || specifier.startsWith("tsx/")) {',
          "    const error = new Error(\"Cannot find package 'tsx' imported from \" + context.parentURL);",
          '    error.code = "ERR_MODULE_NOT_FOUND";',
          "    throw error;",
          "  }",
          "  return next(specifier, context);",
          "}",
        ].join("\n"),
      );
      hook = join(cwd, "register-no-tsx.mjs");
      writeFileSync(
        hook,
        'import { register } from "node:module";\nregister("./no-tsx-hook.mjs", import.meta.url);\n',
      );
    });
    afterAll(() => built.remove());

    const node = (args: string[]) =>
      spawnSync(process.execPath, ["--import", hook, built.bin, ...args], {
        cwd,
        encoding: "utf8",
        env: { PATH: process.env.PATH },
      });

    it("a JSON config works without tsx", () => {
      const run = node(["--json", "status"]);
      expect(run.status, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout).keys).toHaveLength(1);
    });

    it("a .ts config: exit 2 with the typed error naming tsx", () => {
      const json = JSON.parse(readFileSync(join(cwd, "envelope.config.json"), "utf8"));
      renameSync(join(cwd, "envelope.config.json"), join(cwd, "saved.json"));
      writeFileSync(
        join(cwd, "envelope.config.ts"),
        `export default { encrypt: ${JSON.stringify(json.encrypt)} };\n`,
      );
      const run = node(["--json", "status"]);
      expect(run.status, run.stdout + run.stderr).toBe(2);
      const { error } = JSON.parse(run.stdout);
      expect(error).toMatchObject({
        code: "ENVELOPE_PROVIDER_NOT_INSTALLED",
        details: { field: "config", package: "tsx" },
      });
      expect(error.message).toContain("npm install tsx");
      expect(error.message).toContain("envelope.config.json");
    });
  });
});
