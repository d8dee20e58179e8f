import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { JobReport, SqlAdapter } from "@envelope/batch-rewrap";
import { localAesProvider } from "@envelope/core";
import { afterAll, describe, expect, it } from "vitest";
import {
  DATABASES,
  dropAll,
  keyPair,
  openDb,
  seedTable,
  uniqueName,
  verifyAll,
} from "./support.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CHILD = fileURLToPath(new URL("./fixtures/rewrap-child.ts", import.meta.url));
const ROWS = 3000;
const KILLS = 10;

function start(env: Record<string, string>): {
  child: ChildProcess;
  firstBatch: Promise<boolean>;
  exit: Promise<number | null>;
  output: () => string;
} {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const firstBatch = new Promise<boolean>((resolve) => {
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("batch ")) resolve(true);
    });
    child.on("exit", () => resolve(false));
  });
  child.stderr!.on("data", (d) => {
    err += d;
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, firstBatch, exit, output: () => out + err };
}

describe.each(DATABASES)("crash safety on $name", ({ url }) => {
  let db: SqlAdapter;
  const table = uniqueName("crash");
  const prefix = `${table}_st`;
  afterAll(async () => {
    if (db) {
      await dropAll(db, table, prefix);
      await db.close();
    }
  });

  it(`survives ${KILLS} SIGKILLs at random points; every row ends decryptable on the target key, each rewrapped once`, async () => {
    db = await openDb(url);
    const oldKey = keyPair();
    const newKey = keyPair();
    await seedTable(db, table, ROWS, oldKey.provider);
    const env = {
      DB_URL: url,
      TABLE: table,
      PREFIX: prefix,
      OLD_KEY: oldKey.hex,
      NEW_KEY: newKey.hex,
    };

    let kills = 0;
    while (kills < KILLS) {
      // Slow enough that ten runs, each killed within 0.4 s of its first batch, cannot
      // finish the 3,000 rows even when a loaded machine delays the kill (at 1,200/s a
      // run under three parallel test workers once got there on the ninth).
      const run = start({ ...env, RATE: "500" });
      const working = await run.firstBatch;
      expect(working, run.output()).toBe(true);
      await new Promise((r) => setTimeout(r, Math.random() * 400));
      if (run.child.exitCode !== null) break; // finished before we could kill it
      run.child.kill("SIGKILL");
      await run.exit;
      kills++;
    }
    expect(kills).toBe(KILLS);
    const done = (await db.query(`SELECT SUM(rewrapped) AS n FROM ${prefix}_checkpoints`)).rows[0]!
      .n;
    expect(Number(done)).toBeGreaterThan(0);
    expect(Number(done)).toBeLessThan(ROWS);

    const last = start(env);
    expect(await last.exit, last.output()).toBe(0);
    const report = JSON.parse(last.output().split("REPORT ")[1]!.split("\n")[0]!) as JobReport;
    expect(report.complete).toBe(true);
    // Batches commit atomically with their checkpoint: a killed batch is rolled back whole,
    // so across all runs each row was rewrapped exactly once and none was skipped.
    expect(report.total).toMatchObject({ rewrapped: ROWS, skipped: 0, failed: 0 });
    expect(await verifyAll(db, table, localAesProvider({ keys: newKey.hex }))).toEqual({
      rows: ROWS,
      wrong: [],
    });
    // 24 s alone, 43-72 s in the whole suite on the 2-core machine (eleven children, each
    // starting tsx): 90 s left too little room for a loaded CI run.
  }, 180_000);
});
