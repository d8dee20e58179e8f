// What an operator gets wrong when following the rotation runbook, and what rotate (and
// retire, seed-demo) must refuse before writing anything: the wrong folder, a JS config, keys
// from the environment, a typo in --table or --column, a rotation to the key already in use.

import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PG_URL } from "../../batch-rewrap/test/support.js";
import { cli, tempDir } from "./support.js";

const table = `rot_guard_${process.pid}_${randomBytes(2).toString("hex")}`;
let cwd: string;
let config: string;
const configText = () => readFileSync(join(cwd, "envelope.config.json"), "utf8");
const keyFiles = () => readdirSync(join(cwd, "keys")).sort();

beforeAll(async () => {
  cwd = tempDir();
  const init = await cli(["keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd });
  expect(init.code, init.stderr).toBe(0);
  config = configText();
  const db = await connect(PG_URL);
  await db.query(`CREATE TABLE ${table} (id BIGINT PRIMARY KEY, email TEXT)`);
  await db.close();
});
afterAll(async () => {
  const db = await connect(PG_URL);
  await db.query(`DROP TABLE IF EXISTS ${table}`);
  await db.close();
});

/** Runs the command, expects exit 2 with `message`, and that nothing was written. */
async function refused(args: string[], message: RegExp, env: Record<string, string> = {}) {
  const keysBefore = keyFiles();
  const run = await cli(["--json", ...args], { cwd, env });
  expect(run.code, run.stderr).toBe(EXIT_CODES.USAGE);
  expect(run.json().error.message).toMatch(message);
  expect(configText()).toBe(config);
  expect(keyFiles()).toEqual(keysBefore);
  return run;
}

describe("rotate refuses, changing nothing", () => {
  it("in a folder with no config file: no key, no config of its own", async () => {
    const empty = tempDir();
    const run = await cli(["rotate", "--bits", "2048"], { cwd: empty });
    expect(run.code).toBe(EXIT_CODES.USAGE);
    expect(run.stderr).toMatch(/no config file .* keygen --init/);
    expect(readdirSync(empty)).toEqual([]);
  });

  it("beside a JS config, which an envelope.config.json would silently replace", async () => {
    const js = tempDir();
    writeFileSync(
      join(js, "envelope.config.mjs"),
      "export default { encrypt: 'local-aes://env/K' };\n",
    );
    for (const command of [
      ["rotate", "--bits", "2048"],
      ["retire", "x", "--table", "t", "--column", "c"],
    ]) {
      const run = await cli(command, { cwd: js });
      expect(run.code).toBe(EXIT_CODES.USAGE);
      expect(run.stderr).toMatch(/envelope\.config\.mjs is not a JSON config/);
    }
    expect(readdirSync(js)).toEqual(["envelope.config.mjs"]);
  });

  it("while ENVELOPE_ENCRYPT_KEYS or ENVELOPE_DECRYPT_KEYS override the file's keys", async () => {
    const key = `local-aes://env/K`;
    await refused(["rotate", "--bits", "2048"], /ENVELOPE_ENCRYPT_KEYS override its keys/, {
      ENVELOPE_ENCRYPT_KEYS: key,
      K: randomBytes(32).toString("hex"),
    });
    await refused(["rotate", "--bits", "2048"], /ENVELOPE_DECRYPT_KEYS override its keys/, {
      ENVELOPE_DECRYPT_KEYS: key,
      K: randomBytes(32).toString("hex"),
    });
  });

  it("to the key that already encrypts", async () => {
    const current = JSON.parse(config).encrypt as string;
    await refused(["rotate", "--to", current], /is the key that already encrypts/);
    // The same key written another way: its public half.
    await refused(
      ["rotate", "--to", current.replace(/\.pem$/, ".pub.pem")],
      /is the key that already encrypts/,
    );
  });

  it("with a --table or --column that does not exist (it would match no job and pass the guard)", async () => {
    await refused(
      ["rotate", "--bits", "2048", "--db", PG_URL, "--table", `${table}_typo`, "--column", "email"],
      /Table "[a-z0-9_]+_typo" was not found/,
    );
    await refused(
      ["rotate", "--bits", "2048", "--db", PG_URL, "--table", table, "--column", "emial"],
      /Column "emial" \(column\) is not in table/,
    );
    await refused(
      ["rotate", "--bits", "2048", "--db", PG_URL, "--column", "email"],
      /--column needs --table/,
    );
    // The names right: it rotates.
    const run = await cli(
      [
        "rotate",
        "--bits",
        "2048",
        "--name",
        "k2",
        "--db",
        PG_URL,
        "--table",
        table,
        "--column",
        "email",
      ],
      { cwd },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(configText()).encrypt).toMatch(/k2\.pem$/);
  });
});

describe("seed-demo", () => {
  it("on a table that exists: exit 2 and the table as it was", async () => {
    const db = await connect(PG_URL);
    await db.query(`INSERT INTO ${table} (id, email) VALUES (1, 'kept')`);
    await db.close();
    const run = await cli(
      ["--json", "seed-demo", "--db", PG_URL, "--table", table, "--rows", "3"],
      {
        cwd,
      },
    );
    expect(run.code, run.stderr).toBe(EXIT_CODES.USAGE);
    expect(run.json().error.code).toBe("ENVELOPE_BAD_INPUT");
    expect(run.json().error.message).toMatch(/already exists.*Nothing was changed/);
    const check = await connect(PG_URL);
    const { rows } = await check.query(`SELECT email FROM ${table}`);
    await check.close();
    expect(rows).toEqual([{ email: "kept" }]);
  });
});
