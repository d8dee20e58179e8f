import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { JobReport } from "@envelope/batch-rewrap";
import { connect } from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { createEnvelope, Envelope, type KeyProvider, localAesProvider } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliContext } from "../src/command-context.js";
import { printReport } from "../src/report/job-report.js";
import { type BuiltBin, buildBin, cli, tempDir } from "./support.js";

// A key reference a database writer chose: a newline, "clear screen", an 8-bit CSI, a bidi
// override. None of it may reach a terminal raw.
const EVIL = "k\n\u001b[2J\u009b31mred\u202eevil";
const LONG = `${EVIL}${"x".repeat(1500)}`;
// Every control character but the newline that ends a line of output.
const RAW_CONTROL =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** A provider that seals under a hostile key reference (what a database writer can plant). */
function evilProvider(keyRef: string): KeyProvider {
  const inner = localAesProvider({ keys: randomBytes(32) });
  return {
    id: "evil",
    keyRef,
    handles: () => true,
    wrap: async (key, request) => ({
      ...(await inner.wrap(key, request)),
      providerId: "evil",
      keyRef,
    }),
    unwrap: () => Promise.reject(new Error("not used")),
  };
}

interface ProcessRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe("every error is the typed error and its exit code, on every output path", () => {
  let built: BuiltBin;
  let cwd: string;
  const run = (args: string[]): Promise<ProcessRun> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [built.bin, ...args], {
        cwd,
        env: { PATH: process.env.PATH },
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => {
        stdout += String(d);
      });
      child.stderr.on("data", (d) => {
        stderr += String(d);
      });
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });

  beforeAll(async () => {
    built = buildBin();
    cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd })).code).toBe(0);
    writeFileSync(join(cwd, "plain.txt"), "the secret\n");
    expect((await cli(["encrypt", "plain.txt", "-o", "a.env", "-c", "f=a"], { cwd })).code).toBe(0);
    const stream = readFileSync(join(cwd, "a.env"));
    stream[stream.length - 5]! ^= 0x01; // inside the last chunk's tag
    writeFileSync(join(cwd, "tampered.env"), stream);

    const envelope = await createEnvelope({
      encrypt: JSON.parse(readFileSync(join(cwd, "envelope.config.json"), "utf8")).encrypt,
    });
    const text = await envelope.encrypt("the secret", { context: { f: "a" }, output: "text" });
    writeFileSync(join(cwd, "value.txt"), `${text}\n`);
    const i = text.length - 6; // inside the GCM tag
    writeFileSync(
      join(cwd, "tampered.txt"),
      `${text.slice(0, i)}${text[i] === "A" ? "B" : "A"}${text.slice(i + 1)}\n`,
    );

    const evil = new Envelope({ encrypt: evilProvider(EVIL) });
    writeFileSync(
      join(cwd, "evil.txt"),
      `${await evil.encrypt("x", { context: { f: "a" }, output: "text" })}\n`,
    );
  }, 60_000);
  afterAll(() => built?.remove());

  const cases: [string, string[]][] = [
    ["a tampered stream", ["tampered.env", "-c", "f=a"]],
    ["a stream with the wrong context", ["a.env", "-c", "f=b"]],
    ["a tampered single value", ["tampered.txt", "-c", "f=a"]],
    ["a single value with the wrong context", ["value.txt", "-c", "f=b"]],
    ["a value under an unknown key", ["evil.txt", "-c", "f=a"]],
  ];

  it.each(cases)(
    "decrypt of %s to stdout: exit 3 and one line naming the typed error",
    async (_, args) => {
      const human = await run(["decrypt", ...args]);
      expect(human.code, human.stderr).toBe(EXIT_CODES.DATA);
      expect(human.stdout).toBe("");
      expect(human.stderr).toMatch(/^envelope: [^\n]+ \[ENVELOPE_[A-Z_]+\]\n$/);
      expect(human.stderr).not.toMatch(/\n\s+at |Node\.js v|throw error/);
      expect(human.stderr).not.toMatch(RAW_CONTROL);

      const json = await run(["--json", "decrypt", ...args]);
      expect(json.code, json.stderr).toBe(EXIT_CODES.DATA);
      expect(json.stderr).toBe("");
      expect(json.stdout).not.toMatch(RAW_CONTROL);
      const parsed = JSON.parse(json.stdout);
      expect(parsed).toMatchObject({
        error: { name: "DecryptionError", code: expect.stringMatching(/^ENVELOPE_/) },
        exitCode: EXIT_CODES.DATA,
      });
      // the same error in both modes
      expect(human.stderr).toContain(`[${parsed.error.code}]`);

      // … and as it already was with -o, where no file is left behind
      const toFile = await run(["decrypt", ...args, "-o", "out.txt"]);
      expect(toFile.code).toBe(EXIT_CODES.DATA);
      expect(toFile.stderr).toBe(human.stderr);
    },
    90_000,
  );

  it("a hostile key reference is escaped in the error line (human) and stays exact in JSON", async () => {
    const human = await run(["decrypt", "evil.txt", "-c", "f=a"]);
    expect(human.stderr).toContain("k\\x0a\\x1b[2J\\x9b31mred\\u202eevil");
    const json = await run(["--json", "decrypt", "evil.txt", "-c", "f=a"]);
    expect(JSON.parse(json.stdout).error.code).toBe("ENVELOPE_NO_MATCHING_KEY");

    const inspected = await run(["inspect", "evil.txt"]);
    expect(inspected.code).toBe(0);
    expect(inspected.stdout).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(inspected.stdout).entries[0]).toMatchObject({
      provider: "evil",
      keyRef: EVIL,
    });
  }, 60_000);

  it("the working path still writes the plaintext to stdout", async () => {
    const ok = await run(["decrypt", "a.env", "-c", "f=a"]);
    expect(ok).toEqual({ code: 0, stdout: "the secret\n", stderr: "" });
  });
});

