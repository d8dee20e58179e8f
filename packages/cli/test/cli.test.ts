import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT_CODES } from "@envelope/cli";
import { createEnvelope } from "@envelope/core";
import { beforeAll, describe, expect, it } from "vitest";
import { cli, tempDir } from "./support.js";

describe("envelope CLI: keys and files", () => {
  let cwd: string;
  let firstKeyRef: string;
  beforeAll(async () => {
    cwd = tempDir();
    const run = await cli(["--json", "keygen", "--init", "--bits", "2048", "--name", "k1"], {
      cwd,
    });
    expect(run.code, run.stderr).toBe(0);
    firstKeyRef = run.json().keyRef;
  });

  it("keygen writes a 0600 private key, a public key and the config", () => {
    expect(statSync(join(cwd, "keys/k1.pem")).mode & 0o777).toBe(0o600);
    expect(existsSync(join(cwd, "keys/k1.pub.pem"))).toBe(true);
    const config = JSON.parse(readFileSync(join(cwd, "envelope.config.json"), "utf8"));
    expect(config.encrypt).toBe(`local-rsa://${join(cwd, "keys/k1.pem")}`);
    expect(config.rotation).toMatchObject({ warnDays: 80, dueDays: 90, keyDir: "keys" });
    expect(firstKeyRef).toMatch(/^[0-9a-f]{32}$/);
  });

  it("--help works on every command", async () => {
    for (const command of [
      "keygen",
      "encrypt",
      "decrypt",
      "inspect",
      "rewrap",
      "status",
      "rotate",
      "migrate",
      "seed-demo",
    ]) {
      const run = await cli([command, "--help"], { cwd });
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`Usage: envelope ${command}`);
    }
    expect((await cli(["no-such-command"], { cwd })).code).toBe(EXIT_CODES.USAGE);
    // Every exit code a script can see is listed in --help (9, 10 and 141 were missing).
    const help = (await cli(["--help"], { cwd })).stdout;
    for (const code of Object.values(EXIT_CODES)) expect(help).toMatch(new RegExp(`[:·] ${code} `));
  });

  it("keygen in a git work tree writes a .gitignore into the key folder; outside one it does not", async () => {
    const repo = tempDir();
    mkdirSync(join(repo, ".git"));
    mkdirSync(join(repo, "app"));
    const run = await cli(["keygen", "--init", "--bits", "2048"], { cwd: join(repo, "app") });
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(join(repo, "app/keys/.gitignore"), "utf8")).toMatch(/^\*$/m);
    expect(run.stdout).toContain("keys/.gitignore written");
    // rotate writes its key into the same folder: the .gitignore is kept as it is.
    writeFileSync(join(repo, "app/keys/.gitignore"), "*.pem\n");
    expect((await cli(["rotate", "--bits", "2048"], { cwd: join(repo, "app") })).code).toBe(0);
    expect(readFileSync(join(repo, "app/keys/.gitignore"), "utf8")).toBe("*.pem\n");
    expect(existsSync(join(cwd, "keys/.gitignore"))).toBe(false); // cwd is not in a repository
  });

  it("encrypts and decrypts files and stdin/stdout; plaintext never lands in a file on failure", async () => {
    const plain = randomBytes(200_000);
    writeFileSync(join(cwd, "data.bin"), plain);
    expect(
      (
        await cli(
          ["encrypt", "data.bin", "-o", "data.env", "-c", "file=data.bin", "--chunk-size", "4096"],
          { cwd },
        )
      ).code,
    ).toBe(0);
    expect(readFileSync(join(cwd, "data.env")).subarray(0, 4).toString()).toBe("ENVS");
    const back = await cli(["decrypt", "data.env", "-c", "file=data.bin"], { cwd });
    expect(back.code).toBe(0);
    expect(back.stdoutBytes.equals(plain)).toBe(true);

    const piped = await cli(["encrypt", "-c", "k=v"], { cwd, stdin: Buffer.from("hello stdin") });
    const opened = await cli(["decrypt", "-", "-c", "k=v"], { cwd, stdin: piped.stdoutBytes });
    expect(opened.stdout).toBe("hello stdin");

    const wrong = await cli(["decrypt", "data.env", "-o", "out.bin", "-c", "file=other"], { cwd });
    expect(wrong.code).toBe(EXIT_CODES.DATA);
    expect(wrong.stderr).toContain("ENVELOPE_DECRYPT_FAILED");
    const sealed = readFileSync(join(cwd, "data.env"));
    writeFileSync(join(cwd, "cut.env"), sealed.subarray(0, sealed.length - 100));
    const cut = await cli(
      ["--json", "decrypt", "cut.env", "-o", "cut.bin", "-c", "file=data.bin"],
      { cwd },
    );
    expect(cut.code).toBe(EXIT_CODES.DATA);
    expect(cut.json().error.code).toBe("ENVELOPE_BAD_FORMAT");
    expect(existsSync(join(cwd, "cut.bin"))).toBe(false);
  });

  it("inspect prints the header as JSON without key material", async () => {
    const run = await cli(["inspect", "data.env"], { cwd });
    expect(run.code).toBe(0);
    const info = run.json();
    expect(info).toMatchObject({
      form: "stream",
      chunkSize: 4096,
      key: { entries: [{ provider: "local-rsa", keyRef: firstKeyRef, wrappedBytes: 256 }] },
    });
    expect(JSON.stringify(info)).not.toMatch(/"wrapped"|BEGIN|PRIVATE/);
    const envelope = await createEnvelope({
      encrypt: JSON.parse(readFileSync(join(cwd, "envelope.config.json"), "utf8")).encrypt,
    });
    const value = await envelope.encrypt("x", { context: { id: "1" }, output: "text" });
    const single = await cli(["inspect", "--value", value], { cwd });
    expect(single.json()).toMatchObject({
      form: "text",
      version: 1,
      entries: [{ keyRef: firstKeyRef }],
    });
    writeFileSync(join(cwd, "value.txt"), `${value}\n`);
    expect((await cli(["inspect", "value.txt"], { cwd })).json().messageId).toBe(
      single.json().messageId,
    );
    const bad = await cli(["inspect", "--value", "ev1:nope"], { cwd });
    expect(bad.code).toBe(EXIT_CODES.DATA);
  });

  it("rotate's next steps name the table, columns and old key it was given, never a database URL", async () => {
    const dir = tempDir();
    const init = await cli(["--json", "keygen", "--init", "--bits", "2048", "--name", "a"], {
      cwd: dir,
    });
    expect(init.code, init.stderr).toBe(0);
    const rotated = await cli(
      ["rotate", "--bits", "2048", "--name", "b", "--table", "users", "--column", "email,phone"],
      { cwd: dir },
    );
    expect(rotated.code, rotated.stderr).toBe(0);
    const on = "--db <url> --table users --column email,phone";
    expect(rotated.stdout).toContain(`envelope rewrap ${on} --apply`);
    expect(rotated.stdout).toContain(`envelope retire local-rsa:${init.json().keyRef} ${on}`);
    const fromEnv = await cli(["rotate", "--bits", "2048", "--name", "c"], {
      cwd: dir,
      env: { ENVELOPE_DB_URL: "postgres://app:s3cret@db.invalid/app" },
    });
    // With ENVELOPE_DB_URL the guard connects first: unreachable, so refused, nothing printed.
    expect(fromEnv.stdout + fromEnv.stderr).not.toContain("s3cret");
  });

  it("rotate makes a new key the encrypting one, rewrap --in-place moves a file to it, status shows ages", async () => {
    const rotated = await cli(["--json", "rotate", "--bits", "2048", "--name", "k2"], { cwd });
    expect(rotated.code, rotated.stderr).toBe(0);
    const config = JSON.parse(readFileSync(join(cwd, "envelope.config.json"), "utf8"));
    expect(config.encrypt).toBe(`local-rsa://${join(cwd, "keys/k2.pem")}`);
    expect(config.decrypt).toEqual([`local-rsa://${join(cwd, "keys/k1.pem")}`]);
    const newRef = rotated.json().keyRef;

    expect(
      (await cli(["rewrap", "data.env", "--in-place", "-c", "file=data.bin"], { cwd })).code,
    ).toBe(0);
    expect(
      (await cli(["inspect", "data.env"], { cwd }))
        .json()
        .key.entries.map((e: { keyRef: string }) => e.keyRef),
    ).toEqual([newRef]);
    // The new key alone (from the environment, no config file) opens it now.
    const onlyNew = await cli(["decrypt", join(cwd, "data.env"), "-c", "file=data.bin"], {
      cwd: tempDir(),
      env: { ENVELOPE_ENCRYPT_KEYS: config.encrypt },
    });
    expect(onlyNew.code, onlyNew.stderr).toBe(0);
    const oldOnly = await cli(["decrypt", join(cwd, "data.env"), "-c", "file=data.bin"], {
      cwd: tempDir(),
      env: { ENVELOPE_ENCRYPT_KEYS: config.decrypt[0] },
    });
    expect(oldOnly.code).toBe(EXIT_CODES.DATA);
    expect(oldOnly.stderr).toContain("ENVELOPE_NO_MATCHING_KEY");

    // Backdate the first key: status warns/dues and --check exits 6.
    config.rotation.keyCreated[config.encrypt] = new Date(
      Date.now() - 95 * 86_400_000,
    ).toISOString();
    config.rotation.keyCreated[config.decrypt[0]] = new Date(
      Date.now() - 85 * 86_400_000,
    ).toISOString();
    writeFileSync(join(cwd, "envelope.config.json"), JSON.stringify(config));
    const status = await cli(["--json", "status", "--check"], { cwd });
    expect(status.code).toBe(EXIT_CODES.ROTATION_DUE);
    expect(
      status
        .json()
        .keys.map((k: { role: string; state: string; ageDays: number }) => [
          k.role,
          k.state,
          k.ageDays,
        ]),
    ).toEqual([
      ["encrypt", "DUE", 95],
      ["decrypt", "WARN", 85],
    ]);
    const human = await cli(["status", "--warn-days", "100", "--due-days", "200"], { cwd });
    expect(human.code).toBe(0);
    expect(human.stdout).toContain("95 day(s) old");
    expect(human.stdout).not.toMatch(/\bDUE\b/); // a word: the temp dir's random suffix may hold "DUE"
  });

  it("a config without keys, or a bad flag, is a usage error with a fix", async () => {
    const empty = await cli(["encrypt"], { cwd: tempDir(), stdin: Buffer.from("x") });
    expect(empty.code).toBe(EXIT_CODES.USAGE);
    expect(empty.stderr).toContain("envelope keygen --init");
    const typo = await cli(["encrypt"], { cwd: tempDir(), env: { ENVELOPE_ENCRYPT_KEY: "x" } });
    expect(typo.code).toBe(EXIT_CODES.USAGE);
  });
});

