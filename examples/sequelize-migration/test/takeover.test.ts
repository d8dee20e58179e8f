// The takeover, end to end, on the real PostgreSQL and MariaDB: the hand-rolled app switched
// to Envelope under live traffic, `envelope migrate --apply` (the built CLI), the legacy key
// removed, and the dump checked. Needs `pnpm build` first (the CLI runs from its dist/).
import { randomBytes } from "node:crypto";
import { Sequelize } from "sequelize";
import { afterAll, describe, expect, it } from "vitest";
import { runTakeover } from "../src/takeover.js";

const DATABASES = [
  ["PostgreSQL", process.env.TAKEOVER_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"],
  ["MariaDB", process.env.TAKEOVER_TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test"],
] as const;

describe.each(DATABASES)("sequelize takeover on %s", (_name, databaseUrl) => {
  const table = `takeover_users_${randomBytes(4).toString("hex")}`;

  afterAll(async () => {
    const sequelize = new Sequelize(databaseUrl, { logging: false });
    await sequelize.query(`DROP TABLE IF EXISTS ${table}`);
    await sequelize.close();
  });

  it("switches, migrates under traffic, drops the legacy key; no plaintext left", async () => {
    const lines: string[] = [];
    const report = await runTakeover({
      databaseUrl,
      table,
      legacyKey: randomBytes(32).toString("hex"),
      masterKey: randomBytes(32).toString("hex"),
      seedUsers: 120,
      stageMs: 700,
      log: (line) => lines.push(line),
    });
    // The transitional stage read legacy values, each audited and counted.
    expect(report.legacyReads["aes-256-gcm-json"]).toBeGreaterThan(0);
    // The CLI converted legacy values and failed none; the dry run after found none left.
    const run = report.migrate.run as { rewrapped: number; failed: number };
    expect(run.rewrapped).toBeGreaterThan(0);
    expect(run.failed).toBe(0);
    expect(report.leftAfter.wouldRewrite).toBe(0);
    expect(Object.keys(report.leftAfter.byKeyRef as object)).not.toContain("legacy");
    // Traffic ran through every stage, and every read returned what was last written.
    expect(report.traffic.reads).toBeGreaterThan(10);
    expect(report.traffic.writes).toBeGreaterThan(10);
    expect(report.traffic.mismatches).toBe(0);
    expect(report.traffic.errors).toEqual({});
    // Every value is an envelope and reads back without the legacy key.
    expect(report.final.rows).toBeGreaterThanOrEqual(120);
    expect(report.final.envelopes).toBe(report.final.rows * 2);
    expect(report.final.readBack).toBe(report.final.rows);
    // The dump holds the envelopes, and neither plaintext nor legacy ciphertext.
    expect(report.dump.envelopes).toBe(report.final.envelopes);
    expect(report.dump.plaintextFound).toBe(0);
    expect(report.dump.legacyValuesFound).toBe(0);
    expect(lines.join("\n")).not.toMatch(/@example\.com|9\d\d-\d\d-\d{4}/);
  }, 180_000);
});
