import { createCipheriv, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, dropStateTables, type SqlAdapter } from "@envelope/batch-rewrap";
import { envelopeFromEnv } from "@envelope/core";
import { createBlindIndexer, createRecordCipher } from "@envelope/records";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES } from "../../batch-rewrap/test/support.js";
import { cli, tempDir } from "./support.js";

// `envelope migrate --records-config`: the app's schema and blind indexer, loaded from a
// module, make the migrated rows findable by blind index and padded as the app pads.

const gcmJson = (key: Buffer, text: string) => {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv);
  const encrypted = Buffer.concat([c.update(text), c.final()]);
  return JSON.stringify({
    iv: iv.toString("hex"),
    authTag: c.getAuthTag().toString("hex"),
    encrypted: encrypted.toString("hex"),
  });
};
// The config module must resolve @envelope/records: write it inside the repository.
const HERE = fileURLToPath(new URL(".", import.meta.url));

describe.each(DATABASES)("envelope migrate --records-config on $name", ({ url }) => {
  let db: SqlAdapter;
  let moduleDir: string;
  const tables: string[] = [];
  beforeAll(async () => {
    db = await connect(url);
    moduleDir = mkdtempSync(join(HERE, ".records-mig-"));
  });
  afterAll(async () => {
    for (const t of tables) {
      await db.query(`DROP TABLE IF EXISTS ${t}`);
      await dropStateTables(db, `${t}_st`);
    }
    await db.close();
    rmSync(moduleDir, { recursive: true, force: true });
  });

  it("fills the blind index and pads as the app does; dry run writes nothing", async () => {
    const table = `cli_recmig_${process.pid}_${randomBytes(3).toString("hex")}`;
    tables.push(table);
    await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, email TEXT, email_idx VARCHAR(64))`);
    const legacyKey = randomBytes(32);
    const emails = ["Ann@Example.com", "bob.long.name@example.com", "c@d.io"];
    for (const [i, e] of emails.entries())
      await db.query(`INSERT INTO ${table} (id, email) VALUES (?, ?)`, [
        i + 1,
        gcmJson(legacyKey, e),
      ]);
    const indexKey = randomBytes(32).toString("hex");
    const config = join(moduleDir, `${table}.mjs`);
    writeFileSync(
      config,
      `import { createBlindIndexer } from "@envelope/records";
export const records = {
  schema: { table: ${JSON.stringify(table)}, encrypted: ["email"], blindIndexes: { email: { normalize: "email" } }, pad: { email: 32 } },
  blindIndex: createBlindIndexer({ keys: process.env.TEST_RECORDS_MIG_INDEX_KEY }),
};
`,
    );
    process.env.TEST_RECORDS_MIG_INDEX_KEY = indexKey;
    const env = {
      OLD_ENC_KEY: legacyKey.toString("hex"),
      APP_KEY: randomBytes(32).toString("hex"),
      ENVELOPE_ENCRYPT_KEYS: "local-aes://env/APP_KEY",
    };
    const cwd = tempDir();
    const flags = [
      "--json",
      "migrate",
      "--db",
      url,
      "--table",
      table,
      "--column",
      "email",
      "--state-prefix",
      `${table}_st`,
      "--from",
      "aes-256-gcm-json",
      "--legacy-key-env",
      "OLD_ENC_KEY",
      "--to",
      "local-aes://env/APP_KEY",
      "--records-config",
      config,
    ];
    const snapshot = async () =>
      (await db.query(`SELECT id, email, email_idx FROM ${table} ORDER BY id`)).rows;
    const before = await snapshot();
    const dry = await cli(flags, { cwd, env });
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(await snapshot()).toEqual(before);

    const withContext = await cli([...flags, "--context", "id={pk}"], { cwd, env });
    expect(withContext.code).toBe(2);
    expect(withContext.stdout + withContext.stderr).toContain("drop --context");

    const run = await cli([...flags, "--apply"], { cwd, env });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.json().run.rewrapped).toBe(3);
    delete process.env.TEST_RECORDS_MIG_INDEX_KEY;

    const envelope = await envelopeFromEnv(env);
    const cipher = createRecordCipher(
      envelope,
      {
        table,
        encrypted: ["email"],
        blindIndexes: { email: { normalize: "email" } },
        pad: { email: 32 },
      },
      { blindIndex: createBlindIndexer({ keys: indexKey }) },
    );
    const rows = await snapshot();
    const app = await cipher.seal({ id: 99, email: "x@y.z" });
    for (const [i, row] of rows.entries()) {
      expect(row.email_idx).toBe(cipher.indexFor("email", emails[i]!.toLowerCase()));
      expect(await cipher.openField(row, "email")).toBe(emails[i]);
      expect((row.email as string).length).toBe(app.email.length);
    }
  });

  it("fieldOfColumn: a value migrated from the column the app's ORM maps its field to opens through the record cipher, and its blind index finds it", async () => {
    const table = `cli_recmap_${process.pid}_${randomBytes(3).toString("hex")}`;
    tables.push(table);
    await db.query(
      `CREATE TABLE ${table} (id INT PRIMARY KEY, ssn_enc TEXT, ssn_bidx VARCHAR(64))`,
    );
    const legacyKey = randomBytes(32);
    const ssns = ["123-45-6789", "987-65-4321"];
    for (const [i, v] of ssns.entries())
      await db.query(`INSERT INTO ${table} (id, ssn_enc) VALUES (?, ?)`, [
        i + 1,
        gcmJson(legacyKey, v),
      ]);
    const indexKey = randomBytes(32).toString("hex");
    const schema = {
      table: "people",
      encrypted: ["ssn"],
      blindIndexes: { ssn: {} },
      pad: { ssn: 16 },
    };
    const write = (name: string, fieldOfColumn: unknown) => {
      const file = join(moduleDir, `${table}_${name}.mjs`);
      writeFileSync(
        file,
        `import { createBlindIndexer } from "@envelope/records";
export const records = {
  schema: ${JSON.stringify(schema)},
  blindIndex: createBlindIndexer({ keys: ${JSON.stringify(indexKey)} }),
  fieldOfColumn: ${JSON.stringify(fieldOfColumn)},
};
`,
      );
      return file;
    };
    const env = {
      OLD_ENC_KEY: legacyKey.toString("hex"),
      APP_KEY: randomBytes(32).toString("hex"),
      ENVELOPE_ENCRYPT_KEYS: "local-aes://env/APP_KEY",
    };
    const cwd = tempDir();
    const flags = (config: string) => [
      "--json",
      "migrate",
      "--db",
      url,
      "--table",
      table,
      "--column",
      "ssn_enc",
      "--state-prefix",
      `${table}_st`,
      "--from",
      "aes-256-gcm-json",
      "--legacy-key-env",
      "OLD_ENC_KEY",
      "--to",
      "local-aes://env/APP_KEY",
      "--records-config",
      config,
      "--apply",
    ];
    // A mapping to a name the schema does not know: refused before anything is read.
    const typo = await cli(flags(write("typo", { ssn_enc: "snn", ssn_bidx: "ssn_idx" })), {
      cwd,
      env,
    });
    expect(typo.code).toBe(2);
    expect(typo.stdout + typo.stderr).toContain("fieldOfColumn");

    const run = await cli(flags(write("ok", { ssn_enc: "ssn", ssn_bidx: "ssn_idx" })), {
      cwd,
      env,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.json().run.rewrapped).toBe(2);

    const cipher = createRecordCipher(await envelopeFromEnv(env), schema as never, {
      blindIndex: createBlindIndexer({ keys: indexKey }),
    });
    const candidates = cipher.candidatesFor("ssn" as never, ssns[1]!);
    const { rows } = await db.query(
      `SELECT id, ssn_enc AS ssn, ssn_bidx AS ssn_idx FROM ${table} WHERE ssn_bidx IN (${candidates.map(() => "?").join(", ")})`,
      candidates,
    );
    expect(rows.map((r) => Number(r.id))).toEqual([2]);
    expect(await cipher.open<Record<string, unknown>>(rows[0]!)).toMatchObject({ ssn: ssns[1] });
  });
});
