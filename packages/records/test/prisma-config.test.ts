import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBlindIndexer, prismaEncryption } from "../src/index.js";
import { type Client, dropAll, prismaOn, schemaName, USER_MODEL } from "./prisma-support.js";
import { counted, envelopeWith, INDEX_KEY_1, pool, usePgSchema } from "./support.js";

// Its tables are in the schema prismaOn makes; this keeps anything else off public.
usePgSchema();

// A misspelt model, field or key in prismaEncryption's config was ignored: the model's
// writes, or the real field, went to the database as plaintext without a word.

const db = pool();
const schema = schemaName("prisma_config");
const log: string[] = [];
const blindIndex = createBlindIndexer({ keys: INDEX_KEY_1 });
const envelope = envelopeWith(counted());
let base: Client;

beforeAll(async () => {
  base = await prismaOn(db, schema, log, { posts: true });
}, 120_000);

afterAll(async () => {
  await base?.$disconnect();
  await dropAll(db, schema);
  await db.end();
});

const badConfig = (message: RegExp, field?: string) =>
  expect.objectContaining({
    code: "ENVELOPE_BAD_CONFIG",
    message: expect.stringMatching(message),
    ...(field ? { details: expect.objectContaining({ field }) } : {}),
  });
const extend = (models: Record<string, unknown>) => () =>
  base.$extends(prismaEncryption({ envelope, blindIndex, models } as never));

describe("prismaEncryption: the config is checked against the client's data model", () => {
  it("a model the client does not have is refused when the extension is applied, with a suggestion", () => {
    expect(extend({ Users: { ...USER_MODEL } })).toThrow(
      badConfig(/no model "Users".*Did you mean "User"\?.*unencrypted/, "models.Users"),
    );
    expect(extend({ user: { ...USER_MODEL } })).toThrow(badConfig(/Did you mean "User"\?/));
  });

  it("without Prisma's runtime data model, a model name without a delegate on the client is refused", () => {
    // A client of a Prisma version that has no `_runtimeDataModel`: only its delegates.
    const bare = { user: base.user, note: base.note, $extends: base.$extends.bind(base) };
    const apply = (models: Record<string, unknown>) => () =>
      prismaEncryption({ envelope, blindIndex, models } as never)(bare);
    expect(apply({ Users: { ...USER_MODEL } })).toThrow(
      badConfig(/model "Users" not found on the client.*unencrypted/, "models.Users"),
    );
    expect(apply({ User: { ...USER_MODEL } })).not.toThrow();
  });

  it("an encrypted field the model does not have is refused: the real field would stay plaintext", () => {
    expect(extend({ User: { table: USER_MODEL.table, encrypted: ["emial", "phone"] } })).toThrow(
      badConfig(/model User has no field "emial".*Did you mean "email"\?/, "models.User.encrypted"),
    );
  });

  it("a blind index field or id field the model does not have is refused", () => {
    expect(
      extend({
        User: {
          ...USER_MODEL,
          blindIndexes: { email: { normalize: "email", column: "emailIdx" } },
        },
      }),
    ).toThrow(
      badConfig(
        /no field "emailIdx".*Did you mean "email_idx"\?/,
        "models.User.blindIndexes.email",
      ),
    );
    expect(extend({ User: { ...USER_MODEL, blindIndexes: { phone: {} } } })).toThrow(
      badConfig(/no field "phone_idx"/),
    );
    expect(extend({ User: { ...USER_MODEL, idField: "uid" } })).toThrow(
      badConfig(/no field "uid"/, "models.User.idField"),
    );
  });

  it("a relation field is refused as an encrypted field", () => {
    expect(extend({ User: { encrypted: ["posts"] } })).toThrow(
      badConfig(/field "posts" of User is a relation field.*String\?/),
    );
  });

  it("a correct config is accepted and seals the fields", async () => {
    const prisma = extend({ User: { ...USER_MODEL } })();
    const id = randomUUID();
    await prisma.user.create({ data: { id, email: "cfg@example.com" } });
    const { rows } = await db.query(
      `SELECT email FROM ${schema}.records_prisma_users WHERE id = $1`,
      [id],
    );
    expect(rows[0].email).toMatch(/^ev1:/);
  });
});

describe("prismaEncryption: misspelt keys are refused when it is called", () => {
  it("in a model's config", () => {
    expect(() =>
      prismaEncryption({
        envelope,
        blindIndex,
        models: { User: { ...USER_MODEL, blindIndex: { email: {} } } as never },
      }),
    ).toThrow(badConfig(/unknown key "models.User.blindIndex".*Did you mean "blindIndexes"\?/));
    expect(() => prismaEncryption({ envelope, models: { User: ["email"] as never } })).toThrow(
      badConfig(/models.User must be an object/),
    );
  });

  it("in the options", () => {
    expect(() =>
      prismaEncryption({ envelope, blindindex: blindIndex, models: { User: USER_MODEL } } as never),
    ).toThrow(badConfig(/unknown key "blindindex".*Did you mean "blindIndex"\?/, "blindindex"));
  });
});

describe("prismaEncryption: pad and allowEnvelopePlaintext reach the model's cipher", () => {
  it("pad: values of different lengths are stored at one length", async () => {
    const prisma = extend({ User: { ...USER_MODEL, pad: { ssn: 32 } } })();
    const a = randomUUID();
    const b = randomUUID();
    await prisma.user.create({ data: { id: a, ssn: "1" } });
    await prisma.user.create({ data: { id: b, ssn: "123-45-6789-0000" } });
    const { rows } = await db.query(
      `SELECT length(ssn) AS n FROM ${schema}.records_prisma_users WHERE id = ANY($1) ORDER BY n`,
      [[a, b]],
    );
    expect(rows.map((r) => r.n)).toEqual([rows[0].n, rows[0].n]);
    expect(await prisma.user.findUnique({ where: { id: b } })).toMatchObject({
      ssn: "123-45-6789-0000",
    });
  });

  it("allowEnvelopePlaintext: an Envelope value as plaintext is sealed only when allowed", async () => {
    const sealed = await envelope.encrypt("inner", { context: { purpose: "test" } });
    const strict = extend({ User: { ...USER_MODEL } })();
    await expect(strict.user.create({ data: { id: randomUUID(), phone: sealed } })).rejects.toEqual(
      expect.objectContaining({ code: "ENVELOPE_BAD_INPUT" }),
    );
    const allowing = extend({ User: { ...USER_MODEL, allowEnvelopePlaintext: ["phone"] } })();
    const id = randomUUID();
    await allowing.user.create({ data: { id, phone: sealed } });
    expect(await allowing.user.findUnique({ where: { id } })).toMatchObject({ phone: sealed });
  });
});
