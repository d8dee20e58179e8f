import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect, dropStateTables, findUnfinishedJobs } from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { afterAll, describe, expect, it } from "vitest";
import { DATABASES } from "../../batch-rewrap/test/support.js";
import { cli, startBuiltRewrap, tempDir } from "./support.js";

const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ROWS = 300;

describe.each(DATABASES)("a rewrap quit with a second Ctrl-C on $name", ({ url }) => {
  const table = `dcc_${tag}`;
  const prefix = `dcc_st_${tag}`;
  afterAll(async () => {
    const db = await connect(url);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await dropStateTables(db, prefix);
    await db.close();
  });

  it("marks its job stopped on the way out: incomplete at once (not running for the lease), resumable to the end", async () => {
    const cwd = tempDir();
    const configPath = join(cwd, "envelope.config.json");
    const on = ["--db", url, "--table", table, "--column", "email", "--state-prefix", prefix];
    expect((await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd })).code).toBe(
      0,
    );
    const seeded = await cli(["seed-demo", "--db", url, "--table", table, "--rows", `${ROWS}`], {
      cwd,
    });
    expect(seeded.code, seeded.stderr).toBe(0);
    expect((await cli(["rotate", "--bits", "2048", "--name", "k2"], { cwd })).code).toBe(0);
    const oldKey = JSON.parse(readFileSync(configPath, "utf8")).decrypt[0] as string;
    const db = await connect(url);
    try {
      // The real command, slowed by its KMS rate limit so it is mid-job at the signals.
      const { child, exited, moved, output } = await startBuiltRewrap(db, prefix, configPath, [
        ...on,
        "--apply",
        "--batch-size",
        "10",
        "--rate-limit",
        "100",
      ]);
      child.kill("SIGINT");
      // The second only once the first is handled: two sent while a loaded machine has not
      // run the child yet arrive as one (a signal is pending at most once).
      while (child.exitCode === null && !output().includes("stopping at the next checkpoint"))
        await sleep(5);
      child.kill("SIGINT");
      expect((await exited).code, output()).toBe(130);
      expect(output()).toContain("quitting now");
      const left = await moved();
      expect(left).toBeLessThan(ROWS);

      // Incomplete at once, within the default lease (120 s) a killed job would wait out.
      const [job] = await findUnfinishedJobs(db, { stateTablePrefix: prefix, table });
      expect(job?.state).toBe("incomplete");
      const retire = await cli(["retire", oldKey, ...on], { cwd });
      expect(retire.code, retire.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
      expect(retire.stderr).toContain("is incomplete");

      // The resume the message names finishes the job; nothing was lost.
      const resumed = await cli(["rewrap", ...on, "--apply", "--resume"], { cwd });
      expect(resumed.code, resumed.stderr).toBe(0);
      const status = await cli(["--json", "status", "--check", ...on.slice(0, 6)], { cwd });
      expect(status.code, status.stderr).toBe(0);
      expect((await cli(["retire", oldKey, ...on], { cwd })).code).toBe(0);
    } finally {
      await db.close();
    }
  }, 120_000);
});
