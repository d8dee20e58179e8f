// End to end: the real app on an ephemeral port, the real PostgreSQL on localhost, HTTP
// only (fetch) — then the table itself is read to prove no PII is stored in clear, and a
// key rotation — the `envelope` CLI, spawned — runs while signups and updates keep coming.
import { createHash, randomBytes, randomInt } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createEnvelope,
  decodeEnvelope,
  Envelope,
  fromText,
  type KeyProvider,
  ProviderError,
} from "@envelope/core";
import { blindIndexKeysFrom, createBlindIndexer, createRecordCipher } from "@envelope/records";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/app.js";
import { BLIND_INDEX_KEY_FILE } from "../src/keys/blind-index-key.js";
import { envelopeCliPath, runEnvelopeCli } from "../src/keys/envelope-cli.js";
import { CLI_CONFIG_FILE, keyUri, readKeyRing } from "../src/keys/key-ring.js";
import { type RotationStep, rotateLocalKey } from "../src/keys/rotate-local-key.js";
import type { LogEntry } from "../src/log.js";
import { type RunningServer, startServer } from "../src/start.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const TABLE = `example_users_e2e_${randomBytes(4).toString("hex")}`;

interface Person {
  email: string;
  phone: string | null;
  ssn: string;
}
interface UserBody extends Person {
  id: string;
  createdAt: string;
  updatedAt: string;
}

let keysDir: string;
let server: RunningServer;
let pool: pg.Pool;
const logs: LogEntry[] = [];
/** What every user must read back as: id → expected stored (normalized) values. */
const expected = new Map<string, Person>();
const usedDigits = new Set<string>();

function uniqueDigits(n: number): string {
  for (;;) {
    const d = Array.from({ length: n }, () => randomInt(10)).join("");
    if (!usedDigits.has(d) && !/^0/.test(d)) {
      usedDigits.add(d);
      return d;
    }
  }
}

/** A person as a client would send it (mixed-case email, formatted phone). */
function newPerson(): { sent: Person; stored: Person } {
  const tag = randomBytes(5).toString("hex");
  const email = `Person.${tag}@Example-${tag.slice(0, 4)}.test`;
  const local = uniqueDigits(7);
  const ssnDigits = uniqueDigits(9);
  const ssn = `${ssnDigits.slice(0, 3)}-${ssnDigits.slice(3, 5)}-${ssnDigits.slice(5)}`;
  return {
    sent: { email: `  ${email} `, phone: `+1 (555) ${local.slice(0, 3)}-${local.slice(3)}`, ssn },
    stored: { email, phone: `+1555${local}`, ssn },
  };
}

