import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, prismaEncryption } from "../src/index.js";
import { type Client, dropAll, prismaOn, type Row, schemaName } from "./prisma-support.js";
import { counted, envelopeWith, INDEX_KEY_1, pool, usePgSchema } from "./support.js";

// Its tables are in the schema prismaOn makes; this keeps anything else off public.
usePgSchema();

// Findings of a review of the Prisma extension, each a probe that leaked plaintext, gave a
// wrong result or refused a common pattern: compound unique keys, interactive transactions,
// read-modify-write, deep nesting, take/skip/distinct with a blind index lookup, orderBy.

const db = pool();
const schema = schemaName("prisma_review");
const log: string[] = [];
const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
const kms = counted();
const envelope = envelopeWith(kms);
let base: Client;
let prisma: Client;
const SECRETS = ["example.com"];

type Tx = { user: Client["user"]; post: Client["post"] };
const transaction = (run: (tx: Tx) => Promise<unknown>) =>
  (
    prisma as unknown as { $transaction(f: (tx: Tx) => Promise<unknown>): Promise<unknown> }
  ).$transaction(run);

beforeAll(async () => {
  base = await prismaOn(db, schema, log, { posts: true, nameEmailUnique: true });
  prisma = base.$extends(
    prismaEncryption({
      envelope,
      blindIndex,
      models: {
        User: {
          table: "records_prisma_users",
          encrypted: ["email", "phone"],
          blindIndexes: { email: { normalize: "email" } },
        },
      },
    }),
  );
}, 120_000);

afterAll(async () => {
  await base?.$disconnect();
  await dropAll(db, schema);
  await db.end();
});

const badInput = (message?: RegExp) =>
  expect.objectContaining({
    code: "ENVELOPE_BAD_INPUT",
    ...(message ? { message: expect.stringMatching(message) } : {}),
  });

