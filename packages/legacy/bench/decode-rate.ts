/**
 * Legacy decode cost alone (no engine, no writes): values decoded per second per format.
 *   node --import tsx packages/legacy/bench/decode-rate.ts [values] [concurrency]
 * Legacy data made as in migrate-100k.ts; pgcrypto decodes through PostgreSQL with
 * `concurrency` queries in flight. Not a test: figures depend on the machine's load.
 */
import { createCipheriv, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import {
  type AnyLegacyDecoder,
  cbcDecoder,
  fernetDecoder,
  gcmJsonDecoder,
  pgcryptoDecoder,
  versionedDecoder,
} from "@envelope/legacy";
import pg from "pg";

const fernet = createRequire(import.meta.url)("fernet");
const n = Number(process.argv[2] ?? 20_000);
const concurrency = Number(process.argv[3] ?? 8);
const url = process.env.BATCH_REWRAP_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const key = randomBytes(32);
const fernetKey = randomBytes(32);
const passphrase = randomBytes(12).toString("hex");
const email = (i: number) => `user${i}@example.com`;
const gcm = (t: string) => {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv);
  const e = Buffer.concat([c.update(t), c.final()]);
  return JSON.stringify({
    iv: iv.toString("hex"),
    authTag: c.getAuthTag().toString("hex"),
    encrypted: e.toString("hex"),
  });
};
const cbc = (t: string) => {
  const iv = randomBytes(16);
  const c = createCipheriv("aes-256-cbc", key, iv);
  return `${iv.toString("hex")}:${Buffer.concat([c.update(t), c.final()]).toString("hex")}`;
};
const token = new fernet.Token({ secret: new fernet.Secret(fernetKey.toString("base64url")) });

const pool = new pg.Pool({ connectionString: url, max: concurrency });
await pool.query("CREATE EXTENSION IF NOT EXISTS pgcrypto");
const pgp = (
  await pool.query(
    "SELECT pgp_sym_encrypt('user' || i || '@example.com', $1) AS v FROM generate_series(1, $2::int) AS i",
    [passphrase, n],
  )
).rows.map((r) => r.v as Buffer);

const cases: [string, AnyLegacyDecoder, (i: number) => string | Buffer][] = [
  ["aes-256-gcm-json", gcmJsonDecoder(key), (i) => gcm(email(i))],
  ["aes-256-cbc", cbcDecoder(key), (i) => cbc(email(i))],
  ["fernet", fernetDecoder([randomBytes(32), fernetKey]), (i) => token.encode(email(i))],
  [
    "versioned",
    versionedDecoder({ versions: { "1": cbcDecoder(key), "2": gcmJsonDecoder(key) } }),
    (i) => (i % 2 ? `v1:${cbc(email(i))}` : `v2:${gcm(email(i))}`),
  ],
  ["pgcrypto", pgcryptoDecoder({ pool, passphrase }), (i) => pgp[i]!],
];
try {
  for (const [format, decoder, make] of cases) {
    const values = Array.from({ length: n }, (_, i) => make(i));
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < values.length) (await decoder.decode(values[next++]!)).fill(0);
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(
      `${JSON.stringify({ format, values: n, decodesPerSecond: Math.round(n / seconds) })}\n`,
    );
  }
} finally {
  await pool.end();
}
