/**
 * Issue 11 item 10: every name and id the package accepts has a documented limit, and a
 * longer one is a typed error that names the limit, never a RangeError (a 70,000-character
 * table name used to throw one from the blind index key derivation).
 */
import { randomBytes } from "node:crypto";
import { EnvelopeError } from "@envelope/core";
import { drizzle } from "drizzle-orm/node-postgres";
import { pgTable, text } from "drizzle-orm/pg-core";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { encryptedRepository, encryptedText } from "../src/drizzle.js";
import {
  blindIndexKeysFrom,
  createBlindIndexer,
  createRecordCipher,
  encryptedPg,
  prismaEncryption,
} from "../src/index.js";
import { counted, envelopeWith } from "./support.js";

const envelope = envelopeWith(counted());
const blindIndex = createBlindIndexer({ keys: randomBytes(32) });
const cipher = createRecordCipher(
  envelope,
  { table: "t", encrypted: ["a"], blindIndexes: { a: {} } },
  { blindIndex },
);
/**
 * A Queryable that only answers encryptedPg's check of the table's columns (it reads no
 * row): the bad name is refused before any other SQL.
 */
const noDb = {
  query: async (text: string) => {
    if (text === 'SELECT * FROM "t" WHERE false') {
      return { rows: [], fields: ["id", "a", "a_idx"].map((name) => ({ name })) };
    }
    throw new Error("no query may run");
  },
};

const LONG: [string, string][] = [
  ["256 ASCII characters", "n".repeat(256)],
  ["128 two-byte characters (256 bytes)", "é".repeat(128)],
  ["86 three-byte characters (258 bytes)", "€".repeat(86)],
  ["70,000 characters", "x".repeat(70_000)],
  ["1,000,000 characters", "y".repeat(1_000_000)],
];
const NAME_LIMIT = /limit is 255 bytes/;
const ID_LIMIT = /8192 bytes/;

type Case = [string, (name: string) => unknown, string, RegExp];
const cases: Case[] = [
  [
    "schema.table",
    (n) => createRecordCipher(envelope, { table: n, encrypted: ["a"] }),
    "ENVELOPE_BAD_CONFIG",
    NAME_LIMIT,
  ],
  [
    "schema.table with a blind index",
    (n) =>
      createRecordCipher(
        envelope,
        { table: n, encrypted: ["a"], blindIndexes: { a: {} } },
        { blindIndex },
      ),
    "ENVELOPE_BAD_CONFIG",
    NAME_LIMIT,
  ],
  [
    "schema.idField",
    (n) => createRecordCipher(envelope, { table: "t", idField: n, encrypted: ["a"] }),
    "ENVELOPE_BAD_CONFIG",
    NAME_LIMIT,
  ],
  [
    "schema.encrypted[]",
    (n) => createRecordCipher(envelope, { table: "t", encrypted: ["a", n] }),
    "ENVELOPE_BAD_CONFIG",
    NAME_LIMIT,
  ],
  [
    "schema.blindIndexes[field] (long field)",
    (n) =>
      createRecordCipher(
        envelope,
        { table: "t", encrypted: [n], blindIndexes: { [n]: {} } },
        { blindIndex },
      ),
    "ENVELOPE_BAD_CONFIG",
    NAME_LIMIT,
  ],
  [
    "schema.blindIndexes[field].column",
    (n) =>
      createRecordCipher(
        envelope,
        { table: "t", encrypted: ["a"], blindIndexes: { a: { column: n } } },
        { blindIndex },
      ),
    "ENVELOPE_BAD_CONFIG",
    NAME_LIMIT,
  ],
  [
    "blindIndexer.index table",
    (n) => blindIndex.index("f", n, "v"),
    "ENVELOPE_BAD_INPUT",
    NAME_LIMIT,
  ],
  [
    "blindIndexer.index field",
    (n) => blindIndex.index(n, "t", "v"),
    "ENVELOPE_BAD_INPUT",
    NAME_LIMIT,
  ],
  [
    "blindIndexer.candidates table",
    (n) => blindIndex.candidates("f", n, "v"),
    "ENVELOPE_BAD_INPUT",
    NAME_LIMIT,
  ],
  [
    "blindIndexer.candidates field",
    (n) => blindIndex.candidates(n, "t", "v"),
    "ENVELOPE_BAD_INPUT",
    NAME_LIMIT,
  ],
  [
    "cipher.openField field",
    (n) => cipher.openField({ id: "1" }, n as "a"),
    "ENVELOPE_BAD_INPUT",
    /not an encrypted field/,
  ],
  [
    "cipher.indexFor field",
    (n) => cipher.indexFor(n as "a", "v"),
    "ENVELOPE_BAD_INPUT",
    /not an encrypted field/,
  ],
  [
    "encryptedPg table argument",
    (n) => encryptedPg(noDb, cipher).findById(n, 1),
    "ENVELOPE_BAD_INPUT",
    /No record cipher/,
  ],
  [
    "encryptedPg schema-qualified table",
    (n) => encryptedPg(noDb, createRecordCipher(envelope, { table: `app.${n}`, encrypted: ["a"] })),
    "ENVELOPE_BAD_CONFIG",
    NAME_LIMIT,
  ],
  [
    "encryptedPg record key (column)",
    (n) => encryptedPg(noDb, cipher).insert("t", { id: "1", a: "v", [n]: "x" }),
    "ENVELOPE_BAD_INPUT",
    NAME_LIMIT,
  ],
  [
    "encryptedPg update key (column)",
    (n) =>
      encryptedPg({ query: async () => ({ rows: [{ id: "1", a: null }] }) }, cipher).update(
        "t",
        "1",
        { [n]: "x" },
      ),
    "ENVELOPE_BAD_INPUT",
    NAME_LIMIT,
  ],
  [
    "prismaEncryption model name",
    (n) => prismaEncryption({ envelope, models: { [n]: { encrypted: ["a"] } } }),
    "ENVELOPE_BAD_CONFIG",
    NAME_LIMIT,
  ],
  [
    "prismaEncryption models[].table",
    (n) => prismaEncryption({ envelope, models: { User: { encrypted: ["a"], table: n } } }),
    "ENVELOPE_BAD_CONFIG",
    NAME_LIMIT,
  ],
  [
    "encryptedRepository Drizzle table name",
    (n) =>
      encryptedRepository(
        drizzle(new pg.Pool({ max: 1 })),
        pgTable(n, { id: text("id").primaryKey(), a: encryptedText("a"), a_idx: text("a_idx") }),
        cipher,
      ),
    "ENVELOPE_BAD_CONFIG",
    NAME_LIMIT,
  ],
];

