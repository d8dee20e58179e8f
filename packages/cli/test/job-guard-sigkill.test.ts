import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connect, dropStateTables, findUnfinishedJobs } from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { afterAll, describe, expect, it } from "vitest";
import { DATABASES } from "../../batch-rewrap/test/support.js";
import { cli, startBuiltRewrap, tempDir } from "./support.js";

const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ROWS = 400;

describe.each(DATABASES)("a rewrap process SIGKILLed mid-job on $name", ({ url }) => {
  const table = `jg_kill_${tag}`;
  const prefix = `jg_kill_st_${tag}`;
  afterAll(async () => {
    const db = await connect(url);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await dropStateTables(db, prefix);
    await db.close();
  });

  it("retire: running (10) within --stale-after, then incomplete (10), --force passes the guard to the count (8); resumed, the job finishes and retire goes through", async () => {
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
    const rotated = readFileSync(configPath, "utf8");
    const oldKey = JSON.parse(rotated).decrypt[0] as string;

    const db = await connect(url);
    try {
      // The real command, slowed by its KMS rate limit so it is still mid-job when killed.
      const { child, exited, moved, output } = await startBuiltRewrap(db, prefix, configPath, [
        ...on,
        "--apply",
        "--batch-size",
        "10",
        "--rate-limit",
        "100",
      ]);
      child.kill("SIGKILL");
      expect((await exited).signal, output()).toBe("SIGKILL");
      const atKill = await moved();
      expect(atKill).toBeGreaterThan(0);
      expect(atKill).toBeLessThan(ROWS);
      const killedAt = Date.now();

      // Within --stale-after (default 120 s) the killed job still counts as running.
      const running = await cli(["retire", oldKey, ...on], { cwd });
      expect(running.code, running.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
      expect(running.stderr).toContain("is running");
      expect(running.stderr).toContain("[ENVELOPE_JOB_IN_PROGRESS]");
      const runningForced = await cli(["retire", oldKey, ...on, "--force"], { cwd });
      expect(runningForced.code, runningForced.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
      const keyFiles = readdirSync(join(cwd, "keys")).sort();
      const rotate = await cli(["rotate", "--bits", "2048", ...on], { cwd });
      expect(rotate.code, rotate.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
      expect(readdirSync(join(cwd, "keys")).sort()).toEqual(keyFiles);
      expect(readFileSync(configPath, "utf8")).toBe(rotated);

      // Once no progress has been recorded for --stale-after, it is incomplete.
      await sleep(Math.max(0, killedAt + 2_200 - Date.now()));
      const incomplete = await cli(["retire", oldKey, ...on, "--stale-after", "2"], { cwd });
      expect(incomplete.code, incomplete.stderr).toBe(EXIT_CODES.JOB_IN_PROGRESS);
      expect(incomplete.stderr).toContain("is incomplete");
      expect(incomplete.stderr).toContain("--apply --resume --job ");
      // --force passes the guard; the count then refuses, values are still under the old key.
      const forced = await cli(["retire", oldKey, ...on, "--stale-after", "2", "--force"], {
        cwd,
      });
      expect(forced.code, forced.stderr).toBe(EXIT_CODES.KEY_IN_USE);
      expect(forced.stderr).toContain("WARNING: --force");
      expect(readFileSync(configPath, "utf8")).toBe(rotated);

      // Resumed to the end: nothing unfinished, every value moved, retire goes through.
      const resumed = await cli(["--json", "rewrap", ...on, "--apply", "--resume"], { cwd });
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.json()).toMatchObject({ complete: true, resumed: true });
      expect(await findUnfinishedJobs(db, { stateTablePrefix: prefix })).toEqual([]);
      const retired = await cli(["--json", "retire", oldKey, ...on], { cwd });
      expect(retired.code, retired.stderr).toBe(0);
      expect(retired.json()).toMatchObject({ retired: true, valuesUnderKey: 0, scanned: ROWS });
      expect(JSON.parse(readFileSync(configPath, "utf8")).decrypt).not.toContain(oldKey);
    } finally {
      await db.close();
    }
  }, 60_000);
});
