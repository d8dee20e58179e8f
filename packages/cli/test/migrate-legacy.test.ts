import { createCipheriv, randomBytes } from "node:crypto";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, dropStateTables, type SqlAdapter } from "@envelope/batch-rewrap";
import { envelopeFromEnv } from "@envelope/core";
import { createRecordCipher } from "@envelope/records";
import * as fernet from "fernet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type SecretsManagerTestServer,
  startSecretsManagerServer,
} from "../../../test/servers/secrets-manager.js";
import { startVaultKvServer, type VaultKvTestServer } from "../../../test/servers/vault-kv.js";
import { PG_URL as PG } from "../../batch-rewrap/test/support.js";
import { cli, tempDir } from "./support.js";

const tag = `${process.pid}_${randomBytes(3).toString("hex")}`;
const fernetToken = (key: Buffer, message: string) =>
  new fernet.Token({ secret: new fernet.Secret(key.toString("base64url")) }).encode(message);
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
const cbc = (key: Buffer, text: string | Buffer) => {
  const iv = randomBytes(16);
  const c = createCipheriv("aes-256-cbc", key, iv);
  return `${iv.toString("hex")}:${Buffer.concat([c.update(text), c.final()]).toString("hex")}`;
};

describe("envelope migrate from Fernet, versioned and pgcrypto values (PostgreSQL)", () => {
  let db: SqlAdapter;
  let sm: SecretsManagerTestServer;
  let vault: VaultKvTestServer;
  let cwd: string;
  const tables: string[] = [];
  beforeAll(async () => {
    db = await connect(PG);
    sm = await startSecretsManagerServer();
    vault = await startVaultKvServer();
    cwd = tempDir();
    expect((await cli(["keygen", "--init", "--bits", "2048"], { cwd })).code).toBe(0);
  });
  afterAll(async () => {
    for (const t of tables) {
      await db.query(`DROP TABLE IF EXISTS ${t}`);
      await dropStateTables(db, `${t}_st`);
    }
    await db.close();
    await sm.close();
    await vault.close();
  });
  const newTable = async (label: string, columns: string) => {
    const table = `batch_rewrap_cli${label}_${tag}`;
    tables.push(table);
    await db.query(`CREATE TABLE ${table} (${columns})`);
    return table;
  };
  const base = (table: string, column: string) => [
    "--json",
    "migrate",
    "--db",
    PG,
    "--table",
    table,
    "--column",
    column,
    "--state-prefix",
    `${table}_st`,
  ];
  const envelopes = async (table: string, column: string) =>
    (await db.query(`SELECT COUNT(*) AS n FROM ${table} WHERE ${column} LIKE 'ev1:%'`)).rows[0]!.n;

  it("Fernet with MultiFernet keys from Secrets Manager (AWSCURRENT, AWSPREVIOUS)", async () => {
    const current = randomBytes(32);
    const previous = randomBytes(32);
    sm.putSecretValue("app/fernet", {
      SecretString: JSON.stringify({ FERNET_KEY: previous.toString("base64url") }),
    });
    sm.putSecretValue("app/fernet", {
      SecretString: JSON.stringify({ FERNET_KEY: current.toString("base64url") }),
    });
    const table = await newTable("fer", "id INT PRIMARY KEY, email TEXT");
    const ids = Array.from({ length: 40 }, (_, i) => i + 1);
    await db.query(
      `INSERT INTO ${table} VALUES ${ids.map(() => "(?, ?)").join(", ")}`,
      ids.flatMap((id) => [id, fernetToken(id % 2 ? current : previous, `user${id}@example.com`)]),
    );
    const saved = { ...process.env };
    // The SDK reads its credentials, region and endpoint from the process environment.
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: sm.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: sm.credentials.secretAccessKey,
      AWS_REGION: sm.region,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
    });
    try {
      const args = [
        ...base(table, "email"),
        "--from",
        "fernet",
        "--legacy-key",
        "aws-sm:app/fernet#FERNET_KEY",
        "--legacy-key",
        "aws-sm:app/fernet?stage=AWSPREVIOUS#FERNET_KEY",
      ];
      const dry = await cli(args, { cwd });
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.json()).toMatchObject({
        apply: false,
        wouldRewrite: 40,
        byKeyRef: { "legacy:fernet": 40 },
      });
      const applied = await cli([...args, "--apply"], { cwd });
      expect(applied.code, applied.stderr).toBe(0);
      expect(applied.json()).toMatchObject({ complete: true, run: { rewrapped: 40 } });
      for (const k of [current, previous])
        expect(applied.stdout + applied.stderr).not.toContain(k.toString("base64url"));
    } finally {
      process.env = saved;
    }
    expect(Number(await envelopes(table, "email"))).toBe(40);
    expect(
      sm.requests.filter((r) => r.operation === "GetSecretValue").length,
    ).toBeGreaterThanOrEqual(4);
  });

  it("versioned prefix values with keys from Vault KV and a file, mixed with plaintext", async () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    vault.put("secret", "app/legacy", { key_v1: k1.toString("hex") });
    const keyFile = join(cwd, "key_v2");
    writeFileSync(keyFile, k2.toString("base64"), { mode: 0o600 });
    chmodSync(keyFile, 0o600);
    const table = await newTable("ver", "id INT PRIMARY KEY, email TEXT");
    const rows: [number, string][] = [
      [1, `v1:${cbc(k1, "user1@example.com")}`],
      [2, `v2:${gcmJson(k2, "user2@example.com")}`],
      [3, "user3@example.com"],
      [4, `v1:${cbc(k1, "user4@example.com")}`],
    ];
    await db.query(
      `INSERT INTO ${table} VALUES ${rows.map(() => "(?, ?)").join(", ")}`,
      rows.flat(),
    );
    const env = { VAULT_ADDR: vault.url, VAULT_TOKEN: vault.token };
    const args = [
      ...base(table, "email"),
      "--from",
      "versioned",
      "--key-version",
      "1=aes-256-cbc:vault-kv:secret/app/legacy#key_v1",
      "--key-version",
      `2=aes-256-gcm-json:file:${keyFile}`,
    ];
    const strict = await cli(args, { cwd, env });
    expect(strict.json()).toMatchObject({
      wouldRewrite: 3,
      failures: { ENVELOPE_LEGACY_UNRECOGNIZED: 1 },
    });
    const applied = await cli([...args, "--allow-plaintext", "--apply"], { cwd, env });
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.json()).toMatchObject({ complete: true, run: { rewrapped: 4 } });
    expect(Number(await envelopes(table, "email"))).toBe(4);
    expect(applied.stdout).not.toContain(k1.toString("hex"));
  });

  it("pgcrypto values, the passphrase from the environment", async () => {
    const passphrase = `pgp-${randomBytes(6).toString("hex")}`;
    await db.query("CREATE EXTENSION IF NOT EXISTS pgcrypto");
    const table = await newTable("pgp", "id INT PRIMARY KEY, phone BYTEA");
    await db.query(
      `INSERT INTO ${table} SELECT i, pgp_sym_encrypt('555-01' || i, ?) FROM generate_series(1, 30) AS i`,
      [passphrase],
    );
    const args = [
      ...base(table, "phone"),
      "--from",
      "pgcrypto",
      "--pgp-passphrase",
      "env:PGP_PASSPHRASE",
      "--apply",
    ];
    const missing = await cli(args, { cwd, env: {} });
    expect(missing.code).not.toBe(0);
    expect(missing.stdout).toContain("PGP_PASSPHRASE is not set");
    const wrong = await cli(args, { cwd, env: { PGP_PASSPHRASE: "wrong" } });
    expect(wrong.json().error).toMatchObject({ code: "ENVELOPE_DECRYPT_FAILED" });
    const applied = await cli(args, { cwd, env: { PGP_PASSPHRASE: passphrase } });
    expect(applied.code, applied.stdout).toBe(0);
    expect(applied.json()).toMatchObject({ complete: true, run: { rewrapped: 30 } });
    expect(applied.stdout).not.toContain(passphrase);
  });
  it("a job run again under another --context is refused (exit 2) before any write", async () => {
    const table = await newTable("lay", "id INT PRIMARY KEY, tenant TEXT, email TEXT");
    await db.query(`INSERT INTO ${table} VALUES (1, 't1', 'a@x'), (2, 't1', 'b@x')`);
    const args = [...base(table, "email"), "--from", "plaintext", "--apply"];
    expect((await cli(args, { cwd })).code).toBe(0);
    await db.query(`INSERT INTO ${table} VALUES (3, 't1', 'c@x')`); // an app still writing plaintext
    const other = await cli(
      [...args, "--context", "table={table},column={column},id={pk},tenant={tenant}"],
      { cwd },
    );
    expect(other.code, other.stdout).toBe(2);
    expect(other.json().error).toMatchObject({ code: "ENVELOPE_BAD_CONFIG" });
    expect(other.json().error.message).toMatch(/another context layout/);
    const row3 = await db.query(`SELECT email FROM ${table} WHERE id = 3`);
    expect(row3.rows[0]!.email).toBe("c@x");
    const same = await cli(args, { cwd });
    expect(same.code, same.stdout).toBe(0);
    expect(Number(await envelopes(table, "email"))).toBe(3);
  });
  it("a mixed column: Fernet and GCM JSON with a key each (<format>=<source>)", async () => {
    const fk = randomBytes(32);
    const gk = randomBytes(32);
    const table = await newTable("mix", "id INT PRIMARY KEY, email TEXT");
    const rows: [number, string][] = [
      [1, fernetToken(fk, "user1@example.com")],
      [2, gcmJson(gk, "user2@example.com")],
      [3, fernetToken(fk, "user3@example.com")],
    ];
    await db.query(
      `INSERT INTO ${table} VALUES ${rows.map(() => "(?, ?)").join(", ")}`,
      rows.flat(),
    );
    const env = { FERNET_KEY: fk.toString("base64url"), OLD_ENC_KEY: gk.toString("hex") };
    const applied = await cli(
      [
        ...base(table, "email"),
        "--from",
        "fernet,aes-256-gcm-json",
        "--apply",
        "--legacy-key",
        "fernet=env:FERNET_KEY",
        "--legacy-key",
        "aes-256-gcm-json=env:OLD_ENC_KEY",
      ],
      { cwd, env },
    );
    expect(applied.code, applied.stdout).toBe(0);
    expect(applied.json()).toMatchObject({ complete: true, run: { rewrapped: 3 } });
    expect(Number(await envelopes(table, "email"))).toBe(3);
  });

  it("--records writes what a RecordCipher opens (its type tag); without it, RecordCipher refuses", async () => {
    const gk = randomBytes(32);
    const table = await newTable("rec", "id INT PRIMARY KEY, email TEXT, plain_email TEXT");
    const legacy = gcmJson(gk, "ann@example.com");
    await db.query(`INSERT INTO ${table} VALUES (1, ?, ?)`, [legacy, legacy]);
    const env = {
      OLD_ENC_KEY: gk.toString("hex"),
      APP_KEY: randomBytes(32).toString("hex"),
    };
    const flags = (column: string) => [
      ...base(table, column),
      "--from",
      "aes-256-gcm-json",
      "--legacy-key-env",
      "OLD_ENC_KEY",
      "--to",
      "local-aes://env/APP_KEY",
      "--apply",
    ];
    const bad = await cli([...flags("email"), "--records", "json"], { cwd, env });
    expect(bad.code).toBe(2);
    expect(bad.stdout + bad.stderr).toContain("--records takes string");
    const tagged = await cli([...flags("email"), "--records"], { cwd, env });
    expect(tagged.code, tagged.stdout).toBe(0);
    const untagged = await cli(flags("plain_email"), { cwd, env });
    expect(untagged.code, untagged.stdout).toBe(0);

    const envelope = await envelopeFromEnv({
      ...env,
      ENVELOPE_ENCRYPT_KEYS: "local-aes://env/APP_KEY",
    });
    const cipher = createRecordCipher(envelope, { table, encrypted: ["email", "plain_email"] });
    const row = (await db.query(`SELECT id, email, plain_email FROM ${table}`)).rows[0]!;
    expect(await cipher.openField(row, "email")).toBe("ann@example.com");
    await expect(cipher.openField(row, "plain_email")).rejects.toMatchObject({
      code: "ENVELOPE_BAD_FORMAT",
    });
  });

  it("--records bytes with aes-256-cbc: binary plaintexts migrate (CBC's UTF-8 check is off for bytes)", async () => {
    const key = randomBytes(32);
    const table = await newTable("recb", "id INT PRIMARY KEY, avatar TEXT");
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3]); // not UTF-8
    await db.query(`INSERT INTO ${table} VALUES (1, ?)`, [cbc(key, binary)]);
    const env = { OLD_KEY: key.toString("hex"), APP_KEY: randomBytes(32).toString("hex") };
    const run = await cli(
      [
        ...base(table, "avatar"),
        "--from",
        "aes-256-cbc",
        "--legacy-key-env",
        "OLD_KEY",
        "--to",
        "local-aes://env/APP_KEY",
        "--records",
        "bytes",
        "--apply",
      ],
      { cwd, env },
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const envelope = await envelopeFromEnv({
      ...env,
      ENVELOPE_ENCRYPT_KEYS: "local-aes://env/APP_KEY",
    });
    const cipher = createRecordCipher(envelope, { table, encrypted: ["avatar"] });
    const row = (await db.query(`SELECT id, avatar FROM ${table}`)).rows[0]!;
    expect(Buffer.from((await cipher.openField(row, "avatar")) as Buffer)).toEqual(binary);
  });
});
