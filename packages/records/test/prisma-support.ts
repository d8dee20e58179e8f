import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type pg from "pg";
import { PG_URL } from "./support.js";

// Shared by the prisma-*.test.ts files: a client generated from test/prisma/schema.prisma
// into a folder of its own (`prisma generate` empties its output folder first, so test files
// running at once must not share one), on tables of a PostgreSQL schema of their own, so
// test runs sharing the database (prisma.test.ts drops public.records_prisma_users) never
// collide.

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export type Row = Record<string, unknown>;

/** The User model's encryption in the Prisma tests: three sealed fields, email searchable. */
export const USER_MODEL = {
  table: "records_prisma_users",
  encrypted: ["email", "phone", "ssn"],
  blindIndexes: { email: { normalize: "email" } },
} as const;
export interface Model {
  create(args: Row): Promise<Row>;
  createMany(args: Row): Promise<{ count: number }>;
  createManyAndReturn(args: Row): Promise<Row[]>;
  update(args: Row): Promise<Row>;
  updateMany(args: Row): Promise<{ count: number }>;
  updateManyAndReturn(args: Row): Promise<Row[]>;
  upsert(args: Row): Promise<Row>;
  findUnique(args: Row): Promise<Row | null>;
  findUniqueOrThrow(args: Row): Promise<Row>;
  findFirst(args: Row): Promise<Row | null>;
  findFirstOrThrow(args: Row): Promise<Row>;
  findMany(args?: Row): Promise<Row[]>;
  delete(args: Row): Promise<Row>;
  deleteMany(args?: Row): Promise<{ count: number }>;
  count(args?: Row): Promise<number>;
  aggregate(args: Row): Promise<Row>;
  groupBy(args: Row): Promise<Row[]>;
}
export interface Client {
  user: Model;
  note: Model;
  post: Model;
  $extends(ext: unknown): Client;
  $on(event: "query", listener: (e: { query: string; params: string }) => void): void;
  $disconnect(): Promise<void>;
}

/** A fresh schema name, e.g. `prisma_where_3f9a0c21`. */
export function schemaName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString("hex")}`;
}

/** The folder `prismaOn` generates the client for `schema` into; remove it when done. */
export function clientFolder(schema: string): string {
  return join(here, `.prisma-client-${schema}`);
}

/**
 * Generates the client, creates `schema` with the two tables of schema.prisma and returns a
 * client on it whose every SQL statement and bound parameters are appended to `log`.
 */
export async function prismaOn(
  db: pg.Pool,
  schema: string,
  log: string[],
  options: { posts?: boolean; nameEmailUnique?: boolean } = {},
): Promise<Client> {
  const folder = clientFolder(schema);
  mkdirSync(folder, { recursive: true });
  const source = readFileSync(join(here, "prisma/schema.prisma"), "utf8");
  let copy = source.replace('output       = "../.prisma-client"', 'output       = "./client"');
  if (copy === source) throw new Error("test/prisma/schema.prisma: output line not found");
  if (options.nameEmailUnique) {
    // A compound unique key with an encrypted part: `name_email: { name, email }`.
    const users = '  @@map("records_prisma_users")';
    if (!copy.includes(users)) throw new Error("test/prisma/schema.prisma: User's @@map not found");
    copy = copy.replace(users, `  @@unique([name, email])\n${users}`);
  }
  if (options.posts) {
    // A model with a relation to User (posts.author_id → users.id), to try relation filters.
    const users = '  @@map("records_prisma_users")';
    if (!copy.includes(users)) throw new Error("test/prisma/schema.prisma: User's @@map not found");
    copy = `${copy.replace(users, `  posts     Post[]\n\n${users}`)}
model Post {
  id       String  @id
  title    String?
  authorId String? @map("author_id")
  author   User?   @relation(fields: [authorId], references: [id])

  @@map("records_prisma_posts")
}
`;
  }
  writeFileSync(join(folder, "schema.prisma"), copy);
  const cli = join(dirname(require.resolve("prisma/package.json")), "build/index.js");
  execFileSync(process.execPath, [cli, "generate", "--schema", join(folder, "schema.prisma")], {
    env: {
      ...process.env,
      PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? "/bin/true",
      CHECKPOINT_DISABLE: "1",
      PRISMA_HIDE_UPDATE_MESSAGE: "1",
    },
    stdio: "pipe",
  });
  const generated = pathToFileURL(join(folder, "client/client.ts")).href;
  const { PrismaClient } = (await import(/* @vite-ignore */ generated)) as {
    PrismaClient: new (options: unknown) => Client;
  };
  const { PrismaPg } = await import("@prisma/adapter-pg");
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await db.query(`CREATE SCHEMA ${schema}`);
  await db.query(`CREATE TABLE ${schema}.records_prisma_users (
    id text PRIMARY KEY, email text, email_idx text, phone text, ssn text, name text)`);
  await db.query(
    `CREATE TABLE ${schema}.records_prisma_notes (id serial PRIMARY KEY, body text, name text)`,
  );
  if (options.posts) {
    await db.query(`CREATE TABLE ${schema}.records_prisma_posts (
      id text PRIMARY KEY, title text, author_id text REFERENCES ${schema}.records_prisma_users)`);
  }
  const client = new PrismaClient({
    adapter: new PrismaPg({ connectionString: PG_URL }, { schema }),
    log: [{ emit: "event", level: "query" }],
  });
  client.$on("query", (e) => log.push(`${e.query} ${e.params}`));
  return client;
}

/** Drops `schema` and the client folder made for it. */
export async function dropAll(db: pg.Pool, schema: string): Promise<void> {
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  rmSync(clientFolder(schema), { recursive: true, force: true });
}
