import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT_CODES } from "@envelope/cli";
import { describe, expect, it } from "vitest";
import { renderReadiness } from "../src/commands/check.js";
import { cli, tempDir } from "./support.js";

describe("envelope check", () => {
  it("reports every configured key ok (exit 0), with --json for probes", async () => {
    const cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd })).code).toBe(
      0,
    );
    expect((await cli(["rotate", "--bits", "2048", "--name", "k2"], { cwd })).code).toBe(0);
    const human = await cli(["check"], { cwd });
    expect(human.code, human.stderr).toBe(EXIT_CODES.OK);
    expect(human.stdout).toMatch(/^OK +encrypt +local-rsa:/m);
    expect(human.stdout).toMatch(/^OK +decrypt +local-rsa:/m);
    expect(human.stdout).toContain("Ready: 2 key(s) ok.");
    const json = await cli(["--json", "check"], { cwd });
    expect(json.code).toBe(0);
    expect(json.json()).toMatchObject({
      ok: true,
      providers: [{ role: "encrypt" }, { role: "decrypt" }],
    });
  });

  it("an encrypt-only key (public key only) is degraded: exit 9, or 0 with --allow-degraded", async () => {
    const cwd = tempDir();
    const made = await cli(["--json", "keygen", "--bits", "2048", "--name", "pub"], { cwd });
    expect(made.code, made.stderr).toBe(0);
    const publicKey = made.json().publicKeyPath as string;
    writeFileSync(
      join(cwd, "envelope.config.json"),
      JSON.stringify({ encrypt: `local-rsa://${publicKey}` }),
    );
    const run = await cli(["check"], { cwd });
    expect(run.code, run.stderr).toBe(EXIT_CODES.DEGRADED);
    expect(run.stdout).toContain("ENVELOPE_ENCRYPT_ONLY on unwrap");
    expect((await cli(["check", "--allow-degraded"], { cwd })).code).toBe(0);
  });

  it("a key that cannot be loaded is a usage error before any check runs", async () => {
    const cwd = tempDir();
    writeFileSync(
      join(cwd, "envelope.config.json"),
      JSON.stringify({ encrypt: "local-rsa:///nope.pem" }),
    );
    const run = await cli(["check"], { cwd });
    expect(run.code).toBe(EXIT_CODES.USAGE);
  });

  it("a bad --timeout is refused", async () => {
    const cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd })).code).toBe(0);
    const run = await cli(["check", "--timeout", "soon"], { cwd });
    expect(run.code).toBe(EXIT_CODES.USAGE);
    expect(run.stderr).toContain("timeoutMs");
  });

  it("names the master a hierarchical key was checked through, and the probe's latency", () => {
    const text = renderReadiness({
      ok: true,
      checkedAt: "2026-12-07T00:00:00.000Z",
      providers: [
        {
          provider: "hierarchical",
          keyRef: "ik-0123456789abcdef01234567",
          role: "encrypt",
          status: "ok",
          via: { provider: "aws-kms", keyRef: "arn:aws:kms:eu-west-1:111122223333:key/k" },
          latencyMs: { probe: 0.4, wrap: 8.1, unwrap: 7.4 },
        },
      ],
    });
    expect(text).toContain(
      "OK       encrypt hierarchical:ik-0123456789abcdef01234567 via aws-kms:arn:aws:kms:eu-west-1:111122223333:key/k  (probe 0.4 ms, wrap 8.1 ms, unwrap 7.4 ms)",
    );
  });
});