describe("envelope decrypt: streams from before the stream-key flag", () => {
  const vectors = JSON.parse(
    readFileSync(
      join(import.meta.dirname, "../../core/test/vectors/stream/streaming.json"),
      "utf8",
    ),
  ) as { localAesKeyHex: string; positive: { name: string; plaintext: string; stream: string }[] };
  const three = vectors.positive.find((p) => p.name === "three-chunks")!;
  const env = {
    ENVELOPE_ENCRYPT_KEYS: "local-aes://env/VECTOR_KEY",
    VECTOR_KEY: vectors.localAesKeyHex,
  };

  it("refuses them (exit 3, ENVELOPE_WRONG_PURPOSE) unless --allow-legacy-stream", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "old.env"), Buffer.from(three.stream, "hex"));
    const args = ["decrypt", "old.env", "-o", "out.bin", "-c", "file=vector.bin,purpose=test"];
    const refused = await cli(args, { cwd, env });
    expect(refused.code).toBe(EXIT_CODES.DATA);
    expect(refused.stderr).toContain("ENVELOPE_WRONG_PURPOSE");
    expect(existsSync(join(cwd, "out.bin"))).toBe(false);
    const opened = await cli([...args, "--allow-legacy-stream"], { cwd, env });
    expect(opened.code, opened.stderr).toBe(0);
    expect(readFileSync(join(cwd, "out.bin")).toString("hex")).toBe(three.plaintext);
  });
});

