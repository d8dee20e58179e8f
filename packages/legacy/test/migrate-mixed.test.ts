import { randomBytes } from "node:crypto";
import { migrateTable, type SqlAdapter } from "@envelope/batch-rewrap";
import { Envelope } from "@envelope/core";
import {
  fernetDecoder,
  gcmJsonDecoder,
  mixedDecoder,
  parseFernetKey,
  versionedDecoder,
} from "@envelope/legacy";
import * as fernet from "fernet";
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
} from "../../batch-rewrap/test/support.js";
import { handRolledCbc, handRolledGcmJson } from "./support.js";

const fernetKeyText = randomBytes(32).toString("base64url");
const fernetToken = (m: string) =>
  new fernet.Token({ secret: new fernet.Secret(fernetKeyText) }).encode(m);
const gcmKey = randomBytes(32);

describe.each(DATABASES)("migrate legacy formats on $name", ({ url }) => {
  let db: SqlAdapter;
  const cleanup: [string, string][] = [];
  beforeAll(async () => {
    db = await openDb(url);
  });
  afterAll(async () => {
    for (const [table, prefix] of cleanup) await dropAll(db, table, prefix);
    await db.close();
  });
  const newTable = async (columns = "id INT PRIMARY KEY, email TEXT") => {
    const table = uniqueName("leg");
    cleanup.push([table, `${table}_st`]);
    await db.query(`CREATE TABLE ${table} (${columns})`);
    return { table, prefix: `${table}_st` };
  };

  it("Fernet tokens from the fernet npm package become envelopes", async () => {
    const { table, prefix } = await newTable();
    const ids = Array.from({ length: 120 }, (_, i) => i + 1);
    await db.query(
      `INSERT INTO ${table} (id, email) VALUES ${ids.map(() => "(?, ?)").join(", ")}`,
      ids.flatMap((id) => [id, fernetToken(plaintextOf(id))]),
    );
    const to = keyPair().provider;
    const from = fernetDecoder([
      parseFernetKey(randomBytes(32).toString("base64url")),
      parseFernetKey(fernetKeyText),
    ]);
    const options = {
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to,
      from,
      stateTablePrefix: prefix,
    };
    const dry = await migrateTable(options);
    expect(dry).toMatchObject({ wouldRewrite: 120, byKeyRef: { "legacy:fernet": 120 } });
    const report = await migrateTable({ ...options, apply: true });
    expect(report).toMatchObject({ complete: true, failures: {} });
    expect(await verifyAll(db, table, to)).toEqual({ rows: 120, wrong: [] });
  });

  it("a version column picks each row's legacy key and cipher", async () => {
    const { table, prefix } = await newTable("id INT PRIMARY KEY, email TEXT, key_version INT");
    const k1 = randomBytes(32);
    const ids = Array.from({ length: 60 }, (_, i) => i + 1);
    await db.query(
      `INSERT INTO ${table} (id, email, key_version) VALUES ${ids.map(() => "(?, ?, ?)").join(", ")}`,
      ids.flatMap((id) =>
        id % 2
          ? [id, handRolledCbc(k1, plaintextOf(id)), 1]
          : [id, handRolledGcmJson(gcmKey, plaintextOf(id)), 2],
      ),
    );
    const to = keyPair().provider;
    const from = versionedDecoder({
      versions: {
        "1": (await import("@envelope/legacy")).cbcDecoder(k1),
        "2": gcmJsonDecoder(gcmKey),
      },
      tag: { column: "key_version" },
    });
    const report = await migrateTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to,
      from,
      stateTablePrefix: prefix,
      apply: true,
    });
    expect(report).toMatchObject({ complete: true, failures: {} });
    expect(await verifyAll(db, table, to)).toEqual({ rows: 60, wrong: [] });
  });

  it("a mixed column: envelopes skipped, legacy converted, plaintext only when allowed, the rest left as is", async () => {
    const { table, prefix } = await newTable();
    const to = keyPair().provider;
    const sealed = await new Envelope({ encrypt: to }).encrypt(plaintextOf(1), {
      context: contextOf(table, "email", 1),
      output: "text",
    });
    const tampered = fernetToken(plaintextOf(9)).replace(
      /^(.{40})(.)/,
      (_, a, c) => a + (c === "A" ? "B" : "A"),
    );
    const rows: [number, string][] = [
      [1, sealed],
      [2, fernetToken(plaintextOf(2))],
      [3, handRolledGcmJson(gcmKey, plaintextOf(3))],
      [4, plaintextOf(4)],
      [6, fernetToken(plaintextOf(6))],
      [7, handRolledGcmJson(gcmKey, plaintextOf(7))],
      [8, plaintextOf(8)],
      // Damaged: after the preflight's sample (a damaged sampled value stops the job instead).
      [9, tampered],
    ];
    await db.query(
      `INSERT INTO ${table} (id, email) VALUES ${rows.map(() => "(?, ?)").join(", ")}`,
      rows.flat(),
    );
    const decoders = [fernetDecoder([parseFernetKey(fernetKeyText)]), gcmJsonDecoder(gcmKey)];
    const base = {
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to,
      stateTablePrefix: prefix,
      sampleSize: 2,
    };

    const dry = await migrateTable({ ...base, from: mixedDecoder({ decoders }) });
    expect(dry).toMatchObject({
      wouldRewrite: 5,
      byKeyRef: { "legacy:fernet": 3, "legacy:aes-256-gcm-json": 2 },
      failures: { ENVELOPE_LEGACY_UNRECOGNIZED: 2 },
    });
    const strict = await migrateTable({ ...base, from: mixedDecoder({ decoders }), apply: true });
    expect(strict.run).toMatchObject({ rewrapped: 4, skipped: 1 });
    expect(strict.failures).toEqual({
      ENVELOPE_LEGACY_UNRECOGNIZED: 2,
      ENVELOPE_DECRYPT_FAILED: 1,
    });
    const stored = async (id: number) =>
      (await db.query(`SELECT email FROM ${table} WHERE id = ?`, [id])).rows[0]!.email;
    expect(await stored(4)).toBe(plaintextOf(4)); // left as is, not sealed
    expect(await stored(9)).toBe(tampered);

    const lenient = await migrateTable({
      ...base,
      from: mixedDecoder({ decoders, plaintext: true }),
      jobId: `${table}-2`,
      apply: true,
    });
    expect(lenient.run).toMatchObject({ rewrapped: 2 });
    expect(lenient.failures).toEqual({ ENVELOPE_DECRYPT_FAILED: 1 });
    expect(await stored(9)).toBe(tampered); // looks like Fernet: never taken as plaintext
    const check = await verifyAll(db, table, to);
    expect(check.wrong).toEqual([expect.stringMatching(/^9: /)]);
  });

  it("refuses the job when no value is in the formats given (wrong --from)", async () => {
    const { table, prefix } = await newTable();
    await db.query(`INSERT INTO ${table} (id, email) VALUES (1, ?), (2, ?)`, [
      handRolledCbc(randomBytes(32), "a"),
      handRolledCbc(randomBytes(32), "b"),
    ]);
    const error = await migrateTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: keyPair().provider,
      stateTablePrefix: prefix,
      apply: true,
      from: mixedDecoder({ decoders: [fernetDecoder([parseFernetKey(fernetKeyText)])] }),
    }).catch((e) => e);
    expect(error).toMatchObject({ code: "ENVELOPE_LEGACY_UNRECOGNIZED" });
    expect(error.message).toMatch(/check --from/);
  });
});
