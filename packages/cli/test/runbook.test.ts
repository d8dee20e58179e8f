import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, dropStateTables, type SqlAdapter } from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { createEnvelope } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PG_URL as PG } from "../../batch-rewrap/test/support.js";
import { type BuiltBin, buildBin, tempDir } from "./support.js";

const ROTATION_MD = fileURLToPath(new URL("../../../docs/ROTATION.md", import.meta.url));
const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;

/** The shell block after the `<!-- runbook:` marker in docs/ROTATION.md, line by line. */
function runbookLines(): string[] {
  const doc = readFileSync(ROTATION_MD, "utf8");
  const from = doc.indexOf("<!-- runbook:");
  expect(from, "docs/ROTATION.md lost its runbook block").toBeGreaterThan(0);
  const block = /```sh\n([\s\S]*?)\n```/.exec(doc.slice(from));
  return block![1]!.split("\n");
}

describe("the ROTATION.md runbook, through the built CLI on PostgreSQL", () => {
  let built: BuiltBin;
  let db: SqlAdapter;
  const table = `cli_runbook_${tag}`;
  const prefix = `cli_runbook_st_${tag}`;
  beforeAll(async () => {
    built = buildBin();
    db = await connect(PG);
  });
  afterAll(async () => {
    built?.remove();
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await dropStateTables(db, prefix);
    await db.close();
  });

  it("rotate → rewrap --apply → (a stale app writes under the old key) → status --check → retire refuses (8); rewrap --apply again → retire succeeds", async () => {
    const cwd = tempDir();
    const configPath = join(cwd, "envelope.config.json");
    // The documented lines, with this test's database, table and state tables.
    const lines = runbookLines().map((line) =>
      line
        .replace(/ENVELOPE_DB_URL=\S+/, `ENVELOPE_DB_URL=${PG}`)
        .replaceAll("--table users", `--table ${table}`)
        .replace(/ --apply$/, ` --apply --state-prefix ${prefix}`),
    );
    const at = (start: string) => {
      const i = lines.findIndex((l) => l.startsWith(start));
      expect(i, `runbook line starting with ${start}`).toBeGreaterThan(0);
      return i;
    };
    const iOld = at("old=");
    const head = lines.slice(0, iOld); // shebang, set -euo pipefail, envelope(), export
    const rewrap = lines[at("envelope rewrap")]!;
    const status = lines[at("envelope status --check")]!;
    const retire = lines[at("envelope retire")]!;
    expect(head.join("\n")).toMatch(/^envelope\(\) \{ node "\$ENVELOPE_CLI" "\$@"; \}/m);
    const sh = (script: string[]) => {
      const run = spawnSync("bash", ["-c", script.join("\n")], {
        cwd,
        env: { PATH: process.env.PATH, ENVELOPE_CLI: built.bin },
        encoding: "utf8",
      });
      return { code: run.status, out: `${run.stdout}${run.stderr}`, stdout: run.stdout };
    };

    // Before the runbook: a key, a config and a table of values under it.
    const setup = sh([
      ...head,
      "envelope keygen --init --bits 2048",
      `envelope seed-demo --table ${table} --rows 200`,
    ]);
    expect(setup.code, setup.out).toBe(0);
    const stale = JSON.parse(readFileSync(configPath, "utf8")); // an app instance's old config

    // The runbook up to the rewrap, as one script: exactly the documented lines.
    const first = sh(lines.slice(0, at("envelope rewrap") + 1));
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain("rewrapped 200");
    const rotated = readFileSync(configPath, "utf8");
    expect(JSON.parse(rotated).decrypt).toEqual([stale.encrypt]);

    // In the middle: an application instance still on the old config writes 10 updates and
    // 5 new rows under the old key.
    const app = await createEnvelope({ encrypt: stale.encrypt });
    const seal = (id: number) =>
      app.encrypt(`stale${id}@example.com`, {
        context: { table, column: "email", id: String(id) },
        output: "text",
      });
    for (let id = 1; id <= 10; id++)
      await db.query(`UPDATE ${table} SET email = $1 WHERE id = $2`, [await seal(id), id]);
    for (let id = 201; id <= 205; id++)
      await db.query(`INSERT INTO ${table} (id, email) VALUES ($1, $2)`, [id, await seal(id)]);

    // status --check passes (the old key still opens them), retire must not.
    const old = `old='${stale.encrypt}'`;
    const second = sh([...head, old, status, retire]);
    expect(second.code, second.out).toBe(EXIT_CODES.KEY_IN_USE);
    expect(second.out).toContain("REFUSED: 15 value(s)");
    expect(readFileSync(configPath, "utf8")).toBe(rotated);

    // The stale instance is updated; the last three lines again.
    const third = sh([...head, old, rewrap, status, retire]);
    expect(third.code, third.out).toBe(0);
    expect(third.out).toContain("rewrapped 15");
    expect(third.out).toContain("removed");
    const after = JSON.parse(readFileSync(configPath, "utf8"));
    expect(after.decrypt).toEqual([]);
    const check = sh([...head, `envelope --json status --check --table ${table} --column email`]);
    expect(check.code, check.out).toBe(0);
    expect(Object.values(JSON.parse(check.stdout).column.byKeyRef)).toEqual([205]);
    // Every value still opens with the config as it is now.
    const now = await createEnvelope({ encrypt: after.encrypt });
    const row = (await db.query(`SELECT email FROM ${table} WHERE id = 3`)).rows[0]!;
    expect(
      await now.decrypt(row.email as string, {
        context: { table, column: "email", id: "3" },
        as: "text",
      }),
    ).toBe("stale3@example.com");
  }, 180_000);
});