async function api(method: string, path: string, body?: unknown, raw?: string) {
  const res = await fetch(new URL(path, server.url), {
    method,
    headers: body !== undefined || raw !== undefined ? { "content-type": "application/json" } : {},
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  return { status: res.status, text, json: text ? JSON.parse(text) : undefined };
}

async function signup(): Promise<UserBody> {
  const { sent, stored } = newPerson();
  const res = await api("POST", "/users", sent);
  expect(res.status, res.text).toBe(201);
  expected.set(res.json.id, stored);
  return res.json as UserBody;
}

async function health(): Promise<{ encrypt: string[]; decrypt: string[] }> {
  const res = await api("GET", "/health");
  expect(res.status).toBe(200);
  return res.json.keys;
}

/** Every variant of a person's PII that must never appear in the table. */
function variants(p: Person): string[] {
  const out = [p.email, p.email.toLowerCase(), p.email.toUpperCase(), p.email.split("@")[0]!];
  out.push(Buffer.from(p.email).toString("base64").replace(/=+$/, ""));
  out.push(Buffer.from(p.email.toLowerCase()).toString("base64url"));
  out.push(Buffer.from(p.email).toString("hex"), encodeURIComponent(p.email));
  // An unkeyed hash would be a dictionary-attackable "index": neither it nor its prefix may be stored.
  const sha = createHash("sha256").update(p.email.toLowerCase()).digest("hex");
  out.push(sha, sha.slice(0, 16));
  const ssnDigits = p.ssn.replace(/-/g, "");
  out.push(
    p.ssn,
    ssnDigits,
    `${ssnDigits.slice(0, 3)} ${ssnDigits.slice(3, 5)} ${ssnDigits.slice(5)}`,
  );
  if (p.phone) {
    const d = p.phone.replace(/\D/g, "");
    const national = d.slice(-10);
    out.push(
      p.phone,
      d,
      national,
      `(${national.slice(0, 3)}) ${national.slice(3, 6)}-${national.slice(6)}`,
    );
    out.push(`${national.slice(0, 3)}-${national.slice(3, 6)}-${national.slice(6)}`);
  }
  return out;
}

async function tableDump(): Promise<string> {
  const { rows } = await pool.query(`SELECT row_to_json(t)::text AS j FROM "${TABLE}" t`);
  return rows.map((r) => r.j as string).join("\n");
}

/** Fails naming the user id and variant index, never the plaintext itself. */
function expectNoPii(text: string, people: Iterable<[string, Person]>, where: string): number {
  let checked = 0;
  const lower = text.toLowerCase();
  for (const [id, person] of people) {
    for (const [i, v] of variants(person).entries()) {
      checked++;
      if (lower.includes(v.toLowerCase())) {
        throw new Error(`${where}: variant #${i} of user ${id}'s PII appears in clear`);
      }
    }
  }
  return checked;
}

/** `envelope --json --config <keysDir>/envelope.config.json status …`, the real CLI process. */
async function cliStatus(args: string[] = []) {
  const { json } = await runEnvelopeCli("status", args, {
    env: { ENVELOPE_DB_URL: DATABASE_URL },
    cwd: keysDir,
    config: join(keysDir, CLI_CONFIG_FILE),
  });
  return json as {
    keys: { role: string; provider: string; keyRef: string }[];
    column?: { byKeyRef: Record<string, number>; scanned: number };
  };
}

beforeAll(async () => {
  // Fails at once, saying to run `pnpm build`, when the CLI's dist/ is missing.
  envelopeCliPath();
  keysDir = await mkdtemp(join(tmpdir(), "express-pg-e2e-"));
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  server = await startServer(
    { DATABASE_URL, USERS_TABLE: TABLE, KEYS_DIR: keysDir, PORT: "0" },
    (entry) => logs.push(entry),
  );
});

afterAll(async () => {
  await server?.close();
  if (pool) {
    for (const t of [
      "",
      "_rewrap_jobs",
      "_rewrap_ranges",
      "_rewrap_checkpoints",
      "_rewrap_failures",
    ]) {
      await pool.query(`DROP TABLE IF EXISTS "${TABLE}${t}"`);
    }
    await pool.end();
  }
  if (keysDir) await rm(keysDir, { recursive: true, force: true });
});

describe("examples/express-pg end to end", () => {
  it("starts with a generated local RSA key and a generated blind-index key", async () => {
    const keys = await health();
    expect(keys.encrypt).toHaveLength(1);
    expect(keys.encrypt[0]).toMatch(/^local-rsa:[0-9a-f]{32}$/);
    const files = await readdir(keysDir);
    expect(files).toEqual(
      expect.arrayContaining(["keyring.json", CLI_CONFIG_FILE, BLIND_INDEX_KEY_FILE]),
    );
    expect(files.filter((f) => f.endsWith(".pem") && !f.endsWith(".pub.pem"))).toHaveLength(1);
    // The CLI, given the key ring's mirror, sees exactly the key the API encrypts with.
    const cli = await cliStatus();
    expect(cli.keys.map((k) => `${k.role} ${k.provider}:${k.keyRef}`)).toEqual([
      `encrypt ${keys.encrypt[0]}`,
    ]);
  });

  it("/ready checks the key with a canary; a key whose KMS is down makes it 503", async () => {
    const res = await api("GET", "/ready");
    expect(res.status, res.text).toBe(200);
    expect(res.json.ok).toBe(true);
    const keys = await health();
    expect(res.json.providers).toEqual([
      expect.objectContaining({ role: "encrypt", status: "ok", provider: "local-rsa" }),
    ]);
    expect(`local-rsa:${res.json.providers[0].keyRef}`).toBe(keys.encrypt[0]);

    // The same app over an envelope whose only key's KMS does not answer.
    const down = new ProviderError("ENVELOPE_KMS_UNAVAILABLE", "test-kms: connection refused.");
    const deadKey: KeyProvider = {
      id: "test-kms",
      keyRef: "key-1",
      handles: (entry) => entry.providerId === "test-kms",
      wrap: () => Promise.reject(down),
      unwrap: () => Promise.reject(down),
    };
    const app = createApp({
      pool,
      envelope: new Envelope({ encrypt: deadKey }),
      blindIndex: createBlindIndexer({ keys: randomBytes(32) }),
      table: TABLE,
    });
    const other = app.listen(0, "127.0.0.1");
    await new Promise((ready) => other.once("listening", ready));
    try {
      const { port } = other.address() as AddressInfo;
      const failed = await fetch(`http://127.0.0.1:${port}/ready`);
      expect(failed.status).toBe(503);
      const report = await failed.json();
      expect(report.ok).toBe(false);
      expect(report.providers[0]).toMatchObject({
        provider: "test-kms",
        keyRef: "key-1",
        status: "failed",
        error: { code: "ENVELOPE_KMS_UNAVAILABLE" },
      });
    } finally {
      other.close();
    }
  });

  it("signs users up and returns them normalized; GET /users/:id reads them back", async () => {
    const created = await Promise.all(Array.from({ length: 24 }, () => signup()));
    for (const user of created) {
      expect({ email: user.email, phone: user.phone, ssn: user.ssn }).toEqual(
        expected.get(user.id),
      );
      const res = await api("GET", `/users/${user.id}`);
      expect(res.status).toBe(200);
      expect(res.json).toEqual(user);
    }
    // Phone is optional.
    const { stored } = newPerson();
    const res = await api("POST", "/users", {
      email: stored.email,
      ssn: stored.ssn.replace(/-/g, ""),
    });
    expect(res.status, res.text).toBe(201);
    expect(res.json).toMatchObject({ email: stored.email, phone: null, ssn: stored.ssn });
    expected.set(res.json.id, { ...stored, phone: null });
  });

  it("finds users by email through the blind index, ignoring case and surrounding spaces", async () => {
    for (const [id, person] of [...expected].slice(0, 8)) {
      for (const query of [
        person.email,
        person.email.toUpperCase(),
        `  ${person.email.toLowerCase()}\t`,
      ]) {
        const res = await api("GET", `/users?email=${encodeURIComponent(query)}`);
        expect(res.status).toBe(200);
        expect(res.json.users.map((u: UserBody) => u.id)).toEqual([id]);
        expect(res.json.users[0]).toMatchObject(person);
      }
    }
    const none = await api("GET", `/users?email=${encodeURIComponent("nobody@nowhere.test")}`);
    expect(none.json).toEqual({ users: [] });
    // The index column holds a blind index, one per row, and lookups use nothing else.
    const { rows } = await pool.query(`SELECT email_idx FROM "${TABLE}"`);
    expect(rows.every((r) => /^[0-9a-f]{8}$/.test(r.email_idx))).toBe(true);
  });

  it("refuses a second signup with the same email in another case", async () => {
    const [, person] = [...expected][0]!;
    const res = await api("POST", "/users", {
      email: ` ${person.email.toUpperCase()}`,
      phone: "+15550000000",
      ssn: "999-00-1111",
    });
    expect(res.status).toBe(409);
    expect(res.json.error.code).toBe("EMAIL_TAKEN");
  });

  it("updates the phone (and clears it with null)", async () => {
    const [id] = [...expected][1]!;
    const res = await api("PATCH", `/users/${id}`, { phone: "+44 20 7946 0000" });
    expect(res.status, res.text).toBe(200);
    expect(res.json.phone).toBe("+442079460000");
    expected.set(id, { ...expected.get(id)!, phone: "+442079460000" });
    expect((await api("GET", `/users/${id}`)).json.phone).toBe("+442079460000");

    const [id2] = [...expected][2]!;
    const cleared = await api("PATCH", `/users/${id2}`, { phone: null });
    expect(cleared.json.phone).toBeNull();
    expected.set(id2, { ...expected.get(id2)!, phone: null });
    const { rows } = await pool.query(`SELECT phone FROM "${TABLE}" WHERE id = $1`, [id2]);
    expect(rows[0].phone).toBeNull();
  });

  it("answers bad input with JSON errors that never echo the input", async () => {
    const secret = "leaky.secret.4471@example.test";
    const cases = [
      {
        method: "POST",
        path: "/users",
        body: { email: "not-an-email", ssn: "123-45-6789" },
        status: 400,
        code: "INVALID_INPUT",
      },
      {
        method: "POST",
        path: "/users",
        body: { email: secret, ssn: "12-345" },
        status: 400,
        code: "INVALID_INPUT",
      },
      {
        method: "POST",
        path: "/users",
        body: { email: secret, ssn: "123-45-6789", [secret]: 1 },
        status: 400,
        code: "UNKNOWN_FIELD",
      },
      {
        method: "POST",
        path: "/users",
        raw: `{"email":"${secret}", "ssn": 123-45-6789}`,
        status: 400,
        code: "INVALID_JSON",
      },
      { method: "POST", path: "/users", body: [secret], status: 400, code: "INVALID_INPUT" },
      {
        method: "PATCH",
        path: `/users/${[...expected.keys()][0]}`,
        body: { phone: secret },
        status: 400,
        code: "INVALID_INPUT",
      },
      {
        method: "PATCH",
        path: `/users/${[...expected.keys()][0]}`,
        body: { email: secret },
        status: 400,
        code: "UNKNOWN_FIELD",
      },
      {
        method: "GET",
        path: `/users?email=${encodeURIComponent(`x${secret}@@`)}`,
        status: 400,
        code: "INVALID_INPUT",
      },
      { method: "GET", path: "/users", status: 400, code: "INVALID_INPUT" },
      {
        method: "GET",
        path: `/users/${encodeURIComponent(secret)}`,
        status: 400,
        code: "INVALID_ID",
      },
      {
        method: "GET",
        path: "/users/00000000-0000-4000-8000-000000000000",
        status: 404,
        code: "USER_NOT_FOUND",
      },
      {
        method: "PATCH",
        path: "/users/00000000-0000-4000-8000-000000000000",
        body: { phone: "+15550001111" },
        status: 404,
        code: "USER_NOT_FOUND",
      },
      { method: "DELETE", path: "/users", status: 404, code: "NOT_FOUND" },
    ];
    for (const c of cases) {
      const res = await api(c.method, c.path, c.body, c.raw);
      expect(res.status, `${c.method} ${c.code}`).toBe(c.status);
      expect(res.json.error.code).toBe(c.code);
      expect(typeof res.json.error.message).toBe("string");
      expect(res.text).not.toContain("leaky");
      expect(res.text).not.toContain("4471");
    }
    expect(JSON.stringify(logs)).not.toContain("leaky");
  });

  it("stores no PII in clear: the table dump holds none of the plaintexts or their variants", async () => {
    const dump = await tableDump();
    // Positive controls: the dump is the whole table, ids in clear, every field an envelope.
    for (const id of expected.keys()) expect(dump).toContain(id);
    const { rows } = await pool.query(`SELECT email, phone, ssn FROM "${TABLE}"`);
    expect(rows).toHaveLength(expected.size);
    for (const r of rows) {
      expect(r.email).toMatch(/^ev1:/);
      expect(r.ssn).toMatch(/^ev1:/);
      if (r.phone !== null) expect(r.phone).toMatch(/^ev1:/);
    }
    expect(expectNoPii(dump, expected, "table dump")).toBeGreaterThan(expected.size * 15);
    // The grep itself can fail: it finds a plaintext planted in a copy of the dump.
    const [id, person] = [...expected][5]!;
    expect(() =>
      expectNoPii(`${dump}\n${person.ssn.replace(/-/g, "")}`, [[id, person]], "control"),
    ).toThrow(/variant #\d+ of user/);
    // Logs carry ids and codes only.
    expectNoPii(JSON.stringify(logs), expected, "logs");
  });

  it("rotates the key mid-traffic with the envelope CLI without losing a signup or an update", {
    timeout: 90_000,
  }, async () => {
    const before = await health();
    const oldRef = before.encrypt[0]!;
    const ids = [...expected.keys()];
    let stop = false;
    let rotating = false;
    let writesDuringRotation = 0;
    const failures: string[] = [];
    const WORKERS = 4;

    const worker = async (w: number) => {
      const mine = ids.filter((_, i) => i % WORKERS === w);
      while (!stop) {
        try {
          if (randomInt(3) === 0) {
            const { sent, stored } = newPerson();
            const res = await api("POST", "/users", sent);
            if (res.status !== 201) failures.push(`signup ${res.status} ${res.json?.error?.code}`);
            else {
              expected.set(res.json.id, stored);
              mine.push(res.json.id);
            }
          } else {
            const id = mine[randomInt(mine.length)]!;
            const phone = `+1555${uniqueDigits(7)}`;
            const res = await api("PATCH", `/users/${id}`, { phone });
            if (res.status !== 200) failures.push(`patch ${res.status} ${res.json?.error?.code}`);
            else expected.set(id, { ...expected.get(id)!, phone });
          }
          if (rotating) writesDuringRotation++;
        } catch (error) {
          failures.push(`request failed: ${(error as Error).message}`);
        }
      }
    };

    // Enough rows that the rewrap spans several batches while traffic runs.
    await Promise.all(Array.from({ length: 40 }, () => signup()));
    ids.push(...[...expected.keys()].filter((id) => !ids.includes(id)));

    const traffic = Array.from({ length: WORKERS }, (_, w) => worker(w));
    await new Promise((r) => setTimeout(r, 300));
    rotating = true;
    const steps: RotationStep[] = [];
    let report: Awaited<ReturnType<typeof rotateLocalKey>>;
    try {
      report = await rotateLocalKey({
        databaseUrl: DATABASE_URL,
        table: TABLE,
        keysDir,
        env: {},
        apiUrl: server.url,
        batchSize: 10,
        onStep: (s) => steps.push(s),
      });
    } finally {
      rotating = false;
      await new Promise((r) => setTimeout(r, 300));
      stop = true;
      await Promise.all(traffic);
    }

    expect(failures).toEqual([]);
    expect(writesDuringRotation).toBeGreaterThan(10);
    const newRef = report.key;
    expect(newRef).not.toBe(oldRef);
    expect(report.rewrapped).toBeGreaterThan(0);
    expect(steps.some((s) => s.step === "api reloaded" && s.via === "health")).toBe(true);
    expect(Object.keys(report.byKeyRef)).toEqual([newRef]);

    // It went through the CLI: `rotate`, then `rewrap --apply` with the app's context and a
    // `status` scan per pass; the database URL never on a command line.
    const commands = steps.flatMap((s) => (s.step === "cli" ? [s.command] : []));
    const config = join(keysDir, CLI_CONFIG_FILE);
    expect(commands[0]).toMatch(new RegExp(`^envelope --config ${config} rotate --dir `));
    const rewraps = commands.filter((c) => / rewrap /.test(c));
    expect(rewraps).toHaveLength(report.passes);
    for (const c of rewraps) {
      expect(c).toContain(`--table ${TABLE} --pk id --column email,phone,ssn`);
      expect(c).toContain("--context 'table={table},column={column},id={pk}' --apply");
    }
    expect(commands.filter((c) => / status --table /.test(c))).toHaveLength(report.passes);
    expect(commands.join("\n")).not.toContain("postgres://");
    // … and the CLI's jobs are in the database: one per pass, complete.
    const jobs = await pool.query(`SELECT * FROM "${TABLE}_rewrap_jobs"`);
    expect(jobs.rows).toHaveLength(report.passes);

    // The API, and the config on disk, now know the new key only; the old one is retired.
    expect(await health()).toEqual({ encrypt: [newRef], decrypt: [newRef] });
    const ring = (await readKeyRing(keysDir))!;
    expect(ring.decrypt).toEqual([]);
    expect(ring.rotatingFrom).toBeUndefined();
    expect(await readdir(join(keysDir, "retired"))).toHaveLength(2);
    const cliConfig = JSON.parse(await readFile(config, "utf8"));
    expect(cliConfig).toMatchObject({ encrypt: keyUri(keysDir, ring.encrypt), decrypt: [] });
    expect(Object.keys(cliConfig.rotation.keyCreated)).toEqual([keyUri(keysDir, ring.encrypt)]);
    const after = await cliStatus(["--table", TABLE, "--column", "email,phone,ssn"]);
    expect(after.keys.map((k) => `${k.role} ${k.provider}:${k.keyRef}`)).toEqual([
      `encrypt ${newRef}`,
    ]);
    // (traffic went on after the rotation's last scan: count the values now)
    const { rows: counts } = await pool.query(
      `SELECT count(email) + count(phone) + count(ssn) AS n FROM "${TABLE}"`,
    );
    expect(after.column?.byKeyRef).toEqual({ [newRef]: Number(counts[0].n) });

    // Every row: every sealed field carries exactly one entry, and it names the new key.
    const { rows } = await pool.query(`SELECT * FROM "${TABLE}"`);
    expect(rows).toHaveLength(expected.size);
    for (const row of rows) {
      for (const column of ["email", "phone", "ssn"]) {
        if (row[column] === null) continue;
        const refs = decodeEnvelope(fromText(row[column])).entries.map(
          (e) => `${e.providerId}:${e.keyRef}`,
        );
        expect(refs, `${row.id}.${column}`).toEqual([newRef]);
      }
    }

    // Every user reads back correctly: over HTTP (the API has only the new key now) …
    for (const [id, person] of expected) {
      const res = await api("GET", `/users/${id}`);
      expect(res.status, res.text).toBe(200);
      expect({ email: res.json.email, phone: res.json.phone, ssn: res.json.ssn }).toEqual(person);
    }
    // … and independently of the app, with an envelope built from the new key file alone.
    const alone = await createEnvelope({ encrypt: keyUri(keysDir, ring.encrypt) });
    const cipher = createRecordCipher(
      alone,
      {
        table: TABLE,
        encrypted: ["email", "phone", "ssn"],
        blindIndexes: { email: { normalize: "email" } },
      },
      {
        blindIndex: createBlindIndexer({
          keys: blindIndexKeysFrom({ file: join(keysDir, BLIND_INDEX_KEY_FILE) }),
        }),
      },
    );
    for (const row of rows) {
      const opened = await cipher.open<Person>(row);
      expect({ email: opened.email, phone: opened.phone, ssn: opened.ssn }).toEqual(
        expected.get(row.id),
      );
    }

    // Lookups still work, and still nothing in clear, including rows written mid-rotation.
    const [lastId, last] = [...expected].at(-1)!;
    const found = await api("GET", `/users?email=${encodeURIComponent(last.email.toLowerCase())}`);
    expect(found.json.users.map((u: UserBody) => u.id)).toEqual([lastId]);
    expectNoPii(await tableDump(), expected, "table dump after rotation");
    expectNoPii(JSON.stringify(logs), expected, "logs after rotation");
  });
});
