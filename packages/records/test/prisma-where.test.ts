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

// `where` on an encrypted field, in every model operation: a string equality on a field
// with a blind index is rewritten (AND, OR, `in`, findUnique) and the candidates checked
// after opening; what cannot be checked (count, deleteMany, NOT, …) is refused before any
// SQL; plaintext of an encrypted field never reaches the database.

const db = pool();
const schema = schemaName("prisma_where");
const log: string[] = [];
const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
let base: Client;
let prisma: Client;
const ann = randomUUID();
const bob = randomUUID();
const both = { id: { in: [ann, bob] } };
const SECRETS = ["example.com", "555 0100", "123-45-6789"];

beforeAll(async () => {
  base = await prismaOn(db, schema, log);
  prisma = base.$extends(
    prismaEncryption({
      envelope: envelopeWith(counted()),
      blindIndex,
      models: {
        User: USER_MODEL,
      },
    }),
  );
  await prisma.user.create({
    data: { id: ann, email: "Ann@Example.com", phone: "+1 555 0100", name: "Ann" },
  });
  await prisma.user.create({
    data: { id: bob, email: "bob@example.com", ssn: "123-45-6789", name: "Bob" },
  });
}, 120_000);

afterAll(async () => {
  await base?.$disconnect();
  await dropAll(db, schema);
  await db.end();
});

const names = (rows: Row[]) => rows.map((r) => r.name).sort();
const badInput = (message?: RegExp) =>
  expect.objectContaining({
    code: "ENVELOPE_BAD_INPUT",
    ...(message ? { message: expect.stringMatching(message) } : {}),
  });

