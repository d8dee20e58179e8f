import { randomBytes } from "node:crypto";
import { Envelope } from "@envelope/core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  hierarchicalProvider,
  postgresKeyStore,
  rotateMaster,
  verifyKeyStore,
} from "../src/index.js";
import { countingMaster, rotatingMasters } from "./helpers.js";

// A real PostgreSQL on localhost (see the repo README); PG* env vars override the defaults.
const pool = new pg.Pool({
  host: process.env.PGHOST ?? "127.0.0.1",
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? "postgres",
  database: process.env.PGDATABASE ?? "test",
  max: 4,
});
const table = `hierarchical_keys_${randomBytes(4).toString("hex")}`;
const context = { id: "1" };

beforeAll(async () => {
  await pool.query("SELECT 1");
});
afterAll(async () => {
  await pool.query(`DROP TABLE IF EXISTS ${table}`);
  await pool.end();
});

describe("postgresKeyStore", () => {
  it("stores intermediate keys, survives a new provider, rotates the master and verifies", async () => {
    const { old, next, newOnly } = rotatingMasters();
    const store = await postgresKeyStore({ client: pool, table });
    const writer = new Envelope({
      encrypt: hierarchicalProvider({ master: old, store, rotateAfter: { uses: 3 } }),
    });
    const sealed = await Promise.all(
      Array.from({ length: 7 }, (_, i) => writer.encrypt(`v${i}`, { context })),
    );
    expect(await store.list()).toHaveLength(3);
    const report = await rotateMaster(store, { from: old, to: next });
    expect(report).toMatchObject({ total: 3, rewrapped: 3, native: 3 });
    const reader = new Envelope({ encrypt: hierarchicalProvider({ master: newOnly, store }) });
    for (const [i, s] of sealed.entries())
      expect(await reader.decrypt(s, { context, as: "text" })).toBe(`v${i}`);
    expect((await verifyKeyStore(store, { masters: [newOnly] })).failures).toEqual([]);
  });

  it("concurrent first use from one provider inserts one row", async () => {
    const t = `${table}_b`;
    const store = await postgresKeyStore({ client: pool, table: t });
    try {
      const envelope = new Envelope({
        encrypt: hierarchicalProvider({ master: countingMaster().provider, store }),
      });
      await Promise.all(Array.from({ length: 100 }, () => envelope.encrypt("x", { context })));
      expect((await pool.query(`SELECT count(*)::int AS n FROM ${t}`)).rows[0].n).toBe(1);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${t}`);
    }
  });

  it("compare-and-swap: a stale version does not overwrite", async () => {
    const store = await postgresKeyStore({ client: pool, table });
    const [record] = await store.list();
    expect(await store.update(record!.id, record!.version, record!)).toBe(true);
    expect(await store.update(record!.id, record!.version, record!)).toBe(false);
    expect((await store.get(record!.id))!.version).toBe(record!.version + 1);
  });

  it("a tampered row is detected by verify and by decrypt (ENVELOPE_BAD_KEY)", async () => {
    const master = countingMaster();
    const t = `${table}_c`;
    const store = await postgresKeyStore({ client: pool, table: t });
    try {
      const writer = new Envelope({
        encrypt: hierarchicalProvider({ master: master.provider, store }),
      });
      const sealed = await writer.encrypt("x", { context });
      await pool.query(`UPDATE ${t} SET created_at = created_at + 1`);
      const report = await verifyKeyStore(store, { masters: [master.provider] });
      expect(report.failures.map((f) => f.code)).toEqual(["ENVELOPE_BAD_KEY"]);
      const reader = new Envelope({
        encrypt: hierarchicalProvider({ master: master.provider, store }),
      });
      await expect(reader.decrypt(sealed, { context })).rejects.toMatchObject({
        code: "ENVELOPE_BAD_KEY",
      });
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${t}`);
    }
  });

  it("rejects a table name that is not a plain identifier", async () => {
    await expect(
      postgresKeyStore({ client: pool, table: "keys; drop table x" }),
    ).rejects.toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
    });
  });

  it("a database failure is a typed error", async () => {
    const broken = { query: async () => Promise.reject(new Error("connection refused")) };
    await expect(postgresKeyStore({ client: broken, table })).rejects.toMatchObject({
      code: "ENVELOPE_KMS_UNAVAILABLE",
    });
  });
});
