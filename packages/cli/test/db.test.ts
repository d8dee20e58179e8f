import { spawn } from "node:child_process";
import { createCipheriv, randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, dropStateTables, type SqlAdapter } from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MYSQL_URL as MY, PG_URL as PG } from "../../batch-rewrap/test/support.js";
import { cli, tempDir } from "./support.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;

describe("envelope CLI against PostgreSQL", () => {
  let db: SqlAdapter;
  let cwd: string;
  const table = `batch_rewrap_cli_${tag}`;
  const prefix = `batch_rewrap_clist_${tag}`;
  const dbArgs = ["--db", PG, "--table", table, "--column", "email", "--state-prefix", prefix];
  beforeAll(async () => {
    db = await connect(PG);
    cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd })).code).toBe(
      0,
    );
    const seeded = await cli(["seed-demo", "--db", PG, "--table", table, "--rows", "400"], { cwd });
    expect(seeded.code, seeded.stderr).toBe(0);
  });
  afterAll(async () => {
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await dropStateTables(db, prefix);
    await db.close();
  });

  it("rotate a key end to end: status → rotate → dry run → --apply → status; Ctrl-C stops at a checkpoint and resumes", async () => {
    const before = await cli(
      ["--json", "status", "--db", PG, "--table", table, "--column", "email"],
      { cwd },
    );
    const k1 = before.json().keys[0].keyRef;
    expect(before.json().column.byKeyRef).toEqual({ [`local-rsa:${k1}`]: 400 });

    const rotated = await cli(["--json", "rotate", "--bits", "2048", "--name", "k2"], { cwd });
    const k2 = rotated.json().keyRef;

    const snapshot = (await db.query(`SELECT email FROM ${table} ORDER BY id`)).rows;
    const dry = await cli(["--json", "rewrap", ...dbArgs], { cwd });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.json()).toMatchObject({ apply: false, wouldRewrite: 400 });
    expect((await db.query(`SELECT email FROM ${table} ORDER BY id`)).rows).toEqual(snapshot);

    // A real process, interrupted with SIGINT once it has committed some batches.
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        CLI,
        "--config",
        join(cwd, "envelope.config.json"),
        "--json",
        "rewrap",
        ...dbArgs,
        "--apply",
        "--batch-size",
        "10",
        "--rate-limit",
        "200",
      ],
      {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((resolve) =>
      child.on("exit", (code) => resolve(code)),
    );
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      const done = await db
        .query(`SELECT COALESCE(SUM(rewrapped), 0) AS n FROM ${prefix}_checkpoints`)
        .catch(() => ({ rows: [{ n: 0 }] }));
      if (Number(done.rows[0]!.n) > 0) break;
      if (child.exitCode !== null) throw new Error(out);
    }
    child.kill("SIGINT");
    expect(await exited, out).toBe(EXIT_CODES.INTERRUPTED);
    const stopped = JSON.parse(out.slice(out.indexOf("{")));
    expect(stopped).toMatchObject({ stopped: true, complete: false });
    expect(stopped.run.rewrapped).toBeGreaterThan(0);
    expect(stopped.run.rewrapped).toBeLessThan(400);

    const resumed = await cli(["--json", "rewrap", ...dbArgs, "--apply", "--resume"], { cwd });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json()).toMatchObject({
      jobId: stopped.jobId,
      complete: true,
      total: { rewrapped: 400, skipped: 0 },
      resumed: true,
      previously: { rowsDone: stopped.run.scanned, outstandingFailures: 0, complete: false },
    });
    expect(resumed.json().previously.rangesPending).toBeGreaterThan(0);
    expect(resumed.json().run.rewrapped).toBe(400 - stopped.run.rewrapped);

    const after = await cli(
      ["--json", "status", "--db", PG, "--table", table, "--column", "email"],
      { cwd },
    );
    expect(after.json().column.byKeyRef).toEqual({ [`local-rsa:${k2}`]: 400 });
    const human = await cli(["rewrap", ...dbArgs], { cwd });
    expect(human.stdout).toContain("0 value(s) would be rewrapped");
  }, 60_000);

  it("bad input exits with a clear code before writing", async () => {
    const unknown = await cli(
      ["rewrap", "--db", PG, "--table", "batch_rewrap_nope", "--column", "email", "--apply"],
      { cwd },
    );
    expect(unknown.code).toBe(EXIT_CODES.USAGE);
    expect(unknown.stderr).toContain("not found");
    await db.query(`UPDATE ${table} SET email = 'plain@example.com' WHERE id = 2`);
    const plain = await cli(["rewrap", ...dbArgs, "--apply", "--job", "bad-input"], { cwd });
    expect(plain.code).toBe(EXIT_CODES.DATA);
    expect(plain.stderr).toMatch(/use migrate/i);
    const wrongContext = await cli(
      [
        "rewrap",
        ...dbArgs,
        "--apply",
        "--context",
        "table=other,column={column},id={pk}",
        "--job",
        "bad-ctx",
      ],
      { cwd },
    );
    expect(wrongContext.code).toBe(EXIT_CODES.DATA);
  });
});

