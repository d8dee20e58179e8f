import { randomBytes } from "node:crypto";
import { migrateTable, postgresAdapter } from "@envelope/batch-rewrap";
import {
  looksLikePgcrypto,
  mixedDecoder,
  pgcryptoDecoder,
  plaintextDecoder,
} from "@envelope/legacy";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  dropAll,
  keyPair,
  PG_URL,
  plaintextOf,
  uniqueName,
  verifyAll,
} from "../../batch-rewrap/test/support.js";
import { asyncCodeOf } from "./support.js";

// Test data made by the local PostgreSQL's pgcrypto, as the legacy application did.
describe("pgcrypto pgp_sym_encrypt values on PostgreSQL", () => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
  const passphrase = `pass-${randomBytes(8).toString("hex")}`;
  const seen: { text: string; values: unknown[] }[] = [];
  // Records what the decoder sends, to prove the passphrase is only ever a parameter.
  const recording = {
    query: (text: string, values: unknown[]) => {
      seen.push({ text, values });
      return pool.query(text, values);
    },
  };
  const tables: string[] = [];

  beforeAll(async () => {
    await pool.query("CREATE EXTENSION IF NOT EXISTS pgcrypto");
  });
  afterAll(async () => {
    const db = await postgresAdapter(pool);
    for (const t of tables) await dropAll(db, t, `${t}_st`);
    await pool.end();
  });

  const encrypted = async (text: string) =>
    (
      await pool.query("SELECT pgp_sym_encrypt($1, $2) AS b, armor(pgp_sym_encrypt($1, $2)) AS a", [
        text,
        passphrase,
      ])
    ).rows[0] as { b: Buffer; a: string };

  it("decrypts bytea and armored values; the passphrase is only a bound parameter", async () => {
    const from = pgcryptoDecoder({ pool: recording, passphrase });
    const { a, b } = await encrypted("ünïcödé@example.com");
    expect(looksLikePgcrypto(b)).toBe(true);
    expect(looksLikePgcrypto(a)).toBe(true);
    expect((await from.decode(b)).toString()).toBe("ünïcödé@example.com");
    expect((await from.decode(a)).toString()).toBe("ünïcödé@example.com");
    // One catalog lookup of pgcrypto's schema (no parameters), then one query per value.
    expect(seen.length).toBe(3);
    expect(seen[0]!.values).toEqual([]);
    for (const q of seen.slice(1)) {
      expect(q.text).not.toContain(passphrase);
      expect(q.values).toContain(passphrase);
    }
    expect(JSON.stringify(from)).not.toContain(passphrase);
  });

  it("a wrong passphrase, a damaged value and a foreign value are typed errors", async () => {
    const { a, b } = await encrypted("x");
    const wrong = pgcryptoDecoder({ pool, passphrase: "not-it" });
    expect(await asyncCodeOf(() => wrong.decode(b))).toBe("ENVELOPE_DECRYPT_FAILED");
    const damaged = Buffer.from(b);
    damaged[damaged.length - 3]! ^= 0x40;
    const right = pgcryptoDecoder({ pool, passphrase });
    expect(await asyncCodeOf(() => right.decode(damaged))).toBe("ENVELOPE_DECRYPT_FAILED");
    // The body's first 8 characters, always there (a run of 8 letters was missing from about
    // 1 armored value in 100, which then went through unchanged and decrypted).
    const mangled = a.replace(/\n\n[A-Za-z0-9+/]{8}/, "\n\n!!!!!!!!");
    expect(mangled).not.toBe(a);
    expect(await asyncCodeOf(() => right.decode(mangled))).toMatch(
      /ENVELOPE_BAD_FORMAT|ENVELOPE_DECRYPT_FAILED/,
    );
    expect(await asyncCodeOf(() => right.decode("plain text"))).toBe("ENVELOPE_BAD_FORMAT");
  });

  it("migrates a bytea column and an armored text column (mixed with plaintext) into envelopes", async () => {
    const db = await postgresAdapter(pool);
    const table = uniqueName("pgp");
    tables.push(table);
    await pool.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, email BYTEA, note TEXT)`);
    await pool.query(
      `INSERT INTO ${table} (id, email, note)
       SELECT i, pgp_sym_encrypt('user' || i || '@example.com', $1),
              CASE WHEN i % 3 = 0 THEN 'user' || i || '@example.com'
                   ELSE armor(pgp_sym_encrypt('user' || i || '@example.com', $1)) END
       FROM generate_series(1, 90) AS i`,
      [passphrase],
    );
    const to = keyPair().provider;
    const from = pgcryptoDecoder({ pool, passphrase });
    const base = { db, table, primaryKey: "id", to, stateTablePrefix: `${table}_st`, apply: true };
    const bytea = await migrateTable({ ...base, columns: ["email"], from });
    expect(bytea).toMatchObject({ complete: true, failures: {} });
    expect(await verifyAll(db, table, to)).toEqual({ rows: 90, wrong: [] });

    const text = await migrateTable({
      ...base,
      columns: ["note"],
      from: mixedDecoder({ decoders: [from], plaintext: true }),
    });
    expect(text).toMatchObject({ complete: true, failures: {} });
    expect(text.run).toMatchObject({ rewrapped: 90 });
    const { rows } = await pool.query(`SELECT id, note FROM ${table} ORDER BY id`);
    const { Envelope } = await import("@envelope/core");
    const envelope = new Envelope({ encrypt: to });
    for (const row of rows) {
      const id = String(row.id);
      expect(
        await envelope.decrypt(row.note, { context: { table, column: "note", id }, as: "text" }),
      ).toBe(plaintextOf(id));
    }
    expect(plaintextDecoder().format).toBe("plaintext");
  });
});