describe("status and rewrap reports show key references read from the column escaped and capped", () => {
  it("status, rewrap dry run (human and --json)", async () => {
    const cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd })).code).toBe(0);
    const url = `pglite://${join(cwd, "db")}`;
    const db = await connect(url);
    try {
      await db.query("CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT)");
      // Row 1 opens (so a rewrap gets past its preflight); rows 2 and 3 carry hostile refs.
      const good = await createEnvelope({
        encrypt: JSON.parse(readFileSync(join(cwd, "envelope.config.json"), "utf8")).encrypt,
      });
      const sealers = [
        good,
        new Envelope({ encrypt: evilProvider(EVIL) }),
        new Envelope({ encrypt: evilProvider(LONG) }),
      ];
      for (const [i, sealer] of sealers.entries()) {
        const id = String(i + 1);
        const value = await sealer.encrypt("x", {
          context: { table: "users", column: "email", id },
          output: "text",
        });
        await db.query("INSERT INTO users (id, email) VALUES (?, ?)", [id, value]);
      }
    } finally {
      await db.close();
    }
    const column = ["--db", url, "--table", "users", "--column", "email"];
    const human = await cli(["status", ...column], { cwd });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain("evil:k\\x0a\\x1b[2J\\x9b31mred\\u202eevil");
    expect(human.stdout).not.toMatch(RAW_CONTROL);
    expect(human.stdout).not.toContain("x".repeat(300)); // capped…
    expect(human.stdout).toMatch(/…\(\+\d+ chars\)/); // …and says so
    const json = await cli(["--json", "status", ...column], { cwd });
    expect(json.stdout).not.toMatch(RAW_CONTROL);
    expect(json.json().column.byKeyRef).toMatchObject({
      [`evil:${EVIL}`]: 1,
      [`evil:${LONG}`]: 1,
    });

    // A rewrap stops at its preflight on these values: the error line is escaped too.
    const rewrap = await cli(["rewrap", ...column], { cwd });
    expect(rewrap.code).toBe(EXIT_CODES.DATA);
    expect(rewrap.stderr).toMatch(/^envelope: [^\n]+ \[ENVELOPE_NO_MATCHING_KEY\]\n$/);
    expect(rewrap.stderr).not.toMatch(RAW_CONTROL);
    const rewrapJson = await cli(["--json", "rewrap", ...column], { cwd });
    expect(rewrapJson.stdout).not.toMatch(RAW_CONTROL);
    expect(rewrapJson.json().error.code).toBe("ENVELOPE_NO_MATCHING_KEY");
  }, 60_000);
});

