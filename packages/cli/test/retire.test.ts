import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, dropStateTables } from "@envelope/batch-rewrap";
import { EXIT_CODES } from "@envelope/cli";
import { afterAll, describe, expect, it } from "vitest";
import { selectDatabases } from "../../../test/support/databases.js";
import { MYSQL_URL as MY, PG_URL as PG } from "../../batch-rewrap/test/support.js";
import { cli, tempDir } from "./support.js";

const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;

// PGlite is one process at a time: only the CLI opens it, one command after the other.
const pgliteDir = tempDir();
const cases = selectDatabases<[string, string]>([
  ["PostgreSQL", PG],
  ["MariaDB", MY],
  ["PGlite", `pglite://${join(pgliteDir, "db")}`],
]);

describe.each(cases)("status --check and retire on %s", (_name, url) => {
  const table = `cli_retire_${tag}`;
  const prefix = `cli_retire_st_${tag}`;
  afterAll(async () => {
    const db = await connect(url);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await dropStateTables(db, prefix);
    await db.close();
  });

  it("stranded values fail status --check (exit 7); retire refuses with the count while values need the key (exit 8, config unchanged) and succeeds once they moved", async () => {
    const cwd = tempDir();
    const configPath = join(cwd, "envelope.config.json");
    const on = ["--db", url, "--table", table, "--column", "email"];
    const k1 = await cli(["--json", "keygen", "--init", "--bits", "2048", "--name", "k1"], { cwd });
    expect(k1.code, k1.stderr).toBe(0);
    const old = `local-rsa:${k1.json().keyRef}`;
    const seeded = await cli(["seed-demo", "--db", url, "--table", table, "--rows", "30"], { cwd });
    expect(seeded.code, seeded.stderr).toBe(0);
    const k2 = await cli(["--json", "rotate", "--bits", "2048", "--name", "k2"], { cwd });
    expect(k2.code, k2.stderr).toBe(0);
    const rotated = readFileSync(configPath, "utf8");

    // The old key is still in `decrypt`: nothing is stranded.
    expect((await cli(["status", "--check", ...on], { cwd })).code).toBe(0);

    // An operator removes the old key by hand before the rewrap: 30 values are stranded.
    const config = JSON.parse(rotated);
    writeFileSync(configPath, JSON.stringify({ ...config, decrypt: [] }));
    const human = await cli(["status", ...on], { cwd });
    expect(human.code).toBe(0); // without --check it only reports
    expect(human.stdout).toContain("NOT in the config: these cannot be decrypted");
    expect(human.stdout).toContain("STRANDED: 30 value(s)");
    const checked = await cli(["--json", "status", "--check", ...on], { cwd });
    expect(checked.code).toBe(EXIT_CODES.STRANDED);
    expect(checked.json()).toMatchObject({
      strandedValues: 30,
      column: { stranded: { [old]: 30 } },
    });
    writeFileSync(configPath, rotated);

    // retire before the rewrap: refused with the count, the file byte for byte as it was.
    for (const args of [
      ["retire", old, ...on],
      ["retire", old, ...on, "--dry-run"],
      ["retire", config.decrypt[0], ...on],
    ]) {
      const refused = await cli(args, { cwd });
      expect(refused.code, refused.stderr).toBe(EXIT_CODES.KEY_IN_USE);
      expect(refused.stdout).toContain("REFUSED: 30 value(s)");
      expect(readFileSync(configPath, "utf8")).toBe(rotated);
    }
    const refusedJson = await cli(["--json", "retire", old, ...on], { cwd });
    expect(refusedJson.code).toBe(EXIT_CODES.KEY_IN_USE);
    expect(refusedJson.json()).toMatchObject({
      refused: true,
      retired: false,
      valuesUnderKey: 30,
      byKeyRef: { [old]: 30 },
    });
    expect(readFileSync(configPath, "utf8")).toBe(rotated);
    // The encrypting key and unknown keys are usage errors, config untouched too.
    expect((await cli(["retire", `local-rsa:${k2.json().keyRef}`, ...on], { cwd })).code).toBe(
      EXIT_CODES.USAGE,
    );
    expect((await cli(["retire", "local-rsa:nope", ...on], { cwd })).code).toBe(EXIT_CODES.USAGE);
    expect(readFileSync(configPath, "utf8")).toBe(rotated);

    const applied = await cli(["rewrap", ...on, "--apply", "--state-prefix", prefix], { cwd });
    expect(applied.code, applied.stderr).toBe(0);

    const dry = await cli(["--json", "retire", old, ...on, "--dry-run"], { cwd });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.json()).toMatchObject({ refused: false, retired: false, valuesUnderKey: 0 });
    expect(readFileSync(configPath, "utf8")).toBe(rotated);

    const done = await cli(["--json", "retire", old, ...on], { cwd });
    expect(done.code, done.stderr).toBe(0);
    expect(done.json()).toMatchObject({ retired: true, valuesUnderKey: 0, scanned: 30 });
    const after = JSON.parse(readFileSync(configPath, "utf8"));
    expect(after.decrypt).toEqual([]);
    expect(after.encrypt).toBe(config.encrypt);
    expect(Object.keys(after.rotation.keyCreated)).toEqual([config.encrypt]);
    expect((await cli(["status", "--check", ...on], { cwd })).code).toBe(0);
  }, 180_000);
});