async function failure(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe("names longer than 255 bytes are typed errors naming the limit", () => {
  for (const [what, call, code, limit] of cases) {
    it.each(LONG)(`${what}: %s`, async (_, name) => {
      const error = await failure(() => call(name));
      expect(EnvelopeError.isInstance(error), String(error)).toBe(true);
      expect(error).toMatchObject({ code });
      const message = (error as Error).message;
      expect(message).toMatch(limit);
      // The name is shown cut, never whole.
      expect(message.length).toBeLessThan(600);
    });
  }

  it("a name of exactly 255 bytes is accepted everywhere, table and field together too", async () => {
    const n = `${"é".repeat(127)}n`; // 255 bytes
    const m = "m".repeat(255);
    const users = createRecordCipher(
      envelope,
      {
        table: n,
        idField: m.slice(1),
        encrypted: [m],
        blindIndexes: { [m]: { column: `${n.slice(1)}` } },
      },
      { blindIndex },
    );
    const row = await users.seal({ [m.slice(1)]: "1", [m]: "v" });
    expect(await users.open(row)).toMatchObject({ [m]: "v" });
    expect(blindIndex.index(m, n, "v")).toMatch(/^[0-9a-f]{8}$/);
  });

  it("a name with an unpaired surrogate is refused (it would collide with U+FFFD in UTF-8)", () => {
    expect(() => blindIndex.index("f", "t\ud800", "v")).toThrow(/unpaired surrogate/);
    expect(() => createRecordCipher(envelope, { table: "t\udfff", encrypted: ["a"] })).toThrow(
      /unpaired surrogate/,
    );
  });
});

describe("record ids longer than the context value limit are typed errors naming it", () => {
  const users = createRecordCipher(envelope, { table: "t", encrypted: ["a"] });
  const ids: [string, string][] = [
    ["8193 ASCII characters", "1".repeat(8193)],
    ["4097 two-byte characters (8194 bytes)", "é".repeat(4097)],
    ["70,000 characters", "x".repeat(70_000)],
  ];
  it.each(ids)("seal, open, update: %s", async (_, id) => {
    for (const call of [
      () => users.seal({ id, a: "v" }),
      () => users.open({ id, a: null }),
      () => users.update({ id, a: null }, { a: "v" }),
    ]) {
      const error = await failure(call);
      expect(error).toMatchObject({ code: "ENVELOPE_BAD_INPUT" });
      expect((error as Error).message).toMatch(ID_LIMIT);
      expect((error as Error).message.length).toBeLessThan(600);
    }
  });

  it("an id of exactly 8192 bytes works", async () => {
    const id = "é".repeat(4096);
    expect(await users.open(await users.seal({ id, a: "v" }))).toMatchObject({ a: "v" });
  });
});

describe("key sources name long env variables and paths cut", () => {
  it.each(LONG)("blindIndexKeysFrom: %s", (_, name) => {
    for (const source of [{ env: name, environment: {} }, { file: `/nonexistent/${name}` }]) {
      let error: unknown;
      try {
        blindIndexKeysFrom(source);
      } catch (e) {
        error = e;
      }
      // An unreadable key file is ENVELOPE_BAD_KEY (docs/ERRORS.md); no keys in env, BAD_CONFIG.
      const code = "file" in source ? "ENVELOPE_BAD_KEY" : "ENVELOPE_BAD_CONFIG";
      expect(error).toMatchObject({ code });
      expect((error as Error).message.length).toBeLessThan(600);
    }
  });
});
