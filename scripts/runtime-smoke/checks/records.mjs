// @envelope/records: a record sealed under one data key, opened, found by blind index, and
// partially updated, through encryptedPg on embedded PGlite and on a real PostgreSQL server.
import { randomBytes } from "node:crypto";
import { Envelope, localAesProvider } from "@envelope/core";
import { createBlindIndexer, createRecordCipher, encryptedPg } from "@envelope/records";
import { check } from "../assert.mjs";

const PG_URL = process.env.ENVELOPE_SMOKE_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Inserts, finds and updates one user through `db` (pg.Pool or PGlite); drops its table. */
async function exercise(db) {
  const table = `envelope_smoke_${randomBytes(4).toString("hex")}`;
  const users = createRecordCipher(
    new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) }),
    { table, encrypted: ["email", "phone"], blindIndexes: { email: { normalize: "email" } } },
    { blindIndex: createBlindIndexer({ keys: randomBytes(32).toString("hex") }) },
  );
  await db.query(
    `CREATE TABLE ${table} (id serial PRIMARY KEY, email text, email_idx text, phone text, name text)`,
  );
  try {
    const repo = encryptedPg(db, users);
    const ann = await repo.insert(table, {
      email: "Ann@Example.invalid",
      phone: "+1 555 0100",
      name: "Ann",
    });
    check(
      typeof ann.id === "number" && ann.email === "Ann@Example.invalid",
      "insert returns the record opened",
    );
    const { rows } = await db.query(`SELECT email, phone FROM ${table}`);
    check(
      rows.every((r) => r.email.startsWith("ev1:") && r.phone.startsWith("ev1:")),
      "columns hold ev1: values only",
    );
    const found = await repo.findByBlindIndex(table, "email", "  ann@example.INVALID");
    check(found.length === 1 && found[0].phone === "+1 555 0100", "found by blind index");
    const updated = await repo.update(table, ann.id, { phone: "+1 555 0199" });
    check(updated.phone === "+1 555 0199" && updated.email === ann.email, "partial update");
  } finally {
    await db.query(`DROP TABLE IF EXISTS ${table}`);
  }
}

async function withPglite() {
  // .ci/runtimes sets it: its runtime tests cover encryptedPg on PGlite, and PGlite's start
  // (about 10 s on the CI machine) is the slowest part of the smoke.
  if (process.env.ENVELOPE_SMOKE_PGLITE === "off") return "skipped (ENVELOPE_SMOKE_PGLITE=off)";
  const { PGlite } = await import("@electric-sql/pglite");
  const db = new PGlite();
  try {
    await exercise(db);
  } finally {
    await db.close();
  }
}

async function withPostgres() {
  if (process.env.ENVELOPE_SMOKE_PG === "off") return "skipped (ENVELOPE_SMOKE_PG=off)";
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
  try {
    await exercise(pool);
  } finally {
    await pool.end();
  }
}

export const recordsChecks = [
  ["records: encryptedPg on PGlite (embedded)", withPglite],
  ["records: encryptedPg on PostgreSQL (pg)", withPostgres],
];
