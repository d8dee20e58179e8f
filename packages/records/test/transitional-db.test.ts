// Transitional read on the real PostgreSQL and MariaDB: a column holding envelopes, hand-rolled
// GCM JSON and plaintext at once reads through one cipher; updates leave only envelopes.
import { randomBytes, randomUUID } from "node:crypto";
import { legacyDecoder } from "@envelope/batch-rewrap";
import { localAesProvider } from "@envelope/core";
import mysql from "mysql2/promise";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRecordCipher,
  isSealedValue,
  type LegacyReadEvent,
  transitionalRead,
} from "../src/index.js";
import { handRolledGcmJson } from "./legacy-values.js";
import { envelopeWith, MYSQL_URL, PG_URL, usePgSchema } from "./support.js";

usePgSchema();

/** The little SQL each database needs: `?` placeholders are rewritten for PostgreSQL. */
interface Db {
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

async function postgres(): Promise<Db> {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
  return {
    async query(sql, params = []) {
      let n = 0;
      const { rows } = await pool.query(
        sql.replace(/\?/g, () => `$${++n}`),
        params,
      );
      return rows;
    },
    close: () => pool.end(),
  };
}

async function mariadb(): Promise<Db> {
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2 });
  return {
    async query(sql, params = []) {
      const [rows] = await pool.query(sql, params);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    },
    close: () => pool.end(),
  };
}

describe.each([
  ["PostgreSQL", postgres],
  ["MariaDB", mariadb],
])("transitional read on %s", (_name, connect) => {
  const table = `records_transitional_${randomBytes(4).toString("hex")}`;
  const legacyKey = randomBytes(32);
  const envelope = envelopeWith(localAesProvider({ keys: randomBytes(32) }));
  const events: LegacyReadEvent[] = [];
  const reads = transitionalRead({
    decoders: [legacyDecoder({ format: "aes-256-gcm-json", key: { bytes: legacyKey } })],
    allowPlaintext: true,
    onLegacyRead: (e) => events.push(e),
  });
  const schema = { table, encrypted: ["email", "ssn"] } as const;
  const people = createRecordCipher(envelope, schema, { transitional: reads });
  const strict = createRecordCipher(envelope, schema);
  const people_ = [
    { id: randomUUID(), email: "ann@example.com", ssn: "078-05-1120" },
    { id: randomUUID(), email: "bob@example.com", ssn: "219-09-9999" },
    { id: randomUUID(), email: "cyd@example.com", ssn: "457-55-5462" },
  ];
  let db: Db;

  beforeAll(async () => {
    db = await connect();
    await db.query(`CREATE TABLE ${table} (id VARCHAR(36) PRIMARY KEY, email TEXT, ssn TEXT)`);
    const [ann, bob, cyd] = people_ as [
      (typeof people_)[0],
      (typeof people_)[0],
      (typeof people_)[0],
    ];
    // Ann: sealed by the new app. Bob: hand-rolled GCM JSON. Cyd: GCM email, plaintext ssn.
    const sealed = await people.seal(ann);
    const rows = [
      [ann.id, sealed.email, sealed.ssn],
      [bob.id, handRolledGcmJson(legacyKey, bob.email), handRolledGcmJson(legacyKey, bob.ssn)],
      [cyd.id, handRolledGcmJson(legacyKey, cyd.email), cyd.ssn],
    ];
    for (const r of rows)
      await db.query(`INSERT INTO ${table} (id, email, ssn) VALUES (?, ?, ?)`, r);
  });

  afterAll(async () => {
    await db?.query(`DROP TABLE IF EXISTS ${table}`);
    await db?.close();
  });

  it("reads every row of the mixed column, one audit event per legacy value", async () => {
    const rows = await db.query(`SELECT id, email, ssn FROM ${table}`);
    const opened = await Promise.all(rows.map((r) => people.open(r)));
    expect(opened.sort((a, b) => String(a.email).localeCompare(String(b.email)))).toEqual(people_);
    expect(events.map((e) => e.format).sort()).toEqual([
      "aes-256-gcm-json",
      "aes-256-gcm-json",
      "aes-256-gcm-json",
      "plaintext",
    ]);
    expect(events.every((e) => e.table === table && people_.some((p) => p.id === e.id))).toBe(true);
    // The strict cipher (no transitional read) refuses the legacy rows.
    const bob = rows.find((r) => r.id === people_[1]!.id)!;
    await expect(strict.open(bob)).rejects.toMatchObject({ code: "ENVELOPE_BAD_FORMAT" });
  });

  it("updates write envelopes only; afterwards no plaintext or legacy value is left", async () => {
    for (const row of await db.query(`SELECT id, email, ssn FROM ${table}`)) {
      const changes = await people.update(row, {
        email: String(await people.openField(row, "email")),
      });
      await db.query(
        `UPDATE ${table} SET email = ?, ssn = ? WHERE id = ? AND email = ? AND ssn = ?`,
        [changes.email, changes.ssn ?? row.ssn, row.id, row.email, row.ssn],
      );
    }
    const rows = await db.query(`SELECT id, email, ssn FROM ${table}`);
    for (const r of rows) {
      expect(isSealedValue(String(r.email)) && isSealedValue(String(r.ssn))).toBe(true);
      for (const p of people_) {
        expect(JSON.stringify(r)).not.toContain(p.ssn);
        expect(JSON.stringify(r)).not.toContain(p.email);
      }
    }
    const opened = await Promise.all(rows.map((r) => strict.open(r)));
    expect(opened.map((o) => o.ssn).sort()).toEqual(people_.map((p) => p.ssn).sort());
  });
});
