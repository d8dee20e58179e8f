import { createCipheriv, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import {
  legacyDecoder,
  migrateTable,
  pgliteAdapter,
  rewrapTable,
  type SqlAdapter,
} from "@envelope/batch-rewrap";
import { Envelope } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  contextOf,
  DATABASES,
  dropAll,
  keyPair,
  openDb,
  plaintextOf,
  uniqueName,
  verifyAll,
} from "./support.js";

const legacyKey = randomBytes(32);

function gcmJson(text: string): string {
  const iv = randomBytes(16);
  const cipher = createCipheriv("aes-256-gcm", legacyKey, iv);
  const encrypted = Buffer.concat([cipher.update(text, "utf8"), cipher.final()]);
  return JSON.stringify({
    iv: iv.toString("hex"),
    authTag: cipher.getAuthTag().toString("hex"),
    encrypted: encrypted.toString("hex"),
  });
}

function cbc(text: string, encoding: "hex" | "base64"): string {
  const iv = randomBytes(16);
  const cipher = createCipheriv("aes-256-cbc", legacyKey, iv);
  return `${iv.toString(encoding)}:${Buffer.concat([cipher.update(text, "utf8"), cipher.final()]).toString(encoding)}`;
}

const FORMATS = [
  ["plaintext", (t: string) => t],
  ["aes-256-gcm-json", gcmJson],
  ["aes-256-cbc", (t: string, i: number) => cbc(t, i % 2 ? "hex" : "base64")],
] as const;

