import { join } from "node:path";
import { connect, type SqlAdapter } from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { beforeAll, describe, expect, it } from "vitest";
import { cli, tempDir } from "./support.js";

// PGlite (the embedded default): one process at a time, so the test opens it only between
// CLI runs.
async function withDb<T>(url: string, f: (db: SqlAdapter) => Promise<T>): Promise<T> {
  const db = await connect(url);
  try {
    return await f(db);
  } finally {
    await db.close();
  }
}

const stateTablesOf = (db: SqlAdapter) =>
  db
    .query(
      "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'envelope_rewrap%' ORDER BY table_name",
    )
    .then((r) => r.rows.map((row) => String(row.table_name)));

describe("rewrap --resume", () => {
  let cwd: string;
  let url: string;
  let args: string[];
  beforeAll(async () => {
    cwd = tempDir();
    url = `pglite://${join(cwd, "db")}`;
    args = ["rewrap", "--db", url, "--table", "users", "--column", "email"];
    expect((await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd })).code).toBe(
      0,
    );
    const seeded = await cli(["seed-demo", "--db", url, "--table", "users", "--rows", "120"], {
      cwd,
    });
    expect(seeded.code, seeded.stderr).toBe(0);
    expect((await cli(["rotate", "--bits", "2048", "--name", "k2"], { cwd })).code).toBe(0);
  });

  // Runs the built CLI a dozen times on PGlite (each start-up ~2 s): longer than the default.
  it("continues an unfinished job, refuses when there is none or it is complete, and says when it resumes implicitly", {
    timeout: 120_000,
  }, async () => {
    const before = await withDb(url, (db) =>
      db.query("SELECT id, email FROM users ORDER BY id").then((r) => r.rows),
    );

    // No job yet: a usage error before anything is written (not even the state tables).
    for (const extra of [["--apply"], [], ["--apply", "--job", "no-such-job"]]) {
      const none = await cli([...args, "--resume", ...extra], { cwd });
      expect(none.code, none.stderr).toBe(EXIT_CODES.USAGE);
      expect(none.stderr).toMatch(/^envelope: --resume: there is no rewrap job "[^"]+" in this/);
      expect(none.stderr).toContain("Nothing was written");
    }
    const json = await cli(["--json", ...args, "--resume", "--apply"], { cwd });
    expect(json.code).toBe(EXIT_CODES.USAGE);
    expect(json.json().error).toMatchObject({
      code: "ENVELOPE_BAD_INPUT",
      details: { field: "resume" },
    });
    await withDb(url, async (db) => {
      expect(await stateTablesOf(db)).toEqual([]);
      expect((await db.query("SELECT id, email FROM users ORDER BY id")).rows).toEqual(before);
    });

    // A value the job cannot do (past the preflight's sample): the job ends unfinished.
    const original = before.find((r) => r.id === 100)!.email;
    await withDb(url, (db) =>
      db.query("UPDATE users SET email = 'plain@example.com' WHERE id = 100"),
    );
    const first = await cli(["--json", ...args, "--apply"], { cwd });
    expect(first.code, first.stderr).toBe(EXIT_CODES.PARTIAL);
    expect(first.json()).toMatchObject({ complete: false, resumed: false });
    expect(first.json().sampleFailures.map((f: { pk: string }) => f.pk)).toEqual(["100"]);
    expect(first.json().previously).toBeUndefined();
    const jobId = first.json().jobId as string;

    // Without --resume, rerunning the same job: every range was done, so it goes over the
    // table again (the failure is retried on the way).
    const implicit = await cli(["--json", ...args, "--apply"], { cwd });
    expect(implicit.code).toBe(EXIT_CODES.PARTIAL);
    expect(implicit.json()).toMatchObject({
      jobId,
      resumed: false,
      reopened: true,
      run: { scanned: 120, failed: 1 },
      previously: { rowsDone: 120, rangesPending: 0, outstandingFailures: 1, complete: false },
    });

    // Fixed: --resume finds the job by the same derived id and finishes it.
    await withDb(url, (db) => db.query("UPDATE users SET email = $1 WHERE id = 100", [original]));
    // Every range was done: the run goes over the table again (which retries the failure).
    const resumed = await cli([...args, "--resume", "--apply"], { cwd });
    expect(resumed.code, resumed.stderr).toBe(EXIT_CODES.OK);
    expect(resumed.stderr).toContain(
      `envelope: job ${jobId} has every range done (120 rows; 1 failed value(s) to retry): this run goes over the table again and moves every value not yet on the target key.`,
    );
    expect(resumed.stdout).toContain(
      `job ${jobId} (every range was done before: went over the table again)`,
    );
    expect(resumed.stdout).toContain("rewrapped 1 ·");
    expect(resumed.stdout).toContain("Complete.");
    const status = await cli(
      ["--json", "status", "--db", url, "--table", "users", "--column", "email"],
      { cwd },
    );
    expect(Object.values(status.json().column.byKeyRef)).toEqual([120]);

    // Complete: --resume has nothing to resume (also in a dry run); without it, a no-op that says so.
    for (const extra of [["--apply"], []]) {
      const done = await cli([...args, "--resume", ...extra], { cwd });
      expect(done.code).toBe(EXIT_CODES.USAGE);
      expect(done.stderr).toContain(`--resume: job "${jobId}" is already complete (`);
    }
    // Without --resume, a finished job is gone over again: a value an application on the
    // old config wrote since is counted by the dry run and moved by the apply.
    const oldValue = before.find((r) => r.id === 7)!.email;
    await withDb(url, (db) => db.query("UPDATE users SET email = $1 WHERE id = 7", [oldValue]));
    const dry = await cli(args, { cwd });
    expect(dry.code, dry.stderr).toBe(EXIT_CODES.OK);
    expect(dry.stderr).toContain(
      `job ${jobId} is already complete (120 rows done): dry run (nothing is written); an --apply run goes over the table again and moves the values counted below.`,
    );
    expect(dry.stdout).toContain("Dry run: 1 value(s) would be rewrapped.");
    // --json tells the same story: this run neither resumed nor reopened, an apply would reopen.
    const dryJson = await cli(["--json", ...args], { cwd });
    expect(dryJson.code, dryJson.stderr).toBe(EXIT_CODES.OK);
    expect(dryJson.json()).toMatchObject({
      apply: false,
      wouldRewrite: 1,
      resumed: false,
      reopened: false,
      wouldResume: false,
      wouldReopen: true,
      previously: { complete: true },
    });
    const again = await cli([...args, "--apply"], { cwd });
    expect(again.code, again.stderr).toBe(EXIT_CODES.OK);
    expect(again.stderr).toContain(
      `job ${jobId} is already complete (120 rows done): this run goes over the table again and moves every value not yet on the target key.`,
    );
    expect(again.stdout).toContain("rewrapped 1 ·");
    expect(again.stdout).toContain(
      "Complete. The job had finished before: this run went over the table again and rewrapped 1 value(s) not yet on the target key.",
    );
    expect(again.stdout).not.toContain("already, before this run");
    const after = await cli(
      ["--json", "status", "--db", url, "--table", "users", "--column", "email"],
      { cwd },
    );
    expect(Object.values(after.json().column.byKeyRef)).toEqual([120]);
    const againJson = await cli(["--json", ...args, "--apply"], { cwd });
    expect(againJson.json()).toMatchObject({
      resumed: false,
      reopened: true,
      previously: { complete: true },
      run: { rewrapped: 0, kmsCalls: 0 },
    });
  });
});