describe("a rewrap report shows stored strings escaped and capped", () => {
  it("byKeyRef refs and failing primary keys", () => {
    const out: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) } } as unknown as CliContext["io"];
    const report = {
      kind: "rewrap",
      table: "users",
      columns: ["email"],
      targets: ["local-rsa:abc"],
      apply: false,
      jobId: "job",
      complete: false,
      stopped: false,
      run: { scanned: 3, rewrapped: 0, skipped: 0, nulls: 0, conflicts: 0, failed: 0, kmsCalls: 0 },
      kmsThrottled: 0,
      kmsCallsPerValue: 0,
      durationMs: 1,
      rowsPerSecond: 1,
      wouldRewrite: 1,
      byKeyRef: { [`evil:${EVIL}`]: 1, [`evil:${LONG}`]: 1 },
      failures: { ENVELOPE_NO_MATCHING_KEY: 1 },
      sampleFailures: [
        { pk: "7\u001b]0;owned\u0007", column: "email", code: "ENVELOPE_NO_MATCHING_KEY" },
      ],
    } as unknown as JobReport;
    printReport({ io, signal: new AbortController().signal }, false, report);
    const text = out.join("");
    expect(text).toContain("evil:k\\x0a\\x1b[2J\\x9b31mred\\u202eevil: 1 value(s)");
    expect(text).toContain("pk=7\\x1b]0;owned\\x07");
    expect(text.replace(/\n/g, "")).not.toMatch(RAW_CONTROL);
    expect(text).not.toContain("x".repeat(300));
  });
});

describe("a usage error under --json", () => {
  it("is a JSON error object (ENVELOPE_BAD_INPUT, exit 2) like every other failure", async () => {
    const run = await cli(["--json", "decrypt", "--bogus"], { cwd: tempDir() });
    expect(run.code).toBe(EXIT_CODES.USAGE);
    expect(run.json()).toMatchObject({
      error: {
        code: "ENVELOPE_BAD_INPUT",
        message: expect.stringContaining("--bogus"),
        details: { commander: "commander.unknownOption" },
      },
      exitCode: EXIT_CODES.USAGE,
    });
    const human = await cli(["decrypt", "--bogus"], { cwd: tempDir() });
    expect(human.code).toBe(EXIT_CODES.USAGE);
    expect(human.stdout).toBe("");
    expect(human.stderr).toContain("unknown option '--bogus'");
  });

  it("keeps Commander's suggestion on the same line, not as an escaped newline", async () => {
    const run = await cli(["--json", "rewrap", "--tabel", "x"], { cwd: tempDir() });
    const { message } = run.json().error;
    expect(message).toContain("unknown option '--tabel' (Did you mean --table?)");
    expect(message).not.toMatch(/\\x0a|\n/);
  });
});

describe("a file error", () => {
  it("ends its human line with the code, as every error line does", async () => {
    const run = await cli(["inspect", "no-such-file.env"], { cwd: tempDir() });
    expect(run.code).toBe(EXIT_CODES.USAGE);
    expect(run.stderr).toMatch(
      /^envelope: ENOENT: .*Check the path and permissions\. \[ENOENT\]\n$/,
    );
  });
});