describe.each(DATABASES)("migrateTable on $name", ({ url }) => {
  let db: SqlAdapter;
  const cleanup: [string, string][] = [];
  beforeAll(async () => {
    db = await openDb(url);
  });
  afterAll(async () => {
    for (const [table, prefix] of cleanup) await dropAll(db, table, prefix);
    await db.close();
  });

  it.each(FORMATS)("turns %s values into envelopes in place", async (format, legacy) => {
    const table = uniqueName("mig");
    const prefix = `${table}_st`;
    cleanup.push([table, prefix]);
    const key = keyPair().provider;
    await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, email TEXT)`);
    const ids = Array.from({ length: 200 }, (_, i) => i + 1);
    await db.query(
      `INSERT INTO ${table} (id, email) VALUES ${ids.map(() => "(?, ?)").join(", ")}`,
      ids.flatMap((id) => [id, legacy(plaintextOf(id), id)]),
    );
    // One row was already migrated by the application: it must be skipped, not re-sealed.
    const already = await new Envelope({ encrypt: key }).encrypt(plaintextOf(200), {
      context: contextOf(table, "email", 200),
      output: "text",
    });
    await db.query(`UPDATE ${table} SET email = ? WHERE id = 200`, [already]);

    const keyFile = join(mkdtempSync(join(tmpdir(), "batch-rewrap-")), "legacy.key");
    writeFileSync(keyFile, legacyKey.toString("base64"), { mode: 0o600 });
    const from = legacyDecoder({ format, key: { file: keyFile } });
    expect(JSON.stringify(from)).toBe(JSON.stringify({ format }));
    const options = {
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: key,
      from,
      stateTablePrefix: prefix,
      batchSize: 64,
    };
    const dry = await migrateTable(options);
    expect(dry).toMatchObject({ apply: false, wouldRewrite: 199 });
    const report = await migrateTable({ ...options, apply: true });
    expect(report).toMatchObject({ complete: true, failures: {} });
    expect(report.run).toMatchObject({ rewrapped: 199, skipped: 1 });
    expect(await verifyAll(db, table, key)).toEqual({ rows: 200, wrong: [] });
  });

  it("a wrong legacy key stops before anything is written", async () => {
    const table = uniqueName("migkey");
    const prefix = `${table}_st`;
    cleanup.push([table, prefix]);
    await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, email TEXT)`);
    await db.query(`INSERT INTO ${table} (id, email) VALUES (1, ?), (2, ?)`, [
      gcmJson("a@x"),
      gcmJson("b@x"),
    ]);
    const error = await migrateTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: keyPair().provider,
      stateTablePrefix: prefix,
      apply: true,
      from: legacyDecoder({
        format: "aes-256-gcm-json",
        key: { env: "K" },
        env: { K: randomBytes(32).toString("hex") },
      }),
    }).catch((e) => e);
    expect(error).toMatchObject({ code: "ENVELOPE_DECRYPT_FAILED" });
    expect(error.message).toMatch(/legacy key/);
    expect((await db.query(`SELECT email FROM ${table} WHERE id = 1`)).rows[0]!.email).toMatch(
      /^\{"iv"/,
    );
  });

  it("refuses to go on with a job under another context layout; jobs stored without one still resume", async () => {
    const table = uniqueName("miglay");
    const prefix = `${table}_st`;
    cleanup.push([table, prefix]);
    const key = keyPair().provider;
    await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, tenant TEXT, email TEXT)`);
    const insert = (ids: number[]) =>
      db.query(
        `INSERT INTO ${table} (id, tenant, email) VALUES ${ids.map(() => "(?, 't1', ?)").join(", ")}`,
        ids.flatMap((id) => [id, plaintextOf(id)]),
      );
    await insert([1, 2, 3]);
    const options = {
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: key,
      from: legacyDecoder({ format: "plaintext" }),
      stateTablePrefix: prefix,
      apply: true,
      contextLayout: "{table}/{column}/{id}",
    };
    expect(await migrateTable(options)).toMatchObject({ complete: true });
    await insert([4]); // written in plaintext by an app instance after the job

    // Another layout (a tenant added to the context): refused before anything is written.
    const error = await migrateTable({
      ...options,
      context: (row) => ({
        table,
        column: "email",
        id: String(row.id),
        tenant: String(row.tenant),
      }),
      contextColumns: ["tenant"],
      contextLayout: "{table}/{column}/{id}/{tenant}",
    }).catch((e) => e);
    expect(error).toMatchObject({ code: "ENVELOPE_BAD_CONFIG", details: { field: "jobId" } });
    expect(error.message).toMatch(/another context layout/);
    const row4 = await db.query(`SELECT email FROM ${table} WHERE id = 4`);
    expect(row4.rows[0]!.email).toBe(plaintextOf(4));

    // The same layout goes on; so does a run on a job stored before layouts were recorded.
    const jobs = `${prefix}_jobs`;
    const stored = await db.query(`SELECT spec FROM ${jobs}`);
    const { layout, ...old } = JSON.parse(String(stored.rows[0]!.spec));
    expect(layout).toBe("{table}/{column}/{id}");
    await db.query(`UPDATE ${jobs} SET spec = ?`, [JSON.stringify(old)]);
    expect(await migrateTable(options)).toMatchObject({ complete: true, failures: {} });
    expect(await verifyAll(db, table, key)).toEqual({ rows: 4, wrong: [] });
  });
});

describe("PGlite (embedded default)", () => {
  let pg: PGlite;
  let db: SqlAdapter;
  beforeAll(async () => {
    pg = new PGlite();
    db = pgliteAdapter(pg);
  });
  afterAll(async () => {
    await pg.close();
  });

  it("migrates plaintext bytea, then rewraps with 2 workers", async () => {
    await db.query("CREATE TABLE batch_rewrap_users (id TEXT PRIMARY KEY, email BYTEA)");
    const ids = Array.from({ length: 300 }, (_, i) => `u${String(i).padStart(4, "0")}`);
    await db.query(
      `INSERT INTO batch_rewrap_users VALUES ${ids.map(() => "(?, ?)").join(", ")}`,
      ids.flatMap((id) => [id, Buffer.from(plaintextOf(id))]),
    );
    const a = keyPair().provider;
    const b = keyPair().provider;
    const base = {
      db,
      table: "batch_rewrap_users",
      primaryKey: "id",
      columns: ["email"],
      apply: true,
      batchSize: 40,
      rangeSize: 50,
    };
    const migrated = await migrateTable({
      ...base,
      to: a,
      from: legacyDecoder({ format: "plaintext" }),
    });
    expect(migrated.run).toMatchObject({ rewrapped: 300 });
    const rewrapped = await rewrapTable({ ...base, to: b, decrypt: [a], workers: 2 });
    expect(rewrapped).toMatchObject({ complete: true });
    expect(rewrapped.total).toMatchObject({ rewrapped: 300, skipped: 0 });
    expect(await verifyAll(db, "batch_rewrap_users", b)).toEqual({ rows: 300, wrong: [] });
  });
});