describe("Prisma extension: review findings", () => {
  it("a compound unique key with an encrypted part is refused before any SQL", async () => {
    const id = randomUUID();
    await prisma.user.create({ data: { id, name: "Ann", email: "ann@example.com" } });
    const name_email = { name: "Ann", email: "ann@example.com" };
    const before = log.length;
    await expect(prisma.user.findUnique({ where: { name_email } })).rejects.toEqual(
      badInput(/compound unique key "name_email".*"email"/),
    );
    await expect(
      prisma.user.upsert({
        where: { name_email },
        create: { id: randomUUID(), name: "Ann", email: "ann@example.com" },
        update: { phone: "+1 555 0100" },
      }),
    ).rejects.toEqual(badInput(/compound unique key/));
    await expect(
      prisma.post.create({
        data: { id: randomUUID(), author: { connect: { name_email } } },
      }),
    ).rejects.toEqual(badInput(/compound unique key/));
    expect(log.length).toBe(before);
    expect(await prisma.user.count({ where: { name: "Ann" } })).toBe(1);
  });

  it("the extension's own reads run inside the caller's interactive transaction", async () => {
    const id = randomUUID();
    const found = await transaction(async (tx) => {
      await tx.user.create({ data: { id, name: "Tx", email: "tx@example.com" } });
      const first = await tx.user.findFirst({ where: { email: "tx@example.com" } });
      const updated = await tx.user.update({
        where: { id },
        data: { email: "tx2@example.com" },
      });
      const upserted = await tx.user.upsert({
        where: { id },
        create: { id, name: "never" },
        update: { email: "tx3@example.com", name: "Tx3" },
      });
      return { first, updated, upserted };
    });
    expect(found).toEqual({
      first: expect.objectContaining({ id, email: "tx@example.com" }),
      updated: expect.objectContaining({ id, email: "tx2@example.com" }),
      upserted: expect.objectContaining({ id, email: "tx3@example.com", name: "Tx3" }),
    });
    expect(await prisma.user.findUnique({ where: { id } })).toMatchObject({
      email: "tx3@example.com",
      name: "Tx3",
    });
    expect(await prisma.user.findFirst({ where: { email: "TX3@example.com" } })).toMatchObject({
      id,
    });
    // Outside a transaction (reads through the base client).
    await prisma.user.update({ where: { id }, data: { email: "tx4@example.com" } });
    expect((await prisma.user.findFirst({ where: { email: "tx4@example.com" } }))?.id).toBe(id);
  });

  it("read-modify-write: a row read and written back with its blind index is accepted, the index recomputed", async () => {
    const id = randomUUID();
    await prisma.user.create({ data: { id, name: "A", email: "rmw@example.com" } });
    const u = (await prisma.user.findUnique({ where: { id } }))!;
    expect(u.email_idx).toEqual(expect.any(String));
    expect(await prisma.user.update({ where: { id }, data: { ...u, name: "B" } })).toMatchObject({
      id,
      name: "B",
      email: "rmw@example.com",
    });
    const copy = randomUUID();
    await prisma.user.create({ data: { ...u, id: copy } });
    await prisma.user.createMany({ data: [{ ...u, id: randomUUID(), name: "C" }] });
    // A forged index beside its field is replaced by the computed one.
    await prisma.user.update({
      where: { id: copy },
      data: { email: "rmw@example.com", email_idx: { set: "deadbeef" }, name: "D" },
    });
    const stored = await db.query(
      `SELECT email_idx FROM ${schema}.records_prisma_users WHERE id = $1 OR id = $2`,
      [id, copy],
    );
    expect(stored.rows.map((r) => r.email_idx)).toEqual([u.email_idx, u.email_idx]);
    expect(
      (await prisma.user.findMany({ where: { email: "rmw@example.com" } }))
        .map((r) => r.name)
        .sort(),
    ).toEqual(["B", "C", "D"]);
  });

  it("deep nesting: a relation filter under 34 ANDs is still refused, past the limit any query is", async () => {
    const nest = (w: Row, times: number) => {
      let out = w;
      for (let i = 0; i < times; i++) out = { AND: [out] };
      return out;
    };
    const relation = { author: { email: "deep@example.com" } };
    let deepRead: Row = { posts: { where: { title: "t" } } };
    for (let i = 0; i < 70; i++)
      deepRead = { posts: { include: { author: { include: deepRead } } } };
    const before = log.length;
    await expect(prisma.post.findMany({ where: nest(relation, 34) })).rejects.toEqual(
      badInput(/"email" of model User/),
    );
    for (const where of [nest(relation, 70), nest({ title: "t" }, 70)]) {
      await expect(prisma.post.findMany({ where })).rejects.toEqual(badInput(/nested more than/));
    }
    await expect(prisma.user.findMany({ where: nest({ name: "t" }, 70) })).rejects.toEqual(
      badInput(/nested more than/),
    );
    await expect(prisma.user.findMany({ include: deepRead })).rejects.toEqual(
      badInput(/nested more than/),
    );
    expect(log.length).toBe(before);
  });

  it("a planted row with a copied blind index cannot hide the real match from take, skip or distinct", async () => {
    const victim = randomUUID();
    const planted = randomUUID();
    const later = randomUUID();
    await prisma.user.create({
      data: { id: `b-${victim}`, name: "V", email: "victim@example.com" },
    });
    await prisma.user.create({
      data: { id: `c-${later}`, name: "W", email: "victim@example.com" },
    });
    const { email_idx } = (await base.user.findUnique({ where: { id: `b-${victim}` } }))!;
    // A database writer copies the victim's index into a row of its own that sorts first.
    await base.user.create({ data: { id: `a-${planted}`, name: "V", email_idx } });
    const where = { email: "victim@example.com" };
    const orderBy = { id: "asc" };
    const ids = (rows: Row[]) => rows.map((r) => r.id);
    expect(ids(await prisma.user.findMany({ where, orderBy, take: 1 }))).toEqual([`b-${victim}`]);
    expect(ids(await prisma.user.findMany({ where, orderBy, skip: 1 }))).toEqual([`c-${later}`]);
    expect(ids(await prisma.user.findMany({ where, orderBy, skip: 1, take: 5 }))).toEqual([
      `c-${later}`,
    ]);
    expect((await prisma.user.findFirst({ where, orderBy, skip: 1 }))?.id).toBe(`c-${later}`);
    const before = log.length;
    await expect(prisma.user.findMany({ where, orderBy, distinct: ["name"] })).rejects.toEqual(
      badInput(/distinct/),
    );
    await expect(prisma.user.findMany({ where, orderBy, take: -1 })).rejects.toEqual(
      badInput(/take/),
    );
    expect(log.length).toBe(before);
  });

  it("orderBy and having resolve encrypted fields model by model (a plain field named like another model's encrypted one)", async () => {
    // Note's "name" is encrypted; User's is plain.
    const both = base.$extends(
      prismaEncryption({
        envelope,
        blindIndex,
        models: {
          User: { table: "records_prisma_users", encrypted: ["email", "phone"] },
          Note: { encrypted: ["body", "name"] },
        },
      }),
    );
    expect(Array.isArray(await both.user.findMany({ orderBy: { name: "asc" } }))).toBe(true);
    expect(
      Array.isArray(
        await both.user.groupBy({ by: ["name"], having: { name: { _count: { gt: 0 } } } }),
      ),
    ).toBe(true);
    const before = log.length;
    await expect(both.user.findMany({ orderBy: [{ email: "asc" }] })).rejects.toEqual(
      badInput(/orderBy on the encrypted field "email"/),
    );
    expect(log.length).toBe(before);
  });

  it("orderBy through a relation from an unconfigured model's query is refused on an encrypted field", async () => {
    const before = log.length;
    // Post is not configured: its orderBy through the author relation reaches User.email.
    await expect(prisma.post.findMany({ orderBy: { author: { email: "asc" } } })).rejects.toEqual(
      badInput(/orderBy on the encrypted field "email" of model User/),
    );
    await expect(
      prisma.post.findMany({
        orderBy: [{ title: "asc" }, { author: { phone: { sort: "desc" } } }],
      }),
    ).rejects.toEqual(badInput(/orderBy/));
    expect(log.length).toBe(before);
    expect(
      Array.isArray(await prisma.post.findMany({ orderBy: { author: { name: "asc" } } })),
    ).toBe(true);
  });

  it("upsert writing encrypted fields and findFirst on a blind index are refused in a batch transaction (their reads cannot join it)", async () => {
    const id = randomUUID();
    const batch = (prisma as unknown as { $transaction(list: unknown[]): Promise<unknown> })
      .$transaction;
    await expect(
      batch.call(prisma, [
        prisma.user.create({ data: { id, name: "Batch", email: "batch@example.com" } }),
        prisma.user.upsert({
          where: { id },
          create: { id, name: "never" },
          update: { email: "batch2@example.com", name: "Batch2" },
        }),
      ]),
    ).rejects.toEqual(badInput(/batch \$transaction/));
    await expect(
      batch.call(prisma, [prisma.user.findFirst({ where: { email: "batch@example.com" } })]),
    ).rejects.toEqual(badInput(/batch \$transaction/));
    expect((await prisma.user.findUnique({ where: { id } }))?.email ?? null).not.toBe(
      "batch@example.com",
    );
  });

  it("upsert checks the values of both branches before sealing either", async () => {
    const before = log.length;
    kms.reset();
    await expect(
      prisma.user.upsert({
        where: { id: randomUUID() },
        create: { id: randomUUID(), email: "ok@example.com" },
        update: { email: "bad \uD800" },
      }),
    ).rejects.toEqual(badInput(/"email"/));
    expect(kms.calls).toEqual({ wrap: 0, unwrap: 0, generateDataKey: 0 });
    expect(log.length).toBe(before);
  });

  it("no plaintext of an encrypted field reached the database", () => {
    expect(log.length).toBeGreaterThan(0);
    const sent = log.join("\n").toLowerCase();
    for (const secret of SECRETS) expect(sent).not.toContain(secret);
  });
});
