/**
 * Measures `migrateTable` throughput from each legacy format on PostgreSQL:
 *   node --import tsx packages/legacy/bench/migrate-100k.ts [rows] [formats] [concurrency]
 * formats: comma-separated, default plaintext,aes-256-gcm-json,aes-256-cbc,fernet,versioned,pgcrypto.
 * The target is a local-aes key, so the figures show the legacy decode plus the engine
 * (read, seal, self-check decrypt, CAS write), not a KMS round trip. Legacy data is made the
 * way the legacy apps made it: node:crypto for GCM JSON / CBC, the `fernet` npm package for
 * Fernet, the server's pgcrypto for pgp_sym_encrypt. Not a test: numbers depend on the
 * machine and its load. Prints one JSON line per format.
 */
import { createCipheriv, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { connect, dropStateTables, migrateTable, type SqlAdapter } from "@envelope/batch-rewrap";
import { Envelope, localAesProvider } from "@envelope/core";
import {
  type AnyLegacyDecoder,
  cbcDecoder,
  fernetDecoder,
  gcmJsonDecoder,
  pgcryptoDecoder,
  plaintextDecoder,
  versionedDecoder,
} from "@envelope/legacy";
import pg from "pg";

// The fernet package is CommonJS: loaded as the legacy Node apps load it.
const fernet = createRequire(import.meta.url)("fernet");

const rows = Number(process.argv[2] ?? 100_000);
const formats = (
  process.argv[3] ?? "plaintext,aes-256-gcm-json,aes-256-cbc,fernet,versioned,pgcrypto"
).split(",");
const concurrency = Number(process.argv[4] ?? 8);
const url = process.env.BATCH_REWRAP_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const key = randomBytes(32);
const fernetKey = randomBytes(32);
const passphrase = randomBytes(12).toString("hex");
const email = (i: number) => `user${i}@example.com`;

function gcm(text: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv);
  const enc = Buffer.concat([c.update(text), c.final()]);
  return JSON.stringify({
    iv: iv.toString("hex"),
    authTag: c.getAuthTag().toString("hex"),
    encrypted: enc.toString("hex"),
  });
}
function cbc(text: string): string {
  const iv = randomBytes(16);
  const c = createCipheriv("aes-256-cbc", key, iv);
  return `${iv.toString("hex")}:${Buffer.concat([c.update(text), c.final()]).toString("hex")}`;
}
const fernetToken = new fernet.Token({
  secret: new fernet.Secret(fernetKey.toString("base64url")),
});

const makers: Record<string, (i: number) => string> = {
  plaintext: email,
  "aes-256-gcm-json": (i) => gcm(email(i)),
  "aes-256-cbc": (i) => cbc(email(i)),
  fernet: (i) => fernetToken.encode(email(i)),
  versioned: (i) => (i % 2 ? `v1:${cbc(email(i))}` : `v2:${gcm(email(i))}`),
};

async function seed(db: SqlAdapter, pool: pg.Pool, table: string, format: string) {
  if (format === "pgcrypto") {
    await pool.query("CREATE EXTENSION IF NOT EXISTS pgcrypto");
    await pool.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, email BYTEA)`);
    await pool.query(
      `INSERT INTO ${table} SELECT i, pgp_sym_encrypt('user' || i || '@example.com', $1) FROM generate_series(1, $2::int) AS i`,
      [passphrase, rows],
    );
    return;
  }
  await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, email TEXT)`);
  for (let start = 1; start <= rows; start += 1000) {
    const ids = Array.from({ length: Math.min(1000, rows - start + 1) }, (_, i) => start + i);
    await db.query(
      `INSERT INTO ${table} (id, email) VALUES ${ids.map(() => "(?, ?)").join(", ")}`,
      ids.flatMap((id) => [id, makers[format]!(id)]),
    );
  }
}

function decoder(format: string, pool: pg.Pool): AnyLegacyDecoder {
  if (format === "plaintext") return plaintextDecoder();
  if (format === "aes-256-gcm-json") return gcmJsonDecoder(key);
  if (format === "aes-256-cbc") return cbcDecoder(key);
  if (format === "fernet") return fernetDecoder([randomBytes(32), fernetKey]); // 2nd key: MultiFernet
  if (format === "versioned")
    return versionedDecoder({ versions: { "1": cbcDecoder(key), "2": gcmJsonDecoder(key) } });
  if (format === "pgcrypto") return pgcryptoDecoder({ pool, passphrase });
  throw new Error(`unknown format ${format}`);
}

/** Runs `work` over `values` with `concurrency` in flight; values per second. */
async function rate<V>(values: readonly V[], work: (v: V) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < values.length) await work(values[next++]!);
    }),
  );
  return values.length / ((performance.now() - started) / 1000);
}

const db = await connect(url);
const pool = new pg.Pool({ connectionString: url, max: concurrency });
try {
  for (const format of formats) {
    const table = `legacy_bench_${format.replace(/-/g, "_")}_${process.pid}`;
    const prefix = `${table}_st`;
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    const seeded = performance.now();
    await seed(db, pool, table, format);
    const seedSeconds = (performance.now() - seeded) / 1000;
    try {
      const from = decoder(format, pool);
      const to = localAesProvider({ keys: randomBytes(32).toString("hex") });
      // The bounds, measured in this run on the stored values: the legacy decode alone, and
      // the per-value work of migrate in memory (decode, seal, self-check decrypt, compare).
      const stored = (await pool.query(`SELECT id, email FROM ${table}`)).rows as {
        id: number;
        email: string | Buffer;
      }[];
      const decodeRate = await rate(stored, async (r) => (await from.decode(r.email)).fill(0));
      const envelope = new Envelope({ encrypt: [to] });
      const sealRate = await rate(stored, async (r) => {
        const context = { table, column: "email", id: String(r.id) };
        const plaintext = await from.decode(r.email);
        const out = await envelope.encrypt(plaintext, { context, output: "text" });
        const back = await envelope.decrypt(out, { context, as: "bytes" });
        if (!back.equals(plaintext)) throw new Error("self-check failed");
        plaintext.fill(0);
        back.fill(0);
      });
      const report = await migrateTable({
        db,
        table,
        primaryKey: "id",
        columns: ["email"],
        to,
        from,
        apply: true,
        concurrency,
        stateTablePrefix: prefix,
      });
      process.stdout.write(
        `${JSON.stringify({
          format,
          rows,
          concurrency,
          migrated: report.run.rewrapped,
          complete: report.complete,
          seconds: Number((report.durationMs / 1000).toFixed(1)),
          rowsPerSecond: Math.round(report.rowsPerSecond),
          decodeAlonePerSecond: Math.round(decodeRate),
          decodeSealInMemoryPerSecond: Math.round(sealRate),
          migrateVsInMemory: Number((report.rowsPerSecond / sealRate).toFixed(2)),
          seedSeconds: Number(seedSeconds.toFixed(1)),
        })}\n`,
      );
    } finally {
      await db.query(`DROP TABLE IF EXISTS ${table}`);
      await dropStateTables(db, prefix);
    }
  }
} finally {
  await pool.end();
  await db.close();
}