describe("envelope status: key age thresholds", () => {
  it("compares the exact age, not whole days: a key one hour old is due at --due-days 0.02", async () => {
    const cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd })).code).toBe(0);
    const path = join(cwd, "envelope.config.json");
    const config = JSON.parse(readFileSync(path, "utf8"));
    config.rotation.keyCreated[config.encrypt] = new Date(Date.now() - 3_600_000).toISOString();
    writeFileSync(path, JSON.stringify(config));

    // 0.02 days = 28.8 minutes: a one-hour-old key is past it (whole days would say 0 < 0.02).
    const due = await cli(["--json", "status", "--check", "--due-days", "0.02"], { cwd });
    expect(due.code, due.stderr).toBe(EXIT_CODES.ROTATION_DUE);
    expect(due.json().keys[0]).toMatchObject({ state: "DUE", ageDays: 0 });
    // 0.05 days = 72 minutes: not yet due, but past a 0.01-day (14.4 min) warning.
    const warn = await cli(
      ["--json", "status", "--check", "--due-days", "0.05", "--warn-days", "0.01"],
      { cwd },
    );
    expect(warn.code, warn.stderr).toBe(EXIT_CODES.OK);
    expect(warn.json().keys[0]).toMatchObject({ state: "WARN" });
    const fresh = await cli(["--json", "status", "--check", "--due-days", "0.05"], { cwd });
    expect(fresh.json().keys[0]).toMatchObject({ state: "ok" });

    for (const bad of ["abc", "0", "-1", ""]) {
      const run = await cli(["status", "--due-days", bad], { cwd });
      expect(run.code, bad).toBe(EXIT_CODES.USAGE);
      expect(run.stderr).toContain("--due-days must be a positive number of days");
    }
  });
});

