// An attacker who can write the database plants values for the legacy decoders; each
// probe asserts the safe outcome. The last block follows the README literally.
import { createCipheriv, createHmac, randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import { migrateTable, pgliteAdapter } from "@envelope/batch-rewrap";
import { Envelope, EnvelopeError, localAesProvider } from "@envelope/core";
import {
  cbcDecoder,
  deriveFernetKey,
  fernetDecoder,
  gcmJsonDecoder,
  legacyDecoder,
  loadAesKey,
  looksLikeCbc,
  looksLikeFernet,
  looksLikeGcmJson,
  mixedDecoder,
  parseFernetKey,
  parseSecretSpec,
  pgcryptoDecoder,
  plaintextDecoder,
  recordValueDecoder,
  versionedDecoder,
} from "@envelope/legacy";
import { transitionalRead } from "@envelope/records";
import * as fernet from "fernet";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { testCertificate } from "../../../test/servers/tls.js";
import { PG_URL } from "../../batch-rewrap/test/support.js";
import { asyncCodeOf, codeOf, handRolledCbc, handRolledGcmJson } from "./support.js";

const key = randomBytes(32);
const other = randomBytes(32);
const fernetKeyText = randomBytes(32).toString("base64url");
const fernetToken = (m: string) =>
  new fernet.Token({ secret: new fernet.Secret(fernetKeyText) }).encode(m);
const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");

/** The error a call throws (fails the test when it returns). */
function errorOf(f: () => unknown): EnvelopeError {
  try {
    f();
  } catch (e) {
    if (EnvelopeError.isInstance(e)) return e;
    throw e;
  }
  throw new Error("expected an error, got a value");
}

describe("forged and altered values", () => {
  it("GCM JSON: a truncated or altered tag, iv or ciphertext never decodes", () => {
    const from = gcmJsonDecoder(key);
    const good = JSON.parse(handRolledGcmJson(key, "secret")) as Record<string, string>;
    const variants = [
      { ...good, authTag: good.authTag!.slice(0, 24) }, // 12-byte tag
      { ...good, authTag: good.authTag!.slice(0, 8) }, // 4-byte tag
      { ...good, authTag: "" },
      { ...good, encrypted: `${good.encrypted!.slice(0, -2)}00` },
      { ...good, iv: `${good.iv!.slice(0, -2)}00` },
      { ...good, authTag: "00".repeat(16) },
    ];
    for (const v of variants) {
      expect(["ENVELOPE_BAD_FORMAT", "ENVELOPE_DECRYPT_FAILED"]).toContain(
        codeOf(() => from.decode(JSON.stringify(v))),
      );
    }
  });

  it("Fernet: a truncated or zeroed HMAC, or a token under another key, never decodes", () => {
    const from = fernetDecoder([parseFernetKey(fernetKeyText)]);
    const token = Buffer.from(fernetToken("secret"), "base64url");
    const noMac = token.subarray(0, token.length - 16); // 16 bytes of MAC
    const zeroMac = Buffer.concat([token.subarray(0, token.length - 32), Buffer.alloc(32)]);
    for (const t of [noMac, zeroMac]) {
      expect(["ENVELOPE_BAD_FORMAT", "ENVELOPE_DECRYPT_FAILED"]).toContain(
        codeOf(() => from.decode(t.toString("base64url"))),
      );
    }
    // A token whose HMAC is right but whose body is altered: refused before any decryption.
    const body = Buffer.from(token.subarray(0, token.length - 32));
    body[30]! ^= 1;
    expect(
      codeOf(() => from.decode(Buffer.concat([body, token.subarray(-32)]).toString("base64url"))),
    ).toBe("ENVELOPE_DECRYPT_FAILED");
  });

  it("Fernet: a version byte other than 0x80 with a valid HMAC is refused", () => {
    const k = parseFernetKey(fernetKeyText);
    const token = Buffer.from(fernetToken("secret"), "base64url");
    const signed = Buffer.from(token.subarray(0, token.length - 32));
    signed[0] = 0x81;
    const mac = createHmac("sha256", k.subarray(0, 16)).update(signed).digest();
    expect(
      codeOf(() => fernetDecoder([k]).decode(Buffer.concat([signed, mac]).toString("base64url"))),
    ).toBe("ENVELOPE_BAD_FORMAT");
  });

  it("CBC is unauthenticated: flipping IV bits rewrites the first block, and the README says so", () => {
    // The inherent weakness: the decoder cannot detect this, so the docs must say it.
    const value = handRolledCbc(key, "role=user;name=a");
    const [ivHex, ct] = value.split(":") as [string, string];
    const iv = Buffer.from(ivHex, "hex");
    const want = Buffer.from("role=root;name=a");
    const have = Buffer.from("role=user;name=a");
    for (let i = 0; i < 16; i++) iv[i]! ^= want[i]! ^ have[i]!;
    const forged = `${iv.toString("hex")}:${ct}`;
    expect(cbcDecoder(key).decode(forged).toString()).toBe("role=root;name=a");
    expect(README).toMatch(/aes-256-cbc[^\n]*(?:\n[^\n]+)*no integrity|unauthenticated/i);
    expect(README).toMatch(/bit[- ]flip|flip(?:ping)? bits/i);
    expect(README).toMatch(/padding oracle/i);
  });

  it("CBC: a bad padding and a non-UTF-8 plaintext fail alike (no padding-oracle detail in the error)", () => {
    const from = cbcDecoder(key);
    // Bad padding: a random last block.
    const badPad = `${randomBytes(16).toString("hex")}:${randomBytes(32).toString("hex")}`;
    // Good padding, invalid UTF-8.
    const iv = randomBytes(16);
    const c = createCipheriv("aes-256-cbc", key, iv);
    const notUtf8 = `${iv.toString("hex")}:${Buffer.concat([c.update(Buffer.from([0xff, 0xfe, 0xfd])), c.final()]).toString("hex")}`;
    let padErr = errorOf(() => from.decode(badPad));
    for (let i = 0; i < 20 && padErr.code !== "ENVELOPE_DECRYPT_FAILED"; i++)
      padErr = errorOf(() => from.decode(badPad));
    const utfErr = errorOf(() => from.decode(notUtf8));
    expect(padErr.code).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(utfErr.code).toBe(padErr.code);
    expect(utfErr.message).toBe(padErr.message);
    expect(utfErr.details).toEqual(padErr.details);
    // The cause (shown by util.inspect and by loggers that walk causes) must not tell them apart.
    const causeText = (e: EnvelopeError) => inspect(e.cause ?? null);
    expect(causeText(utfErr)).toBe(causeText(padErr));
  });

  it("CBC: a value under another key is refused nearly always (padding + UTF-8 check)", () => {
    const from = cbcDecoder(key);
    let accepted = 0;
    for (let i = 0; i < 400; i++) {
      if (codeOf(() => from.decode(handRolledCbc(other, "some text value"))) === "no error")
        accepted++;
    }
    expect(accepted).toBeLessThanOrEqual(2);
  });
});

describe("migration makes CBC values authenticated", () => {
  it("after migrateTable, an altered or swapped value is ENVELOPE_DECRYPT_FAILED, not plaintext", async () => {
    const db = pgliteAdapter(new PGlite(), { owned: true });
    try {
      await db.query("CREATE TABLE users (id INT PRIMARY KEY, email TEXT)");
      await db.query("INSERT INTO users (id, email) VALUES (?, ?), (?, ?)", [
        1,
        handRolledCbc(key, "one@example.com"),
        2,
        handRolledCbc(key, "two@example.com"),
      ]);
      const to = localAesProvider({ keys: randomBytes(32).toString("hex") });
      const report = await migrateTable({
        db,
        table: "users",
        primaryKey: "id",
        columns: ["email"],
        to,
        from: cbcDecoder(key),
        apply: true,
      });
      expect(report).toMatchObject({ complete: true, failures: {} });
      const { rows } = await db.query("SELECT id, email FROM users ORDER BY id");
      const [one, two] = rows.map((r) => String(r.email)) as [string, string];
      const envelope = new Envelope({ encrypt: to });
      const open = async (value: string, id: number) =>
        (
          await envelope.decrypt(value, {
            context: { table: "users", column: "email", id: String(id) },
            as: "bytes",
          })
        ).toString("utf8");
      expect(await open(one, 1)).toBe("one@example.com");
      // Row 2's value planted in row 1: bound to its row, refused.
      expect(await asyncCodeOf(() => open(two, 1))).toBe("ENVELOPE_DECRYPT_FAILED");
      // One character of the sealed value changed: refused (a CBC bit flip no longer works).
      const i = one.length - 10;
      const altered = `${one.slice(0, i)}${one[i] === "A" ? "B" : "A"}${one.slice(i + 1)}`;
      expect(await asyncCodeOf(() => open(altered, 1))).not.toBe("no error");
    } finally {
      await db.close();
    }
  });
});

describe("format and key-id confusion", () => {
  const fern = fernetDecoder([parseFernetKey(fernetKeyText)]);
  const gcm = gcmJsonDecoder(key);
  const cbc = cbcDecoder(other);

  it("no value of one format matches another format's shape test", () => {
    const values = {
      fernet: fernetToken("x"),
      "aes-256-gcm-json": handRolledGcmJson(key, "x"),
      "aes-256-cbc": handRolledCbc(other, "x"),
    };
    const tests = {
      fernet: looksLikeFernet,
      "aes-256-gcm-json": looksLikeGcmJson,
      "aes-256-cbc": looksLikeCbc,
    };
    for (const [format, value] of Object.entries(values)) {
      for (const [name, test] of Object.entries(tests)) expect(test(value)).toBe(name === format);
    }
  });

  it("versioned: a value relabelled to another version is decoded only by that version's decoder, never falling back", () => {
    const from = versionedDecoder({ versions: { "1": cbc, "2": gcm } });
    const v2 = handRolledGcmJson(key, "two");
    expect(codeOf(() => from.decode(`v1:${v2}`))).toBe("ENVELOPE_BAD_FORMAT");
    expect(codeOf(() => from.decode(`v01:${v2}`))).toBe("ENVELOPE_NO_MATCHING_KEY");
    for (const v of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      const byColumn = versionedDecoder({ versions: { "1": cbc }, tag: { column: "kv" } });
      expect(codeOf(() => byColumn.decode(handRolledCbc(other, "x"), { kv: v }))).toBe(
        "ENVELOPE_NO_MATCHING_KEY",
      );
    }
  });

  it("versioned by column: a row whose version column is emptied is an error that says so", () => {
    const from = versionedDecoder({ versions: { "1": cbc }, tag: { column: "kv" } });
    const value = handRolledCbc(other, "x");
    expect(from.decode(value, { kv: 1 }).toString()).toBe("x");
    const e = errorOf(() => from.decode(value, { kv: null }));
    expect(e.code).toBe("ENVELOPE_BAD_FORMAT");
    expect(e.message).toContain('version column "kv"');
    expect(mixedDecoder({ decoders: [from], plaintext: true }).formatOf(value)).toBe("versioned");
  });

  it("mixed + plaintext: a value that looks like a format but does not decode is that format's error", () => {
    const from = mixedDecoder({ decoders: [fern, gcm, cbc], plaintext: true });
    const token = fernetToken("secret");
    const planted = [
      `${token.slice(0, -4)}AAAA`, // altered MAC (and, with the npm package's "=", its length)
      handRolledGcmJson(other, "x"), // another key
      handRolledCbc(key, "x"), // another key (this CBC decoder holds `other`)
    ];
    for (const v of planted) {
      expect(from.formatOf(v)).not.toBe("plaintext");
      expect(codeOf(() => from.decode(v))).not.toBe("no error");
    }
  });

  it("mixed + plaintext: a truncated Fernet token is an error, not migrated as plaintext", () => {
    // A varchar(n) cut or an attacker trimming the token must not turn the ciphertext into
    // the "plaintext" that the migration then seals for good.
    const from = mixedDecoder({ decoders: [fern], plaintext: true });
    // (Without its "=" padding first: dropping only that is the same token.)
    const token = fernetToken("a secret that spans blocks").replace(/=+$/, "");
    for (const cut of [1, 2, 5, 22, 40]) {
      const v = token.slice(0, token.length - cut);
      expect(from.formatOf(v), `cut ${cut}: ${v}`).toBe("fernet");
      expect(
        codeOf(() => from.decode(v)),
        `cut ${cut}: ${v}`,
      ).not.toBe("no error");
    }
  });

  it("mixed + plaintext: a Fernet-looking value too long to decode is an error, not plaintext", () => {
    const from = mixedDecoder({ decoders: [fern], plaintext: true });
    const huge = `gAAAAA${"A".repeat(17 * 1024 * 1024)}`;
    expect(from.formatOf(huge)).toBe("fernet");
    expect(codeOf(() => from.decode(huge))).toBe("ENVELOPE_BAD_FORMAT");
  });

  it("transitionalRead with allowPlaintext: a cut-short legacy value is an error, not returned as plaintext", async () => {
    const envelope = new Envelope({
      encrypt: localAesProvider({ keys: randomBytes(32).toString("hex") }),
    });
    const reads: string[] = [];
    const t = transitionalRead({
      decoders: [fern, gcm, cbc],
      allowPlaintext: true,
      onLegacyRead: (e) => reads.push(e.format),
    });
    const context = { table: "users", column: "email", id: "1" };
    const cut = [
      fernetToken("a secret that spans blocks").replace(/=+$/, "").slice(0, -3),
      handRolledCbc(other, "a secret that spans blocks").slice(0, -5),
      handRolledGcmJson(key, "a secret").slice(0, -20),
    ];
    for (const v of cut) {
      expect(await asyncCodeOf(() => t.open(envelope, v, context))).not.toBe("no error");
    }
    expect((await t.open(envelope, "never encrypted", context)).legacyFormat).toBe("plaintext");
    expect(reads).toEqual(["plaintext"]);
  });

  it("mixed + plaintext: a truncated CBC or GCM JSON value is an error, not plaintext", () => {
    const from = mixedDecoder({ decoders: [gcm, cbc], plaintext: true });
    const c = handRolledCbc(other, "a secret that spans blocks");
    const g = handRolledGcmJson(key, "a secret");
    const cutCbc = [c.slice(0, -1), c.slice(0, -16), c.slice(0, 33)];
    const cutGcm = [g.slice(0, -1), g.replace(/,"encrypted":"[0-9a-f]*"/, "")];
    for (const v of [...cutCbc, ...cutGcm]) {
      expect(from.formatOf(v), v).not.toBe("plaintext");
      expect(codeOf(() => from.decode(v))).not.toBe("no error");
    }
  });

  it("plaintext text that merely starts like a format is still plaintext in a mixed column", () => {
    const from = mixedDecoder({ decoders: [fern, gcm, cbc], plaintext: true });
    for (const v of ["gAbriel", "{ not json", "deadbeef:cafe", "v1: hello", "gA"]) {
      expect(from.decode(v).toString()).toBe(v);
    }
  });
});

describe("resource exhaustion", () => {
  it("GCM JSON: deep nesting and a huge value are a typed error, quickly", () => {
    const from = gcmJsonDecoder(key);
    const deep = `{"iv":${"[".repeat(200_000)}${"]".repeat(200_000)}}`;
    expect(codeOf(() => from.decode(deep))).toBe("ENVELOPE_BAD_FORMAT");
    const huge = `{"iv":"${"0".repeat(24)}","authTag":"${"0".repeat(32)}","encrypted":"${"ab".repeat(8_000_000)}"}`;
    const t = Date.now();
    expect(codeOf(() => from.decode(huge))).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(Date.now() - t).toBeLessThan(5_000);
  });

  it("shape tests on long adversarial text finish quickly (no regex backtracking)", () => {
    const long = [
      `${"a".repeat(32)}:${"b".repeat(2_000_001)}`,
      `${"A".repeat(22)}:${"B".repeat(2_000_000)}!`,
      `gA${"A".repeat(4_000_000)}!`,
      `v${"1".repeat(1_000_000)}`,
    ];
    const from = mixedDecoder({
      decoders: [
        fernetDecoder([parseFernetKey(fernetKeyText)]),
        gcmJsonDecoder(key),
        cbcDecoder(key),
        versionedDecoder({ versions: { "1": cbcDecoder(key) } }),
      ],
    });
    const t = Date.now();
    for (const v of long) codeOf(() => from.decode(v));
    expect(Date.now() - t).toBeLessThan(5_000);
  });
});

describe("nothing secret in errors, inspect or JSON", () => {
  it("decoders print and serialize as their format only, wrapped or not", () => {
    const k = parseFernetKey(fernetKeyText);
    const decoders = [
      gcmJsonDecoder(key),
      cbcDecoder(key),
      fernetDecoder([k]),
      versionedDecoder({ versions: { "1": cbcDecoder(key) } }),
      mixedDecoder({ decoders: [cbcDecoder(key)], plaintext: true }),
      recordValueDecoder(gcmJsonDecoder(key)),
      pgcryptoDecoder({ pool: { query: async () => ({ rows: [] }) }, passphrase: "pgp-pass-123" }),
      plaintextDecoder(),
    ];
    for (const d of decoders) {
      expect(inspect(d, { depth: 10, showHidden: true })).toBe(`LegacyDecoder(${d.format})`);
      expect(JSON.parse(JSON.stringify(d))).toEqual({ format: d.format });
      const all = `${inspect(d, { customInspect: false, showHidden: true, depth: 10 })}${Object.keys(d).join()}`;
      for (const secret of [key.toString("hex"), fernetKeyText, "pgp-pass-123"])
        expect(all).not.toContain(secret);
    }
  });

  it("a decode error carries neither the value nor its plaintext", () => {
    const gcm = gcmJsonDecoder(key);
    const planted = handRolledGcmJson(other, "TOP-SECRET-PLAINTEXT");
    const e = errorOf(() => gcm.decode(planted));
    const text = `${e.message}${JSON.stringify(e)}${inspect(e, { depth: 10 })}`;
    expect(text).not.toContain("TOP-SECRET-PLAINTEXT");
    expect(text).not.toContain(JSON.parse(planted).encrypted);
  });

  it("a secret spec that is really the key itself is not echoed in the error", () => {
    // The mistake `--legacy-key <the key>` instead of `--legacy-key env:NAME`.
    const hexKey = key.toString("hex");
    for (const spec of [hexKey, fernetKeyText, key.toString("base64"), `x:${hexKey}`]) {
      const e = errorOf(() => parseSecretSpec(spec));
      expect(e.code).toBe("ENVELOPE_BAD_CONFIG");
      const text = `${e.message}${JSON.stringify(e)}`;
      expect(text).not.toContain(spec.slice(0, 16));
    }
  });
});

describe("pgcrypto: a function planted earlier on search_path", () => {
  it("neither receives the passphrase nor forges the plaintext", async () => {
    // A role that can CREATE in a schema searched before pgcrypto's (public in PostgreSQL
    // 14 and older, with pgcrypto in an `extensions` schema as on Supabase; or a "$user"
    // schema) plants pgp_sym_decrypt_bytea(bytea, text). Simulated here with a schema put
    // first on the connection's search_path.
    const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
    const evil = `attack_${process.pid}_${randomBytes(3).toString("hex")}`;
    let victim: pg.Pool | undefined;
    try {
      await admin.query("CREATE EXTENSION IF NOT EXISTS pgcrypto");
      const ext = (
        await admin.query(
          "SELECT n.nspname AS s FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgcrypto'",
        )
      ).rows[0].s as string;
      await admin.query(`CREATE SCHEMA ${evil}`);
      await admin.query(`CREATE TABLE ${evil}.stolen (p text)`);
      for (const sig of ["b bytea, p text", "b bytea, p text, o text"]) {
        await admin.query(
          `CREATE FUNCTION ${evil}.pgp_sym_decrypt_bytea(${sig}) RETURNS bytea LANGUAGE sql AS $$ INSERT INTO ${evil}.stolen VALUES (p) RETURNING convert_to('forged', 'UTF8') $$`,
        );
      }
      const passphrase = `pass-${randomBytes(8).toString("hex")}`;
      const { b } = (
        await admin.query(`SELECT ${ext}.pgp_sym_encrypt('real value', $1) AS b`, [passphrase])
      ).rows[0] as { b: Buffer };
      victim = new pg.Pool({
        connectionString: PG_URL,
        max: 1,
        options: `-c search_path=${evil},${ext}`,
      });
      const from = pgcryptoDecoder({ pool: victim, passphrase });
      expect((await from.decode(b)).toString()).toBe("real value");
      expect((await admin.query(`SELECT count(*)::int AS n FROM ${evil}.stolen`)).rows[0].n).toBe(
        0,
      );
    } finally {
      await victim?.end();
      await admin.query(`DROP SCHEMA IF EXISTS ${evil} CASCADE`);
      await admin.end();
    }
  });
});

describe("key sources over the network", () => {
  it("Vault KV: VAULT_SKIP_VERIFY in the environment does not turn certificate checks off", async () => {
    // @envelope/vault deliberately ignores VAULT_SKIP_VERIFY (its README); the legacy key
    // source builds its own node-vault client, which would honour it: the Vault token and
    // the legacy key would then go to whoever answers with any certificate.
    const { key: tlsKey, cert } = await testCertificate();
    const tokens: string[] = [];
    const server = createServer({ key: tlsKey, cert }, (req, res) => {
      tokens.push(String(req.headers["x-vault-token"]));
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ data: { data: { key: key.toString("hex") } } }));
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    const before = process.env.VAULT_SKIP_VERIFY;
    process.env.VAULT_SKIP_VERIFY = "1";
    try {
      const address = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const code = await asyncCodeOf(() =>
        loadAesKey({
          vault: { address, token: "vault-token-1", path: "app/legacy", field: "key" },
        }),
      );
      expect(code).toBe("ENVELOPE_KMS_UNAVAILABLE");
      expect(tokens).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.VAULT_SKIP_VERIFY;
      else process.env.VAULT_SKIP_VERIFY = before;
      await new Promise((ok) => server.close(ok));
    }
  });
});