describe("Prisma where on encrypted fields", () => {
  it("AND, OR of encrypted equalities, `in` and findUnique are rewritten and checked after opening", async () => {
    const email = "ann@example.com";
    expect(names(await prisma.user.findMany({ where: { AND: [{ email }] } }))).toEqual(["Ann"]);
    expect(names(await prisma.user.findMany({ where: { AND: { email, name: "Ann" } } }))).toEqual([
      "Ann",
    ]);
    expect(
      names(
        await prisma.user.findMany({
          where: { OR: [{ email: "ANN@example.com" }, { email: { equals: "bob@example.com" } }] },
        }),
      ),
    ).toEqual(["Ann", "Bob"]);
    expect(
      names(await prisma.user.findMany({ where: { email: { in: [email, "nobody@x.io"] } } })),
    ).toEqual(["Ann"]);
    expect(await prisma.user.findMany({ where: { AND: [{ email }, { name: "Bob" }] } })).toEqual(
      [],
    );
    expect((await prisma.user.findUnique({ where: { id: ann, email } }))?.name).toBe("Ann");
    expect(await prisma.user.findUnique({ where: { id: ann, email: "bob@example.com" } })).toBe(
      null,
    );
    await expect(
      prisma.user.findUniqueOrThrow({ where: { id: ann, email: "bob@example.com" } }),
    ).rejects.toMatchObject({ code: "P2025" });
    expect(
      (await prisma.user.findFirstOrThrow({ where: { AND: [{ email: "BOB@example.com" }] } })).id,
    ).toBe(bob);
    // The field the where checks is read even when the select leaves it out.
    expect(await prisma.user.findMany({ where: { email }, select: { name: true } })).toEqual([
      { name: "Ann" },
    ]);
    expect(
      await prisma.user.findFirst({ where: { email }, omit: { email: true, id: true } }),
    ).toEqual({ email_idx: expect.any(String), phone: "+1 555 0100", ssn: null, name: "Ann" });
  });

  it.each<[string, Row, RegExp]>([
    ["NOT", { NOT: { email: "ann@example.com" } }, /NOT/],
    ["NOT in a list", { NOT: [{ name: "Bob" }, { email: "ann@example.com" }] }, /NOT/],
    ["OR with a plain field", { OR: [{ email: "ann@example.com" }, { name: "Bob" }] }, /OR/],
    ["a filter other than equality", { email: { contains: "ann" } }, /"contains"/],
    ["not: value", { email: { not: "ann@example.com" } }, /"not"/],
    [
      "case-insensitive mode",
      { email: { equals: "ann@example.com", mode: "insensitive" } },
      /"mode"/,
    ],
    ["no blind index", { AND: [{ phone: "+1 555 0100" }] }, /no blind index/],
    ["a non-string", { email: 42 }, /string/],
  ])("refused before any SQL: %s", async (_, where, message) => {
    const before = log.length;
    await expect(prisma.user.findMany({ where })).rejects.toEqual(badInput(message));
    await expect(prisma.user.findFirst({ where })).rejects.toEqual(badInput(message));
    expect(log.length).toBe(before);
  });

  it.each<[string, (email: string) => Promise<unknown>]>([
    ["count", (email) => prisma.user.count({ where: { email } })],
    ["aggregate", (email) => prisma.user.aggregate({ where: { email }, _count: { _all: true } })],
    ["groupBy", (email) => prisma.user.groupBy({ by: ["name"], where: { OR: [{ email }] } })],
    ["deleteMany", (email) => prisma.user.deleteMany({ where: { AND: [{ email }] } })],
    ["updateMany", (email) => prisma.user.updateMany({ where: { email }, data: { name: "X" } })],
    [
      "updateManyAndReturn",
      (email) => prisma.user.updateManyAndReturn({ where: { email }, data: { name: "X" } }),
    ],
    ["update", (email) => prisma.user.update({ where: { id: ann, email }, data: { name: "X" } })],
    ["delete", (email) => prisma.user.delete({ where: { id: ann, email } })],
    [
      "upsert",
      (email) =>
        prisma.user.upsert({
          where: { id: ann, email },
          create: { id: ann },
          update: { name: "X" },
        }),
    ],
    ["count, no blind index", () => prisma.user.count({ where: { phone: "+1 555 0100" } })],
  ])("%s with where on an encrypted field is refused before any SQL", async (op, run) => {
    const before = log.length;
    await expect(run("ann@example.com")).rejects.toEqual(
      badInput(op.includes("no blind index") ? /blind index/ : /by id|its id/),
    );
    expect(log.length).toBe(before);
    expect(await prisma.user.findUnique({ where: { id: ann } })).toMatchObject({
      name: "Ann",
      email: "Ann@Example.com",
    });
  });

  it.each<[string, () => Promise<unknown>, RegExp]>([
    ["findMany orderBy", () => prisma.user.findMany({ orderBy: { email: "asc" } }), /orderBy/],
    [
      "orderBy in a list",
      () => prisma.user.findMany({ orderBy: [{ name: "asc" }, { ssn: { sort: "desc" } }] }),
      /orderBy/,
    ],
    ["count orderBy", () => prisma.user.count({ orderBy: { phone: "asc" } }), /orderBy/],
    ["distinct", () => prisma.user.findMany({ distinct: ["email"] }), /distinct/],
    ["cursor", () => prisma.user.findMany({ cursor: { id: ann, email: "x" } }), /cursor/],
    ["groupBy by", () => prisma.user.groupBy({ by: ["email"] }), /groupBy by/],
    ["groupBy by (a string)", () => prisma.user.groupBy({ by: "ssn" }), /groupBy by/],
    [
      "groupBy having",
      () => prisma.user.groupBy({ by: ["name"], having: { email: { _count: { gt: 1 } } } }),
      /having/,
    ],
    ["aggregate _max", () => prisma.user.aggregate({ _max: { email: true } }), /_max/],
    ["groupBy _min", () => prisma.user.groupBy({ by: ["name"], _min: { phone: true } }), /_min/],
  ])("%s on an encrypted field is refused up front", async (_, run, message) => {
    const before = log.length;
    const error = await run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toEqual(badInput(message));
    expect(String((error as Error).message)).not.toMatch(/openMany/);
    expect(log.length).toBe(before);
  });

  it("null checks on encrypted fields are exact in SQL and allowed in every operation", async () => {
    expect(names(await prisma.user.findMany({ where: { ssn: null, ...both } }))).toEqual(["Ann"]);
    expect(
      names(await prisma.user.findMany({ where: { ssn: { equals: null }, ...both } })),
    ).toEqual(["Ann"]);
    expect(await prisma.user.count({ where: { ssn: { not: null }, ...both } })).toBe(1);
    expect(names(await prisma.user.findMany({ where: { NOT: { ssn: null }, ...both } }))).toEqual([
      "Bob",
    ]);
    expect(
      names(
        await prisma.user.findMany({
          where: { OR: [{ ssn: null }, { email: "bob@example.com" }], ...both },
        }),
      ),
    ).toEqual(["Ann", "Bob"]);
    expect(
      names(
        await prisma.user.findMany({ where: { OR: [{ phone: null }, { email: "nobody@x.io" }] } }),
      ),
    ).toEqual(["Bob"]);
    expect(await prisma.user.deleteMany({ where: { id: "nobody", ssn: null } })).toEqual({
      count: 0,
    });
    expect(
      await prisma.user.updateMany({ where: { id: bob, phone: null }, data: { name: "Bob" } }),
    ).toEqual({ count: 1 });
  });

  it("no plaintext of an encrypted field reached the database", () => {
    expect(log.length).toBeGreaterThan(10);
    const sent = log.join("\n").toLowerCase();
    for (const secret of SECRETS) expect(sent).not.toContain(secret);
  });
});