describe("envelope --json errors", () => {
  const documented = readFileSync(new URL("../../../docs/ERRORS.md", import.meta.url), "utf8");
  const codesInDocs = new Set([...documented.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]));

  it("an unexpected (non-Envelope) error is code INTERNAL, exit 1, and docs/ERRORS.md lists it", async () => {
    const cwd = tempDir();
    // A config module whose export throws a plain TypeError when read: not an EnvelopeError.
    writeFileSync(
      join(cwd, "envelope.config.mjs"),
      'export default new Proxy({}, { ownKeys() { throw new TypeError("config proxy exploded"); } });\n',
    );
    const run = await cli(["--json", "status"], { cwd });
    expect(run.code).toBe(EXIT_CODES.INTERNAL);
    expect(run.json()).toEqual({
      error: { name: "Error", code: "INTERNAL", message: "config proxy exploded" },
      exitCode: EXIT_CODES.INTERNAL,
    });
    expect(codesInDocs).toContain("INTERNAL");
    expect(documented).toMatch(/\| `INTERNAL` +\| `Error` +\| 1 +\|/);
  });

  it("a file error carries Node's code, exit 2, and docs/ERRORS.md lists it", async () => {
    const cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd })).code).toBe(0);
    const run = await cli(["--json", "inspect", "no-such-file.env"], { cwd });
    expect(run.code).toBe(EXIT_CODES.USAGE);
    expect(run.json().error).toMatchObject({ name: "FileError", code: "ENOENT" });
    for (const code of [
      "ENOENT",
      "EACCES",
      "EISDIR",
      "ENOTDIR",
      "EEXIST",
      "EPERM",
      "EROFS",
      "ENOSPC",
    ])
      expect(codesInDocs).toContain(code);
  });
});
