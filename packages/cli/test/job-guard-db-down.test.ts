import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { connect } from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, tempDir } from "./support.js";

/** A server that takes connections and never answers: a hung database or a dead proxy's port. */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe("rotate and retire when the database is down, refuses or does not answer", () => {
  let cwd: string;
  let configPath: string;
  let oldKey: string;
  let silent: Awaited<ReturnType<typeof silentServer>>;
  beforeAll(async () => {
    silent = await silentServer();
    cwd = tempDir();
    configPath = join(cwd, "envelope.config.json");
    expect((await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd })).code).toBe(
      0,
    );
    // Rotated once without a database, so retire has an old key to (try to) remove.
    expect((await cli(["rotate", "--bits", "2048", "--name", "k2"], { cwd })).code).toBe(0);
    oldKey = JSON.parse(readFileSync(configPath, "utf8")).decrypt[0];
  });
  afterAll(async () => {
    await silent.close();
  });

  const cases = () => [
    ["PostgreSQL, nothing listening", "postgres://app:s3cret-pw@127.0.0.1:1/app", /ECONNREFUSED/],
    ["MariaDB, nothing listening", "mysql://app:s3cret-pw@127.0.0.1:1/app", /ECONNREFUSED/],
    [
      "PostgreSQL, no such host",
      "postgres://app:s3cret-pw@no-such-host.invalid/app",
      /ENOTFOUND|EAI_AGAIN/,
    ],
    [
      "MariaDB, no such host",
      "mysql://app:s3cret-pw@no-such-host.invalid/app",
      /ENOTFOUND|EAI_AGAIN/,
    ],
    [
      "PostgreSQL, a server that never answers",
      `postgres://app:s3cret-pw@127.0.0.1:${silent.port}/app`,
      /no answer within 1 s/,
    ],
    [
      "MariaDB, a server that never answers",
      `mysql://app:s3cret-pw@127.0.0.1:${silent.port}/app`,
      /no answer within 1 s|ETIMEDOUT/,
    ],
  ];

  it("each: exit 2 and ENVELOPE_BAD_CONFIG (field db) as rewrap gives, a message that says what to check, config and key folder unchanged, no password shown", async () => {
    const env = { ENVELOPE_DB_CONNECT_TIMEOUT: "1" };
    for (const [name, url, why] of cases() as [string, string, RegExp][]) {
      const config = readFileSync(configPath, "utf8");
      const keys = readdirSync(join(cwd, "keys")).sort();
      const on = ["--table", "users", "--column", "email"];
      const runs = {
        rewrap: await cli(["--json", "rewrap", "--db", url, ...on, "--apply"], { cwd, env }),
        rotate: await cli(["--json", "rotate", "--bits", "2048", "--db", url], { cwd, env }),
        "rotate (ENVELOPE_DB_URL)": await cli(["--json", "rotate", "--bits", "2048", ...on], {
          cwd,
          env: { ...env, ENVELOPE_DB_URL: url },
        }),
        "rotate --to": await cli(["--json", "rotate", "--to", oldKey, "--db", url], { cwd, env }),
        retire: await cli(["--json", "retire", oldKey, "--db", url, ...on], { cwd, env }),
        "retire (ENVELOPE_DB_URL)": await cli(["--json", "retire", oldKey, ...on], {
          cwd,
          env: { ...env, ENVELOPE_DB_URL: url },
        }),
      };
      for (const [command, run] of Object.entries(runs)) {
        const what = `${name}: ${command}: ${run.stdout}${run.stderr}`;
        // The same exit code and error code as rewrap for the same database.
        expect(run.code, what).toBe(EXIT_CODES.USAGE);
        const error = run.json().error;
        expect(error, what).toMatchObject({
          code: "ENVELOPE_BAD_CONFIG",
          details: { field: "db" },
        });
        expect(error.message, what).toMatch(/^Cannot connect to the database /);
        expect(error.message, what).toMatch(why);
        expect(error.message, what).toContain("Check --db / ENVELOPE_DB_URL");
        expect(error.message, what).toContain("Nothing was changed.");
        expect(run.stdout + run.stderr, what).not.toContain("s3cret-pw");
      }
      expect(readFileSync(configPath, "utf8"), name).toBe(config);
      expect(readdirSync(join(cwd, "keys")).sort(), name).toEqual(keys);
    }
    // The human form: one line on stderr with the code.
    const human = await cli(
      [
        "retire",
        oldKey,
        "--db",
        "postgres://127.0.0.1:1/app",
        "--table",
        "users",
        "--column",
        "email",
      ],
      { cwd },
    );
    expect(human.code).toBe(EXIT_CODES.USAGE);
    expect(human.stderr).toMatch(
      /^envelope: Cannot connect to the database .*\[ENVELOPE_BAD_CONFIG\]\n$/,
    );
    expect(existsSync(join(cwd, "keys"))).toBe(true);
  }, 60_000);

  it("a bad ENVELOPE_DB_CONNECT_TIMEOUT is a configuration error too, before any connection", async () => {
    const run = await cli(
      ["--json", "rotate", "--bits", "2048", "--db", "postgres://127.0.0.1:1/app"],
      {
        cwd,
        env: { ENVELOPE_DB_CONNECT_TIMEOUT: "soon" },
      },
    );
    expect(run.code).toBe(EXIT_CODES.USAGE);
    expect(run.json().error).toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
      details: { field: "ENVELOPE_DB_CONNECT_TIMEOUT" },
    });
  });

  it.each([
    ["PostgreSQL", process.env.BATCH_REWRAP_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"],
    ["MariaDB", process.env.BATCH_REWRAP_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test"],
  ])(
    "%s: state tables that cannot be read are a configuration error (exit 2) naming them, not a crash; nothing changed",
    async (_name, url) => {
      const prefix = `jg_down_st_${process.pid}_${randomBytes(2).toString("hex")}`;
      const db = await connect(url);
      try {
        // Tables of those names that are not state tables (another tool's, or hand-made).
        for (const suffix of ["jobs", "ranges", "checkpoints"])
          await db.query(`CREATE TABLE ${prefix}_${suffix} (n INT)`);
        // The table the job guard is asked about exists (a typo there is refused before).
        await db.query(`CREATE TABLE ${prefix}_users (id INT PRIMARY KEY, email TEXT)`);
        const config = readFileSync(configPath, "utf8");
        const keys = readdirSync(join(cwd, "keys")).sort();
        const on = [
          "--db",
          url,
          "--table",
          `${prefix}_users`,
          "--column",
          "email",
          "--state-prefix",
          prefix,
        ];
        for (const args of [
          ["--json", "retire", oldKey, ...on],
          ["--json", "rotate", "--bits", "2048", ...on],
        ]) {
          const run = await cli(args, { cwd });
          expect(run.code, run.stdout).toBe(EXIT_CODES.USAGE);
          expect(run.json().error).toMatchObject({
            code: "ENVELOPE_BAD_CONFIG",
            details: { field: "db", statePrefix: prefix },
          });
          expect(run.json().error.message).toContain(
            `could not read the rewrap job state tables ${prefix}_jobs`,
          );
          expect(run.json().error.message).toContain("Nothing was changed.");
        }
        expect(readFileSync(configPath, "utf8")).toBe(config);
        expect(readdirSync(join(cwd, "keys")).sort()).toEqual(keys);
      } finally {
        for (const suffix of ["jobs", "ranges", "checkpoints", "users"])
          await db.query(`DROP TABLE IF EXISTS ${prefix}_${suffix}`);
        await db.close();
      }
    },
  );
});
