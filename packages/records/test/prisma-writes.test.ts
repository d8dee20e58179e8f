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

// Writes the extension must refuse before any SQL: a change of the id (every encrypted
// value is bound to it, so the row would never open again) and a blind index column set
// by the caller (a lookup by the field would find a row whose value does not match).

const db = pool();
const schema = schemaName("prisma_writes");
const log: string[] = [];
const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
let base: Client;
let prisma: Client;
const ann = randomUUID();
const moved = randomUUID();

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
    data: { id: ann, email: "ann@example.com", phone: "+1 555 0100", name: "Ann" },
  });
}, 120_000);

afterAll(async () => {
  await base?.$disconnect();
  await dropAll(db, schema);
  await db.end();
});

async function refusedBeforeSql(run: () => Promise<unknown>, message: RegExp) {
  const before = log.length;
  await expect(run()).rejects.toEqual(
    expect.objectContaining({
      code: "ENVELOPE_BAD_INPUT",
      message: expect.stringMatching(message),
    }),
  );
  expect(log.length).toBe(before);
}

describe("Prisma writes the extension refuses", () => {
  it.each<[string, () => Promise<unknown>]>([
    ["update", () => prisma.user.update({ where: { id: ann }, data: { id: moved } })],
    [
      "update with { set }",
      () => prisma.user.update({ where: { id: ann }, data: { id: { set: moved }, name: "A" } }),
    ],
    [
      "update with an encrypted field",
      () => prisma.user.update({ where: { id: ann }, data: { id: moved, phone: "1" } }),
    ],
    [
      "upsert's update",
      () => prisma.user.upsert({ where: { id: ann }, create: { id: ann }, update: { id: moved } }),
    ],
    ["updateMany", () => prisma.user.updateMany({ where: { id: ann }, data: { id: moved } })],
    [
      "updateManyAndReturn",
      () => prisma.user.updateManyAndReturn({ where: { name: "Ann" }, data: { id: moved } }),
    ],
  ])("a change of the id (%s)", async (_, run) => {
    await refusedBeforeSql(run, /cannot change "id"/);
    expect(await prisma.user.findUnique({ where: { id: moved } })).toBeNull();
    expect(await prisma.user.findUnique({ where: { id: ann } })).toMatchObject({
      email: "ann@example.com",
      phone: "+1 555 0100",
    });
    // Every row still opens.
    expect((await prisma.user.findMany()).length).toBeGreaterThan(0);
  });

  it("the id written unchanged is not a change", async () => {
    expect(
      await prisma.user.update({ where: { id: ann }, data: { id: ann, name: "Ann" } }),
    ).toMatchObject({ id: ann, email: "ann@example.com" });
  });

  it.each<[string, () => Promise<unknown>]>([
    ["update", () => prisma.user.update({ where: { id: ann }, data: { email_idx: "deadbeef" } })],
    ["updateMany", () => prisma.user.updateMany({ data: { email_idx: null } })],
    ["create", () => prisma.user.create({ data: { id: moved, email_idx: "deadbeef" } })],
    [
      "createMany",
      () => prisma.user.createMany({ data: [{ id: moved, name: "M", email_idx: "deadbeef" }] }),
    ],
    [
      "createManyAndReturn",
      () => prisma.user.createManyAndReturn({ data: { id: moved, email_idx: "deadbeef" } }),
    ],
    [
      "upsert's create",
      () =>
        prisma.user.upsert({
          where: { id: moved },
          create: { id: moved, email_idx: "deadbeef" },
          update: {},
        }),
    ],
    [
      "upsert's update",
      () =>
        prisma.user.upsert({
          where: { id: ann },
          create: { id: ann },
          update: { email_idx: "deadbeef" },
        }),
    ],
    // Given beside its field, the index is recomputed instead (prisma-review.test.ts).
  ])("a blind index column set by the caller without its field (%s)", async (_, run) => {
    await refusedBeforeSql(run, /"email_idx" is the blind index of "email"/);
    expect(await prisma.user.findUnique({ where: { id: moved } })).toBeNull();
    expect(
      (await prisma.user.findFirst({ where: { email: "ann@example.com" } })) as Row | null,
    ).toMatchObject({ id: ann });
  });
});
