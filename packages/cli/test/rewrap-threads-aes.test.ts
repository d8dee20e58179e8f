import { randomBytes } from "node:crypto";
import { connect, dropStateTables, type SqlAdapter } from "@envelope/batch-rewrap";
import { Envelope, localAesProvider } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PG_URL as PG } from "../../batch-rewrap/test/support.js";
import { cli, tempDir } from "./support.js";

const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;

// Issue 12, item 6: `envelope rewrap --db` with local-aes keys rewraps on worker threads.
describe("envelope rewrap --db --threads with local-aes keys (PostgreSQL)", () => {
  let db: SqlAdapter;
  let cwd: string;
  const table = `thr_cli_${tag}`;
  const prefix = `thr_cli_st_${tag}`;
  const dbArgs = ["--db", PG, "--table", table, "--column", "email", "--state-prefix", prefix];
  const oldHex = randomBytes(32).toString("hex");
  const newHex = randomBytes(32).toString("hex");
  const env = {
    THR_OLD: oldHex,
    THR_NEW: newHex,
    ENVELOPE_ENCRYPT_KEYS: "local-aes://env/THR_NEW",
    ENVELOPE_DECRYPT_KEYS: "local-aes://env/THR_OLD",
  };
  // Node emits process "worker" once per worker thread created in this process.
  let started = 0;
  const onWorker = () => {
    started++;
  };

  /** 60 rows sealed under `hex`, with the CLI's default context. */
  async function seed(hex: string) {
    const sealer = new Envelope({ encrypt: localAesProvider({ keys: hex }), cache: false });
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.query(`CREATE TABLE ${table} (id BIGINT PRIMARY KEY, email BYTEA)`);
    for (let id = 1; id <= 60; id++) {
      const value = await sealer.encrypt(`user${id}@example.com`, {
        context: { table, column: "email", id: String(id) },
        output: "binary",
      });
      await db.query(`INSERT INTO ${table} (id, email) VALUES (?, ?)`, [id, value]);
    }
    await dropStateTables(db, prefix);
  }

  /** Every row opens under the new key alone, with its context. */
  async function allUnderNewKey(): Promise<boolean> {
    const reader = new Envelope({ encrypt: localAesProvider({ keys: newHex }), cache: false });
    const { rows } = await db.query(`SELECT id, email FROM ${table} ORDER BY id`);
    for (const row of rows) {
      const text = await reader.decrypt(row.email as Buffer, {
        context: { table, column: "email", id: String(row.id) },
        as: "text",
      });
      if (text !== `user${row.id}@example.com`) return false;
    }
    return rows.length === 60;
  }

  beforeAll(async () => {
    db = await connect(PG);
    cwd = tempDir();
    process.on("worker", onWorker);
  });
  afterAll(async () => {
    process.off("worker", onWorker);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await dropStateTables(db, prefix);
    await db.close();
  });

  it("by default on threads; --threads off keeps the rewraps on the main thread", async () => {
    await seed(oldHex);
    started = 0;
    const run = await cli(["--json", "rewrap", ...dbArgs, "--apply"], { cwd, env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.json().run.rewrapped).toBe(60);
    expect(started).toBeGreaterThan(0);
    expect(await allUnderNewKey()).toBe(true);

    await seed(oldHex);
    started = 0;
    const off = await cli(["--json", "rewrap", ...dbArgs, "--apply", "--threads", "off"], {
      cwd,
      env,
    });
    expect(off.code, off.stderr).toBe(0);
    expect(off.json().run.rewrapped).toBe(60);
    expect(started).toBe(0);
    expect(await allUnderNewKey()).toBe(true);
  });

  it("--rate-limit turns the default off; asked for with it, or set to nonsense, it is a usage error", async () => {
    await seed(oldHex);
    started = 0;
    const paced = await cli(["--json", "rewrap", ...dbArgs, "--apply", "--rate-limit", "100000"], {
      cwd,
      env,
    });
    expect(paced.code, paced.stderr).toBe(0);
    expect(started).toBe(0);

    const both = await cli(
      ["--json", "rewrap", ...dbArgs, "--apply", "--rate-limit", "100", "--threads", "2"],
      { cwd, env },
    );
    expect(both.code).toBe(2);
    expect(both.json().error.code).toBe("ENVELOPE_BAD_CONFIG");
    const nonsense = await cli(["--json", "rewrap", ...dbArgs, "--threads", "many"], { cwd, env });
    expect(nonsense.code).toBe(2);
    expect(nonsense.json().error.code).toBe("ENVELOPE_BAD_INPUT");
    const help = await cli(["rewrap", "--help"], { cwd, env });
    expect(help.stdout).toContain("--threads <n>");
  });
});
