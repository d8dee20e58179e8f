import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT_CODES } from "@envelope/cli";
import { Envelope, resolveKey } from "@envelope/core";
import { fileKeyStore, hierarchicalProvider } from "@envelope/hierarchical";
import { beforeAll, describe, expect, it } from "vitest";
import { cli, tempDir } from "./support.js";

describe("envelope keystore verify", () => {
  let cwd: string;
  let storePath: string;
  beforeAll(async () => {
    cwd = tempDir();
    const keygen = await cli(["--json", "keygen", "--init", "--bits", "2048", "--name", "master"], {
      cwd,
    });
    expect(keygen.code, keygen.stderr).toBe(0);
    // An application in hierarchical mode: intermediate keys wrapped by the CLI's master key.
    const master = await resolveKey(`local-rsa://${join(cwd, "keys/master.pem")}`);
    storePath = join(cwd, "envelope-keys.json");
    const store = await fileKeyStore({ path: storePath, create: true });
    const envelope = new Envelope({
      encrypt: hierarchicalProvider({ master, store, rotateAfter: { uses: 2 } }),
    });
    for (let i = 0; i < 5; i++) await envelope.encrypt(`value ${i}`);
  });

  it("passes a healthy store, unwrapping every intermediate key with the configured master", async () => {
    const run = await cli(["--json", "keystore", "verify", "--file", storePath], { cwd });
    expect(run.code, run.stderr).toBe(EXIT_CODES.OK);
    const report = run.json();
    expect(report.total).toBeGreaterThanOrEqual(3);
    expect(report.ok).toBe(report.total);
    expect(report.unwrapped).toBe(true);
    expect(run.stdout).not.toMatch(/PRIVATE KEY/);
  });

  it("fails loudly on a corrupted store", async () => {
    const text = readFileSync(storePath, "utf8");
    const broken = join(cwd, "broken-keys.json");
    writeFileSync(
      broken,
      text.replace(/"wrapped":\s*"(.)/, (_m, c) => `"wrapped": "${c === "A" ? "B" : "A"}`),
    );
    const run = await cli(["keystore", "verify", "--file", broken], { cwd });
    expect(run.code).not.toBe(EXIT_CODES.OK);
    expect(run.stderr).toMatch(/ENVELOPE_BAD_KEY|FAILED/);
  });

  it("needs exactly one store", async () => {
    const run = await cli(["keystore", "verify"], { cwd });
    expect(run.code).toBe(EXIT_CODES.USAGE);
    expect(run.stderr).toMatch(/--file or --pg/);
  });

  it("does not create a missing PostgreSQL store", async () => {
    const run = await cli(
      [
        "keystore",
        "verify",
        "--pg",
        "postgres://postgres@127.0.0.1:5432/test",
        "--table",
        "cli_keystore_missing_table",
        "--no-unwrap",
      ],
      { cwd },
    );
    expect(run.code).not.toBe(EXIT_CODES.OK);
  });
});