describe("migrate --resume", () => {
  it("finds the migrate job by its derived id (legacy format included)", {
    timeout: 120_000,
  }, async () => {
    const cwd = tempDir();
    const url = `pglite://${join(cwd, "db")}`;
    expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd })).code).toBe(0);
    await withDb(url, async (db) => {
      await db.query("CREATE TABLE people (id INT PRIMARY KEY, ssn TEXT)");
      await db.query("INSERT INTO people VALUES (1, '123-45-0001'), (2, '123-45-0002')");
    });
    const args = [
      "migrate",
      "--db",
      url,
      "--table",
      "people",
      "--column",
      "ssn",
      "--from",
      "plaintext",
    ];
    const none = await cli([...args, "--resume", "--apply"], { cwd });
    expect(none.code).toBe(EXIT_CODES.USAGE);
    expect(none.stderr).toContain("--resume: there is no migrate job");
    await withDb(url, async (db) => expect(await stateTablesOf(db)).toEqual([]));

    const applied = await cli(["--json", ...args, "--apply"], { cwd });
    expect(applied.code, applied.stderr).toBe(EXIT_CODES.OK);
    expect(applied.json()).toMatchObject({ complete: true, run: { rewrapped: 2 } });
    const done = await cli([...args, "--resume", "--apply"], { cwd });
    expect(done.code).toBe(EXIT_CODES.USAGE);
    expect(done.stderr).toContain(`--resume: job "${applied.json().jobId}" is already complete`);
  });
});