describe("the README, literally", () => {
  it("static-key formats: legacyDecoder with { env } and { file }", async () => {
    const dir = mkdtempSync(join(tmpdir(), "legacy-readme-"));
    const file = join(dir, "legacy_key");
    writeFileSync(file, key);
    chmodSync(file, 0o600);
    const env = { LEGACY_ENC_KEY: key.toString("hex") };
    const gcm = legacyDecoder({ format: "aes-256-gcm-json", key: { env: "LEGACY_ENC_KEY" }, env });
    const cbc = legacyDecoder({ format: "aes-256-cbc", key: { file } });
    expect(gcm.decode(handRolledGcmJson(key, "g")).toString()).toBe("g");
    expect(cbc.decode(handRolledCbc(key, "c")).toString()).toBe("c");
    // base64 too, as the README says
    const env64 = { LEGACY_ENC_KEY: key.toString("base64") };
    expect(
      legacyDecoder({ format: "aes-256-gcm-json", key: { env: "LEGACY_ENC_KEY" }, env: env64 })
        .decode(handRolledGcmJson(key, "b"))
        .toString(),
    ).toBe("b");
    // base64 iv:ciphertext
    const iv = randomBytes(16);
    const c = createCipheriv("aes-256-cbc", key, iv);
    const b64 = `${iv.toString("base64")}:${Buffer.concat([c.update("x"), c.final()]).toString("base64")}`;
    expect(cbc.decode(b64).toString()).toBe("x");
    expect((await loadAesKey({ file })).equals(key)).toBe(true);
  });

  it("key file permissions: what the README says is what happens", () => {
    const dir = mkdtempSync(join(tmpdir(), "legacy-readme-"));
    const file = join(dir, "legacy_key");
    writeFileSync(file, key.toString("hex"));
    chmodSync(file, 0o644);
    const strict = codeOf(() =>
      legacyDecoder({
        format: "aes-256-cbc",
        key: { file },
        env: { ENVELOPE_STRICT_KEY_FILES: "1" },
      }),
    );
    expect(strict).toBe("ENVELOPE_BAD_KEY");
    // Not strict: accepted with a SecurityWarning; the README must not claim it is refused.
    expect(codeOf(() => legacyDecoder({ format: "aes-256-cbc", key: { file }, env: {} }))).toBe(
      "no error",
    );
    expect(README).toMatch(/ENVELOPE_STRICT_KEY_FILES/);
  });

  it("records Buffer fields from CBC: the README's decoder reads a binary plaintext", () => {
    const iv = randomBytes(16);
    const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x01]);
    const c = createCipheriv("aes-256-cbc", key, iv);
    const value = `${iv.toString("hex")}:${Buffer.concat([c.update(bytes), c.final()]).toString("hex")}`;
    const line = README.split("\n").find((l) => l.includes('"bytes") })'));
    expect(line).toContain("cbcDecoder(key, { requireUtf8: false })");
    const from = recordValueDecoder(cbcDecoder(key, { requireUtf8: false }), "bytes");
    expect(from.decode(value)).toEqual(Buffer.concat([Buffer.from([0x06]), bytes]));
    // The default refuses it, and its error says why that may be.
    const e = errorOf(() => recordValueDecoder(cbcDecoder(key), "bytes").decode(value));
    expect(e.code).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(e.message).toContain("requireUtf8: false");
  });

  it("Fernet: MultiFernet order and the PBKDF2 derivation", () => {
    const env = {
      FERNET_KEY: randomBytes(32).toString("base64url"),
      FERNET_KEY_OLD: fernetKeyText,
    };
    const from = fernetDecoder([
      parseFernetKey(env.FERNET_KEY),
      parseFernetKey(env.FERNET_KEY_OLD),
    ]);
    expect(from.decode(fernetToken("old")).toString()).toBe("old");
    const raw = deriveFernetKey({
      secret: "django-secret",
      salt: "salt",
      iterations: 1000,
      output: "raw",
      saltEncoding: "utf8",
    });
    expect(raw.length).toBe(32);
    const hex = deriveFernetKey({
      secret: "django-secret",
      salt: "salt",
      iterations: 1000,
      output: "hex",
    });
    expect(hex.toString("utf8")).toMatch(/^[0-9a-f]{32}$/);
  });

  it("versioned and mixed, as written", () => {
    const keyV1 = randomBytes(32);
    const keyV2 = randomBytes(32);
    const versioned = versionedDecoder({
      versions: { "1": cbcDecoder(keyV1), "2": gcmJsonDecoder(keyV2) },
      tag: { prefix: "^v(\\d+):" },
    });
    const fern = fernetDecoder([parseFernetKey(fernetKeyText)]);
    const from = mixedDecoder({ decoders: [fern, versioned], plaintext: false });
    const v1 = `v1:${handRolledCbc(keyV1, "one")}`;
    const v2 = `v2:${handRolledGcmJson(keyV2, "two")}`;
    expect(from.decode(v1).toString()).toBe("one");
    expect(from.decode(v2).toString()).toBe("two");
    expect(from.formatOf(fernetToken("f"))).toBe("fernet");
    expect(from.formatOf(v1)).toBe("versioned");
    expect(from.formatOf("plain")).toBeUndefined();
    expect(codeOf(() => from.decode("plain"))).toBe("ENVELOPE_LEGACY_UNRECOGNIZED");
  });

  it("every error code the README lists is in docs/ERRORS.md, and every code the package throws is in the README", () => {
    const errorsMd = readFileSync(new URL("../../../docs/ERRORS.md", import.meta.url), "utf8");
    const section = README.slice(README.indexOf("## Errors"), README.indexOf("## Throughput"));
    const listed = new Set(section.match(/ENVELOPE_[A-Z_]+/g));
    for (const code of listed) expect(errorsMd).toContain(`\`${code}\``);
    const src = [
      "decoder",
      "errors",
      "record-value",
      "formats/cbc",
      "formats/fernet",
      "formats/fernet-key",
      "formats/gcm-json",
      "formats/mixed",
      "formats/pgcrypto",
      "formats/versioned",
      "keys/aws-secrets-manager",
      "keys/key-input",
      "keys/secret-source",
      "keys/static-key",
      "keys/vault-kv",
    ]
      .map((f) => readFileSync(new URL(`../src/${f}.ts`, import.meta.url), "utf8"))
      .join("\n");
    const thrown = new Set(src.match(/"ENVELOPE_[A-Z_]+"/g)?.map((s) => s.slice(1, -1)));
    for (const code of thrown) expect([...listed], code).toContain(code);
  });
});
