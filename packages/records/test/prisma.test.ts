import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, createRecordCipher, prismaEncryption } from "../src/index.js";
import { type Client, dropAll, prismaOn, type Row, USER_MODEL } from "./prisma-support.js";
import {
  counted,
  dumpContains,
  envelopeWith,
  INDEX_KEY_1,
  PG_SCHEMA,
  pool,
  usePgSchema,
  watchedUnwraps,
} from "./support.js";

usePgSchema();

// The client and its tables are made by prismaOn in this file's own schema (PG_SCHEMA), the
// one this file's plain SQL reads through its search path.
const db = pool();
const kms = counted();
const envelope = envelopeWith(kms);
const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
let base: Client;
let prisma: Client;

beforeAll(async () => {
  base = await prismaOn(db, PG_SCHEMA, []);
  prisma = base.$extends(
    prismaEncryption({
      envelope,
      blindIndex,
      models: {
        User: USER_MODEL,
        Note: { table: "records_prisma_notes", encrypted: ["body"] },
      },
    }),
  );
}, 120_000);

afterAll(async () => {
  await base?.$disconnect();
  await dropAll(db, PG_SCHEMA);
  await db.end();
});

describe("Prisma client extension (Prisma 7 + @prisma/adapter-pg, real PostgreSQL)", () => {
  it("create seals (one KMS call), results and find* come back in plaintext", async () => {
    const id = randomUUID();
    kms.reset();
    const created = await prisma.user.create({
      data: { id, email: "Mia@Example.com", phone: "+49 30", ssn: "123-45-6789", name: "Mia" },
    });
    expect(kms.calls.wrap).toBe(1);
    expect(created).toEqual({
      id,
      email: "Mia@Example.com",
      email_idx: blindIndex.index("email", "records_prisma_users", "mia@example.com", {
        normalize: "email",
      }),
      phone: "+49 30",
      ssn: "123-45-6789",
      name: "Mia",
    });
    for (const secret of ["Mia@Example", "mia@example", "+49 30", "123-45-6789"]) {
      expect(await dumpContains(db, "records_prisma_users", secret)).toBe(false);
    }
    const raw = await base.user.findUnique({ where: { id } });
    expect(String(raw?.email)).toMatch(/^ev1:/);
    expect(await prisma.user.findUnique({ where: { id } })).toEqual(created);
    expect(await prisma.user.findMany({ where: { name: "Mia" } })).toEqual([created]);
  });

  it("where on a blind-indexed field finds by index, normalized", async () => {
    const id = randomUUID();
    await prisma.user.create({ data: { id, email: "leo@x.io", name: "Leo" } });
    expect((await prisma.user.findFirst({ where: { email: "  LEO@x.io" } }))?.id).toBe(id);
    expect(await prisma.user.findMany({ where: { email: { equals: "leo@X.io" } } })).toHaveLength(
      1,
    );
    expect(await prisma.user.findFirst({ where: { email: "nobody@x.io" } })).toBeNull();
    await expect(
      prisma.user.findFirstOrThrow({ where: { email: "nobody@x.io" } }),
    ).rejects.toThrow();
    await expect(prisma.user.findMany({ where: { phone: "1" } })).rejects.toThrow(/blind index/);
  });

  it("update re-seals only the changed field with no KMS call, and moves the index", async () => {
    const id = randomUUID();
    await prisma.user.create({ data: { id, email: "old@x.io", phone: "1", ssn: "2" } });
    const before = await base.user.findUnique({ where: { id } });
    kms.reset();
    const updated = await prisma.user.update({ where: { id }, data: { phone: { set: "3" } } });
    expect(kms.calls).toEqual({ wrap: 0, unwrap: 0, generateDataKey: 0 });
    expect(updated).toMatchObject({ email: "old@x.io", phone: "3", ssn: "2" });
    const after = await base.user.findUnique({ where: { id } });
    expect(after?.email).toBe(before?.email);
    expect(after?.phone).not.toBe(before?.phone);
    await prisma.user.update({ where: { id }, data: { email: "new@x.io" } });
    expect(await prisma.user.findFirst({ where: { email: "old@x.io" } })).toBeNull();
    expect((await prisma.user.findFirst({ where: { email: "NEW@x.io" } }))?.id).toBe(id);
  });

  it("a cold client (new envelope, empty unwrap cache) opens with one unwrap per record", async () => {
    const id = randomUUID();
    await prisma.user.create({ data: { id, email: "cold@x.io", phone: "5", ssn: "6" } });
    const cold = base.$extends(
      prismaEncryption({
        envelope: envelopeWith(kms),
        blindIndex,
        models: {
          User: {
            table: "records_prisma_users",
            encrypted: ["email", "phone", "ssn"],
            blindIndexes: { email: { normalize: "email" } },
          },
        },
      }),
    );
    kms.reset();
    expect(await cold.user.findUnique({ where: { id } })).toMatchObject({ phone: "5", ssn: "6" });
    expect(kms.calls.unwrap).toBe(1);
  });

  it("findMany opens through openMany: one unwrap per record, the `concurrency` option; a bad row fails the read", async () => {
    const name = `list-${randomUUID()}`;
    const ids = Array.from({ length: 24 }, () => randomUUID());
    await prisma.user.createMany({
      data: ids.map((id, i) => ({ id, email: `list${i}@x.io`, phone: `${i}`, name })),
    });
    const watched = watchedUnwraps(kms, 5);
    const cold = base.$extends(
      prismaEncryption({
        envelope: envelopeWith(watched.provider),
        blindIndex,
        concurrency: 4,
        models: {
          User: {
            table: "records_prisma_users",
            encrypted: ["email", "phone", "ssn"],
            blindIndexes: { email: { normalize: "email" } },
          },
        },
      }),
    );
    const found = await cold.user.findMany({
      where: { name },
      select: { email: true, phone: true },
    });
    expect(found.map((u) => u.phone).sort()).toEqual(ids.map((_, i) => `${i}`).sort());
    expect(found.every((u) => !("id" in u) && String(u.email).endsWith("@x.io"))).toBe(true);
    expect(watched.seen.unwraps).toBe(24);
    expect(watched.seen.max).toBeGreaterThan(1);
    expect(watched.seen.max).toBeLessThanOrEqual(4);
    // A select of plain fields only needs no id and opens nothing (it used to be refused).
    expect(await cold.user.findMany({ where: { name }, select: { name: true } })).toEqual(
      ids.map(() => ({ name })),
    );
    const [first] = await cold.user.findMany({ where: { name }, omit: { id: true }, take: 1 });
    expect(first).toMatchObject({ email: expect.stringMatching(/^list\d+@x\.io$/) });
    expect(first).not.toHaveProperty("id");
    // A blind-index findMany opens its candidates once and returns them opened.
    expect(await cold.user.findMany({ where: { email: "LIST3@x.io" } })).toMatchObject([
      { id: ids[3], email: "list3@x.io", phone: "3" },
    ]);
    await db.query(
      "UPDATE records_prisma_users SET phone = (SELECT phone FROM records_prisma_users WHERE id = $1) WHERE id = $2",
      [ids[0], ids[1]],
    );
    await expect(cold.user.findMany({ where: { name } })).rejects.toMatchObject({
      code: "ENVELOPE_DECRYPT_FAILED",
    });
    await db.query("DELETE FROM records_prisma_users WHERE name = $1", [name]);
  });

  it("select without the id still opens; createMany, upsert, delete; updateMany is refused", async () => {
    const id = randomUUID();
    await prisma.user.create({ data: { id, email: "sel@x.io", phone: "7" } });
    expect(await prisma.user.findUnique({ where: { id }, select: { phone: true } })).toEqual({
      phone: "7",
    });
    const a = randomUUID();
    const b = randomUUID();
    await prisma.user.createMany({
      data: [
        { id: a, email: "a@x.io" },
        { id: b, email: "b@x.io" },
      ],
    });
    expect((await prisma.user.findUnique({ where: { id: b } }))?.email).toBe("b@x.io");
    await prisma.user.upsert({
      where: { id: a },
      create: { id: a, email: "no@x.io" },
      update: { ssn: "9" },
    });
    await prisma.user.upsert({
      where: { id: "fresh" },
      create: { id: "fresh", email: "fresh@x.io" },
      update: {},
    });
    expect(await prisma.user.findUnique({ where: { id: a } })).toMatchObject({
      email: "a@x.io",
      ssn: "9",
    });
    expect((await prisma.user.findUnique({ where: { id: "fresh" } }))?.email).toBe("fresh@x.io");
    expect((await prisma.user.delete({ where: { id: b } })).email).toBe("b@x.io");
    await expect(prisma.user.updateMany({ data: { phone: "x" } })).rejects.toThrow(/one by one/);
    expect(await prisma.user.count()).toBeGreaterThan(0);
  });

  it("a swapped value between rows fails to open", async () => {
    const x = randomUUID();
    const y = randomUUID();
    await prisma.user.create({ data: { id: x, email: "x@x.io", ssn: "1" } });
    await prisma.user.create({ data: { id: y, email: "y@x.io", ssn: "2" } });
    await db.query(
      "UPDATE records_prisma_users SET ssn = (SELECT ssn FROM records_prisma_users WHERE id = $1) WHERE id = $2",
      [x, y],
    );
    await expect(prisma.user.findUnique({ where: { id: y } })).rejects.toMatchObject({
      code: "ENVELOPE_DECRYPT_FAILED",
    });
  });

  it("a whole-record update (another process's data key) is a compare-and-swap: a concurrent write survives", async () => {
    const id = randomUUID();
    await prisma.user.create({ data: { id, email: "cas@x.io", phone: "1", ssn: "2" } });
    // Another process (its own Envelope) whose first read of the row is followed, before
    // its write, by a write of this process to another encrypted field.
    let interleaved = false;
    const hooked = new Proxy(base, {
      get(target, key) {
        if (key !== "user") return Reflect.get(target, key);
        return {
          ...target.user,
          findUnique: async (args: Row) => {
            const row = await target.user.findUnique(args);
            if (!interleaved) {
              interleaved = true;
              await prisma.user.update({ where: { id }, data: { ssn: "9" } });
            }
            return row;
          },
        };
      },
    }) as Client;
    const other = prismaEncryption({
      envelope: envelopeWith(kms),
      blindIndex,
      models: {
        User: {
          table: "records_prisma_users",
          encrypted: ["email", "phone", "ssn"],
          blindIndexes: { email: { normalize: "email" } },
        },
      },
    })(hooked);
    kms.reset();
    const updated = await other.user.update({ where: { id }, data: { phone: "3" } });
    expect(interleaved).toBe(true);
    // The first attempt matched nothing (ssn changed meanwhile); the second re-read it.
    expect(updated).toMatchObject({ email: "cas@x.io", phone: "3", ssn: "9" });
    expect(await prisma.user.findUnique({ where: { id } })).toMatchObject({
      phone: "3",
      ssn: "9",
    });
    // Each attempt moved the record to a fresh key of the other process: two wraps.
    expect(kms.calls.wrap).toBe(2);
  });

  it("update of a missing row is Prisma's own P2025, and no plaintext reaches the query", async () => {
    // A spy between the extension and Prisma: what the extension hands on is what Prisma
    // would write if the row appeared between the read and the write.
    const sent: unknown[] = [];
    const spy = {
      name: "spy",
      query: {
        $allModels: {
          async $allOperations({
            operation,
            args,
            query,
          }: {
            operation: string;
            args: Row;
            query: (args: Row) => Promise<unknown>;
          }) {
            if (operation === "update") sent.push(args.data);
            if (operation === "upsert") sent.push(args.create, args.update);
            return query(args);
          },
        },
      },
    };
    // Prisma runs query extensions in the order they were added: ours, then the spy.
    const guarded = base
      .$extends(
        prismaEncryption({
          envelope,
          blindIndex,
          models: {
            User: { table: "records_prisma_users", encrypted: ["email", "phone", "ssn"] },
          },
        }),
      )
      .$extends(spy);
    const id = randomUUID();
    await expect(
      guarded.user.update({ where: { id }, data: { ssn: "078-05-1120", name: "N" } }),
    ).rejects.toMatchObject({ code: "P2025" });
    // An upsert of a missing row: the update branch (taken should the row appear
    // meanwhile) holds no plaintext either.
    const created = await guarded.user.upsert({
      where: { id },
      create: { id, ssn: "219-09-9999" },
      update: { ssn: "078-05-1120", name: "N" },
    });
    expect(created).toMatchObject({ id, ssn: "219-09-9999" });
    expect(sent.length).toBe(3);
    expect(JSON.stringify(sent)).not.toContain("078-05-1120");
    expect(JSON.stringify(sent)).not.toContain("219-09-9999");
  });

  it("an autoincrement id must be reserved before create (documented), then works", async () => {
    await expect(prisma.note.create({ data: { body: "hi" } })).rejects.toMatchObject({
      code: "ENVELOPE_BAD_INPUT",
    });
    const { rows } = await db.query(
      "SELECT nextval(pg_get_serial_sequence('records_prisma_notes', 'id'))::int AS id",
    );
    const note = await prisma.note.create({ data: { id: rows[0].id, body: "hi" } });
    expect(note).toEqual({ id: rows[0].id, body: "hi", name: null });
    // The same envelopes open with the plain record cipher (same table/column/id context).
    const stored = (await db.query("SELECT * FROM records_prisma_notes")).rows[0];
    const notes = createRecordCipher(envelope, {
      table: "records_prisma_notes",
      encrypted: ["body"],
    });
    expect(await notes.open(stored)).toEqual({ id: rows[0].id, body: "hi", name: null });
  });
});
