/**
 * Envelope quickstart: local RSA master key + embedded PostgreSQL (PGlite).
 *
 * Stores sample PII encrypted, reads it back, rotates to a new key by rewrapping every
 * value (ciphertext bodies stay byte-identical), retires the old key, and shows that
 * every record still opens. Run with `pnpm demo` from the repository root.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import {
  createEnvelope,
  decodeEnvelope,
  type Envelope,
  EnvelopeError,
  fromText,
} from "@envelope/core";
import { generateKeyPair } from "@envelope/local-rsa";

const KEY_DIR = resolve(import.meta.dirname, "../.keys");
const KEY_FILE = join(KEY_DIR, "demo-key.pem");

const USERS = [
  { id: 1, email: "alice@example.com", phone: "+1 415 555 0101", ssn: "078-05-1120" },
  { id: 2, email: "bob@example.org", phone: "+44 20 7946 0958", ssn: "219-09-9999" },
  { id: 3, email: "chloé@example.fr", phone: "+33 1 23 45 67 89", ssn: "457-55-5462" },
  { id: 4, email: "dmitri@example.net", phone: "+49 30 901820", ssn: "123-45-6789" },
  { id: 5, email: "eun-ji@example.kr", phone: "+82 2 312 3456", ssn: "987-65-4320" },
];
const FIELDS = ["email", "phone", "ssn"] as const;
type Field = (typeof FIELDS)[number];

// The context binds each value to its row and column: a value copied elsewhere won't open.
const contextOf = (id: number, column: Field) => ({ table: "users", column, id: String(id) });

const timings: [string, number][] = [];
async function step<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await work();
  timings.push([label, performance.now() - started]);
  return result;
}
const log = (text = "") => console.log(text);
const short = (text: string, n = 48) => (text.length > n ? `${text.slice(0, n)}…` : text);

async function main(): Promise<void> {
  log("Envelope demo: local RSA master key + embedded PostgreSQL (PGlite)\n");

  // 1. A master key: generated once into a git-ignored folder, reused on later runs.
  let firstRun = false;
  if (!existsSync(KEY_FILE)) {
    mkdirSync(KEY_DIR, { recursive: true, mode: 0o700 });
    await step("generate RSA-3072 key", () => generateKeyPair({ dir: KEY_DIR, name: "demo-key" }));
    firstRun = true;
  }
  const envelope = await createEnvelope({ encrypt: `local-rsa://${KEY_FILE}` });
  const [oldKey] = envelope.describe().encrypt;
  log(`1. Master key ${firstRun ? "generated" : "loaded"}: ${KEY_FILE}`);
  log(`   provider:key = ${oldKey} (a fingerprint of the public key, never the key)\n`);

  // 2. Store PII encrypted. email is a text column (ev1: form); phone and ssn are bytea.
  const db = new PGlite();
  await db.exec(
    `CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, phone bytea NOT NULL, ssn bytea NOT NULL)`,
  );
  await step(`encrypt + insert ${USERS.length} users`, async () => {
    for (const user of USERS) {
      await db.query("INSERT INTO users (id, email, phone, ssn) VALUES ($1, $2, $3, $4)", [
        user.id,
        await envelope.encrypt(user.email, {
          context: contextOf(user.id, "email"),
          output: "text",
        }),
        await envelope.encrypt(user.phone, { context: contextOf(user.id, "phone") }),
        await envelope.encrypt(user.ssn, { context: contextOf(user.id, "ssn") }),
      ]);
    }
  });
  const stored = await db.query<{ id: number; email: string; ssn: Uint8Array }>(
    "SELECT id, email, ssn FROM users ORDER BY id LIMIT 2",
  );
  log(
    `2. Stored ${USERS.length} users; every email, phone and SSN has its own data key. In the table:`,
  );
  for (const row of stored.rows) {
    log(`   id=${row.id} email=${short(row.email)} ssn=<${row.ssn.length} bytes>`);
  }
  log();

  // 3. Read back.
  const readBack = await step("read + decrypt all users", () => readAll(db, envelope));
  log("3. Read back and decrypted (sample data, so printing it is fine here):");
  for (const user of readBack)
    log(`   id=${user.id} ${user.email.padEnd(20)} ${user.phone.padEnd(18)} ${user.ssn}`);
  const allMatch = readBack.every((u, i) => FIELDS.every((f) => u[f] === USERS[i]![f]));
  log(
    `   all ${USERS.length * FIELDS.length} values match the originals: ${allMatch ? "yes" : "NO"}\n`,
  );

  // 4. A ciphertext copied to another row is refused.
  const bob = await db.query<{ ssn: Uint8Array }>("SELECT ssn FROM users WHERE id = 2");
  try {
    await envelope.decrypt(bob.rows[0]!.ssn, { context: contextOf(1, "ssn") });
    log("4. UNEXPECTED: bob's SSN opened as alice's");
  } catch (error) {
    log(`4. Bob's SSN pasted into alice's row is refused: ${(error as EnvelopeError).code}\n`);
  }

  // 5. Rotate: a new key; rewrap every value. Only the wrapped data keys change.
  const rotationDir = mkdtempSync(join(tmpdir(), "envelope-demo-"));
  try {
    const next = await generateKeyPair({ dir: rotationDir, name: "next-key" });
    const nextUri = `local-rsa://${next.privateKeyPath}`;
    const rotating = await createEnvelope({
      encrypt: nextUri,
      decrypt: [`local-rsa://${KEY_FILE}`],
    });
    const [newKey] = rotating.describe().encrypt;
    const before = await bodies(db);
    const rewrapped = await step("rewrap every value to the new key", () =>
      rewrapAll(db, rotating),
    );
    const after = await bodies(db);
    const identical = [...before].filter(([k, body]) => after.get(k)?.equals(body)).length;
    log(`5. New key ${newKey}; rewrapped ${rewrapped} values.`);
    log(`   ciphertext bodies byte-identical before/after: ${identical}/${before.size}\n`);

    // 6. Retire the old key: a client that knows only the new key opens everything.
    const retired = await createEnvelope({ encrypt: nextUri });
    const afterRotation = await step("read with the new key only", () => readAll(db, retired));
    const stillMatch = afterRotation.every((u, i) => FIELDS.every((f) => u[f] === USERS[i]![f]));
    log(
      `6. Old key retired. With only ${newKey} configured, all records open: ${stillMatch ? "yes" : "NO"}`,
    );
    try {
      await readAll(db, envelope);
      log("   UNEXPECTED: the old key still opens rewrapped data");
    } catch (error) {
      log(`   The old key alone no longer opens them: ${(error as EnvelopeError).code}\n`);
    }
    if (!allMatch || !stillMatch || identical !== before.size) process.exitCode = 1;
  } finally {
    rmSync(rotationDir, { recursive: true, force: true });
    await db.close();
  }

  log("Timings:");
  for (const [label, ms] of timings) log(`   ${label.padEnd(36)} ${ms.toFixed(1).padStart(8)} ms`);
  const stats = envelope.cacheStats();
  const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  log(
    `\nUnwrap cache of the first client: ${count(stats.hits, "hit", "hits")}, ${count(stats.misses, "miss", "misses")}.`,
  );
  log(
    "The rotation key lived in a temporary folder and was deleted; the demo key stays in examples/quickstart/.keys/.",
  );
}

async function readAll(db: PGlite, envelope: Envelope) {
  const { rows } = await db.query<{
    id: number;
    email: string;
    phone: Uint8Array;
    ssn: Uint8Array;
  }>("SELECT id, email, phone, ssn FROM users ORDER BY id");
  return Promise.all(
    rows.map(async (row) => ({
      id: row.id,
      email: await envelope.decrypt(row.email, { context: contextOf(row.id, "email"), as: "text" }),
      phone: await envelope.decrypt(row.phone, { context: contextOf(row.id, "phone"), as: "text" }),
      ssn: await envelope.decrypt(row.ssn, { context: contextOf(row.id, "ssn"), as: "text" }),
    })),
  );
}

async function rewrapAll(db: PGlite, envelope: Envelope): Promise<number> {
  const { rows } = await db.query<{
    id: number;
    email: string;
    phone: Uint8Array;
    ssn: Uint8Array;
  }>("SELECT id, email, phone, ssn FROM users ORDER BY id");
  let count = 0;
  for (const row of rows) {
    // No `to`: rewrap onto this client's encrypting key (the new one).
    const [email, phone, ssn] = await Promise.all(
      FIELDS.map((f) => envelope.rewrap(row[f], { context: contextOf(row.id, f) })),
    );
    // Compare-and-swap: only replace the values we read, so a concurrent write would win.
    await db.query(
      "UPDATE users SET email = $2, phone = $3, ssn = $4 WHERE id = $1 AND email = $5",
      [row.id, email, phone, ssn, row.email],
    );
    count += FIELDS.length;
  }
  return count;
}

async function bodies(db: PGlite): Promise<Map<string, Buffer>> {
  const { rows } = await db.query<{
    id: number;
    email: string;
    phone: Uint8Array;
    ssn: Uint8Array;
  }>("SELECT id, email, phone, ssn FROM users");
  const out = new Map<string, Buffer>();
  for (const row of rows) {
    for (const f of FIELDS) {
      const value = row[f];
      const parts = decodeEnvelope(typeof value === "string" ? fromText(value) : value);
      out.set(`${row.id}.${f}`, Buffer.from(parts.body));
    }
  }
  return out;
}

main().catch((error) => {
  console.error(EnvelopeError.isInstance(error) ? `${error.code}: ${error.message}` : error);
  process.exit(1);
});
