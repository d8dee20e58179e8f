import { randomBytes } from "node:crypto";
import { connect, dropStateTables, type SqlAdapter } from "@envelope/batch-rewrap";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PG_URL as PG } from "../../batch-rewrap/test/support.js";
import { cli, tempDir } from "./support.js";

const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;

// Issue 12, item 6: `envelope rewrap --db` unwraps local-rsa values on worker threads.
describe("envelope rewrap --db runs local-rsa unwraps on worker threads (PostgreSQL)", () => {
  let db: SqlAdapter;
  let cwd: string;
  const table = `batch_rewrap_thr_${tag}`;
  const prefix = `batch_rewrap_thrst_${tag}`;
  const dbArgs = ["--db", PG, "--table", table, "--column", "email", "--state-prefix", prefix];
  // Node emits process "worker" once per worker thread created in this process.
  let started = 0;
  const onWorker = () => {
    started++;
  };
  beforeAll(async () => {
    db = await connect(PG);
    cwd = tempDir();
    process.on("worker", onWorker);
    expect((await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd })).code).toBe(
      0,
    );
    const seeded = await cli(["seed-demo", "--db", PG, "--table", table, "--rows", "40"], { cwd });
    expect(seeded.code, seeded.stderr).toBe(0);
  });
  afterAll(async () => {
    process.off("worker", onWorker);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await dropStateTables(db, prefix);
    await db.close();
  });

  it("by default on threads; ENVELOPE_LOCAL_RSA_THREADS=off keeps them on the main thread", async () => {
    expect((await cli(["rotate", "--bits", "2048", "--name", "k2"], { cwd })).code).toBe(0);
    started = 0;
    const off = await cli(["--json", "rewrap", ...dbArgs], {
      cwd,
      env: { ENVELOPE_LOCAL_RSA_THREADS: "off" },
    });
    expect(off.code, off.stderr).toBe(0);
    expect(started).toBe(0);
    const run = await cli(["--json", "rewrap", ...dbArgs, "--apply", "--workers", "2"], { cwd });
    expect(run.code, run.stderr).toBe(0);
    expect(run.json().run.rewrapped).toBe(40);
    expect(started).toBeGreaterThan(0);
  });
});