describe("envelope migrate against MariaDB", () => {
  let db: SqlAdapter;
  const table = `batch_rewrap_climig_${tag}`;
  const prefix = `batch_rewrap_climigst_${tag}`;
  beforeAll(async () => {
    db = await connect(MY);
  });
  afterAll(async () => {
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await dropStateTables(db, prefix);
    await db.close();
  });

  it("migrates AES-256-CBC values with a key from the environment, never printing it", async () => {
    const key = randomBytes(32);
    await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, ssn VARCHAR(400))`);
    const rows = Array.from({ length: 150 }, (_, i) => i + 1);
    const seal = (text: string) => {
      const iv = randomBytes(16);
      const c = createCipheriv("aes-256-cbc", key, iv);
      return `${iv.toString("hex")}:${Buffer.concat([c.update(text), c.final()]).toString("hex")}`;
    };
    await db.query(
      `INSERT INTO ${table} VALUES ${rows.map(() => "(?, ?)").join(", ")}`,
      rows.flatMap((id) => [id, seal(`123-45-${String(id).padStart(4, "0")}`)]),
    );
    const cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd })).code).toBe(0);
    const env = { LEGACY_SSN_KEY: key.toString("base64") };
    const args = [
      "migrate",
      "--db",
      MY,
      "--table",
      table,
      "--column",
      "ssn",
      "--from",
      "aes-256-cbc",
      "--legacy-key-env",
      "LEGACY_SSN_KEY",
      "--state-prefix",
      prefix,
    ];
    // RSA-wrapped envelopes do not fit VARCHAR(400): refused before anything is written.
    const narrow = await cli([...args, "--apply"], { cwd, env });
    expect(narrow.code).toBe(EXIT_CODES.USAGE);
    expect(narrow.stderr).toContain("Widen it first");
    await db.query(`ALTER TABLE ${table} MODIFY ssn TEXT`);
    const dry = await cli(["--json", ...args], { cwd, env });
    expect(dry.json()).toMatchObject({ apply: false, wouldRewrite: 150 });
    const applied = await cli(["--json", ...args, "--apply"], { cwd, env });
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.json()).toMatchObject({ complete: true, run: { rewrapped: 150 } });
    expect(applied.stdout + applied.stderr).not.toContain(env.LEGACY_SSN_KEY);
    const value = (await db.query(`SELECT ssn FROM ${table} WHERE id = 7`)).rows[0]!.ssn as string;
    expect(value.startsWith("ev1:")).toBe(true);
    // The job is found in MariaDB's state tables by its derived id: nothing left to resume.
    const resume = await cli([...args, "--apply", "--resume"], { cwd, env });
    expect(resume.code).toBe(EXIT_CODES.USAGE);
    expect(resume.stderr).toContain(`--resume: job "${applied.json().jobId}" is already complete`);
    const missing = await cli([...args, "--apply"], { cwd, env: {} });
    expect(missing.code).toBe(EXIT_CODES.USAGE);
    expect(missing.stderr).toContain("LEGACY_SSN_KEY is not set");
  });
});

describe("a database the CLI cannot reach", () => {
  it.each([
    ["PostgreSQL, nothing listening", "postgres://app:s3cret-pw@127.0.0.1:1/app", /ECONNREFUSED/],
    [
      "PostgreSQL, no such database",
      PG.replace(/\/[^/]*$/, `/no_such_db_${tag}`),
      /does not exist/,
    ],
    ["MariaDB, nothing listening", "mysql://app:s3cret-pw@127.0.0.1:1/app", /ECONNREFUSED/],
    ["MariaDB, no such database", MY.replace(/\/[^/]*$/, `/no_such_db_${tag}`), /Unknown database/],
  ])("%s: a clear configuration error (exit 2), password never shown", async (_name, url, why) => {
    const cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd })).code).toBe(0);
    for (const args of [
      ["rewrap", "--db", url, "--table", "users", "--column", "email", "--apply"],
      ["status", "--db", url, "--table", "users", "--column", "email"],
    ]) {
      const run = await cli(args, { cwd });
      expect(run.code, run.stderr).toBe(EXIT_CODES.USAGE);
      expect(run.stderr).toMatch(/^envelope: Cannot connect to the database /);
      expect(run.stderr).toMatch(why);
      expect(run.stderr).not.toMatch(/bug/);
      expect(run.stderr).not.toContain("s3cret-pw");
    }
    const json = await cli(["--json", "rewrap", "--db", url, "--table", "t", "--column", "c"], {
      cwd,
    });
    expect(json.code).toBe(EXIT_CODES.USAGE);
    expect(json.json().error).toMatchObject({ code: "ENVELOPE_BAD_CONFIG" });
    expect(json.stdout).not.toContain("s3cret-pw");
  });
});
