import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, prismaEncryption } from "../src/index.js";
import {
  type Client,
  dropAll,
  prismaOn,
  type Row,
  schemaName,
  USER_MODEL,
} from "./prisma-support.js";
import { counted, envelopeWith, INDEX_KEY_1, pool, usePgSchema } from "./support.js";

// Its tables are in the schema prismaOn makes; this keeps anything else off public.
usePgSchema();

// Relation filters reach the encrypted User through another model's query (Post is not
// configured) or through a relation read: the extension cannot rewrite them, so one naming
// an encrypted field (a null check aside) is refused before any SQL, and its plaintext never
// reaches the database.

const db = pool();
const schema = schemaName("prisma_rel");
const log: string[] = [];
let base: Client;
let prisma: Client;
const ann = randomUUID();
const post = randomUUID();

beforeAll(async () => {
  base = await prismaOn(db, schema, log, { posts: true });
  prisma = base.$extends(
    prismaEncryption({
      envelope: envelopeWith(counted()),
      blindIndex: createBlindIndexer({ keys: INDEX_KEY_1 }),
      models: {
        User: USER_MODEL,
      },
    }),
  );
  await prisma.user.create({ data: { id: ann, email: "ann@example.com", name: "Ann" } });
  await prisma.post.create({ data: { id: post, title: "Hello", authorId: ann } });
}, 120_000);

afterAll(async () => {
  await base?.$disconnect();
  await dropAll(db, schema);
  await db.end();
});

describe("Prisma relation filters on encrypted fields", () => {
  it.each<[string, () => Promise<unknown>]>([
    [
      "to-one, direct",
      () => prisma.post.findMany({ where: { author: { email: "ann@example.com" } } }),
    ],
    [
      "to-one, is",
      () =>
        prisma.post.count({ where: { OR: [{ author: { is: { email: "ann@example.com" } } }] } }),
    ],
    [
      "deleteMany through NOT",
      () =>
        prisma.post.deleteMany({ where: { NOT: { author: { phone: { contains: "555 01" } } } } }),
    ],
    [
      "to-many, some",
      () =>
        prisma.user.findMany({ where: { posts: { some: { author: { ssn: "123-45-6789" } } } } }),
    ],
    [
      "a relation read's where",
      () =>
        prisma.post.findMany({
          include: {
            author: { include: { posts: { where: { author: { email: "x@example.com" } } } } },
          },
        }),
    ],
  ])("refused before any SQL: %s", async (_, run) => {
    const before = log.length;
    await expect(run()).rejects.toMatchObject({
      code: "ENVELOPE_BAD_INPUT",
      message: expect.stringMatching(/encrypted field "(email|phone|ssn)" of model User/),
    });
    expect(log.length).toBe(before);
  });

  it("filters on plain fields of the relation, and null checks, go through", async () => {
    const ids = (rows: Row[]) => rows.map((r) => r.id);
    expect(ids(await prisma.post.findMany({ where: { author: { name: "Ann" } } }))).toEqual([post]);
    expect(ids(await prisma.post.findMany({ where: { author: { is: { ssn: null } } } }))).toEqual([
      post,
    ]);
    expect(await prisma.post.count({ where: { author: { email: { not: null } } } })).toBe(1);
    expect(
      ids(
        await prisma.user.findMany({
          where: { email: "ann@example.com", posts: { some: { title: "Hello" } } },
        }),
      ),
    ).toEqual([ann]);
  });

  it("no plaintext of an encrypted field reached the database", () => {
    const sent = log.join("\n").toLowerCase();
    for (const secret of ["example.com", "555 01", "123-45-6789"])
      expect(sent).not.toContain(secret);
  });
});

describe("Prisma nested writes into an encrypted model", () => {
  it.each<[string, () => Promise<unknown>]>([
    [
      "create with a nested create",
      () =>
        prisma.post.create({
          data: {
            id: randomUUID(),
            author: { create: { id: randomUUID(), email: "eve@example.com" } },
          },
        }),
    ],
    [
      "update with a nested update",
      () =>
        prisma.post.update({
          where: { id: post },
          data: { author: { update: { phone: "555 0199" } } },
        }),
    ],
    [
      "upsert with connectOrCreate",
      () =>
        prisma.post.upsert({
          where: { id: post },
          create: { id: post },
          update: {
            author: {
              connectOrCreate: { where: { id: ann }, create: { id: ann, ssn: "123-45-6789" } },
            },
          },
        }),
    ],
    [
      "connect by an encrypted field",
      () =>
        prisma.post.update({
          where: { id: post },
          data: { author: { connect: { id: ann, email: "ann@example.com" } } },
        }),
    ],
  ])("refused before any SQL: %s", async (_, run) => {
    const before = log.length;
    await expect(run()).rejects.toMatchObject({
      code: "ENVELOPE_BAD_INPUT",
      message: expect.stringMatching(/model User/),
    });
    expect(log.length).toBe(before);
  });

  it("connect by id goes through, and nothing stored holds plaintext", async () => {
    const id = randomUUID();
    await prisma.post.create({ data: { id, title: "T", author: { connect: { id: ann } } } });
    expect(await prisma.post.findUnique({ where: { id } })).toMatchObject({ authorId: ann });
    const { rows } = await db.query(`SELECT t::text AS line FROM ${schema}.records_prisma_users t`);
    for (const secret of ["example.com", "555 01", "123-45-6789"]) {
      expect(rows.some((r: { line: string }) => r.line.includes(secret))).toBe(false);
    }
  });
});
