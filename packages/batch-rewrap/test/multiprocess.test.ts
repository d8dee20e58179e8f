import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { JobReport, SqlAdapter } from "@envelope/batch-rewrap";
import { localAesProvider } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DATABASES,
  dropAll,
  keyPair,
  openDb,
  seedTable,
  uniqueName,
  verifyAll,
} from "./support.js";

/**
 * Several OS processes share ONE job (issue 6: "two and four workers on one job: every
 * row done exactly once"). Each child (fixtures/shared-job-child.ts) is one worker; they
 * start the job at the same moment, and none goes past its first wrap until every one of
 * them holds a claimed range, so each process provably works part of the job. An AFTER
 * UPDATE trigger copies every committed write of the column into an audit table, with
 * the label of the connection that wrote it (each child labels its connections); audit
 * rows roll back with their transaction, so the table holds exactly the writes that
 * happened, and says which process made each.
 */

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CHILD = fileURLToPath(new URL("./fixtures/shared-job-child.ts", import.meta.url));
const ROWS = 3000;

interface ChildResult {
  report?: JobReport;
  error?: { code?: string; message?: string };
}

interface Run {
  child: ChildProcess;
  out: string;
  exit: Promise<number | null>;
}

/** Starts `n` children and drives the READY/GO and CLAIMED/ALL barriers. */
function startAll(n: number, env: (i: number) => Record<string, string>): Run[] {
  const runs: Run[] = [];
  const seen = { READY: new Set<number>(), CLAIMED: new Set<number>() };
  const sent = { GO: false, ALL: false };
  const broadcast = (word: "GO" | "ALL") => {
    if (sent[word]) return;
    sent[word] = true;
    for (const r of runs) {
      if (r.child.stdin?.writable) r.child.stdin.write(`${word}\n`);
      if (word === "ALL") r.child.stdin?.end();
    }
  };
  const advance = () => {
    if (seen.READY.size === n) broadcast("GO");
    if (seen.CLAIMED.size === n) broadcast("ALL");
  };
  for (let i = 0; i < n; i++) {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD], {
      cwd: ROOT,
      env: { ...process.env, ...env(i) },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const run: Run = {
      child,
      out: "",
      exit: new Promise((resolve) => child.on("exit", (code) => resolve(code))),
    };
    child.stdout!.on("data", (d) => {
      run.out += d;
      for (const word of ["READY", "CLAIMED"] as const)
        if (run.out.includes(`${word}\n`)) seen[word].add(i);
      advance();
    });
    child.stderr!.on("data", (d) => {
      run.out += d;
    });
    // A child that dies early must not leave the others waiting at a barrier: the
    // assertions on its exit code and output then say what went wrong.
    child.on("exit", () => {
      seen.READY.add(i);
      seen.CLAIMED.add(i);
      advance();
    });
    runs.push(run);
  }
  return runs;
}

async function createAudit(db: SqlAdapter, table: string, audit: string): Promise<void> {
  if (db.dialect === "mysql") {
    await db.query(
      `CREATE TABLE ${audit} (id BIGINT NOT NULL, writer VARCHAR(64) NULL) ENGINE=InnoDB`,
    );
    await db.query(
      `CREATE TRIGGER ${audit}_tr AFTER UPDATE ON ${table} FOR EACH ROW INSERT INTO ${audit} (id, writer) VALUES (NEW.id, @envelope_worker)`,
    );
  } else {
    await db.query(`CREATE TABLE ${audit} (id BIGINT NOT NULL, writer TEXT NULL)`);
    await db.query(
      `CREATE FUNCTION ${audit}_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO ${audit} (id, writer) VALUES (NEW.id, current_setting('application_name')); RETURN NULL; END $$`,
    );
    await db.query(
      `CREATE TRIGGER ${audit}_tr AFTER UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${audit}_fn()`,
    );
  }
}

describe.each(DATABASES)("separate OS processes sharing one job on $name", ({ url }) => {
  let db: SqlAdapter;
  const cleanup: { table: string; prefix: string; audit: string; dir: string }[] = [];
  beforeAll(async () => {
    db = await openDb(url);
  });
  afterAll(async () => {
    for (const { table, prefix, audit, dir } of cleanup) {
      await dropAll(db, table, prefix); // drops the trigger with the table
      await db.query(`DROP TABLE IF EXISTS ${audit}`);
      if (db.dialect !== "mysql") await db.query(`DROP FUNCTION IF EXISTS ${audit}_fn()`);
      rmSync(dir, { recursive: true, force: true });
    }
    await db?.close();
  });

  it.each([2, 4])(
    "%i processes started together: every row rewrapped exactly once, by one of them",
    async (n) => {
      const table = uniqueName(`mp${n}`);
      const prefix = `${table}_st`;
      const audit = `${table}_audit`;
      const dir = mkdtempSync(join(tmpdir(), "batch-rewrap-mp-"));
      cleanup.push({ table, prefix, audit, dir });
      const oldKey = keyPair();
      const newKey = keyPair();
      await seedTable(db, table, ROWS, oldKey.provider);
      await createAudit(db, table, audit);

      const outFile = (i: number) => join(dir, `child-${i}.json`);
      const runs = startAll(n, (i) => ({
        DB_URL: url,
        TABLE: table,
        PREFIX: prefix,
        OLD_KEY: oldKey.hex,
        NEW_KEY: newKey.hex,
        WORKER: `${table}_w${i}`,
        OUT: outFile(i),
      }));
      const codes = await Promise.all(runs.map((r) => r.exit));

      // No process failed.
      for (const [i, code] of codes.entries()) {
        const written = existsSync(outFile(i)) ? readFileSync(outFile(i), "utf8") : "(no OUT)";
        expect(code, `child ${i}: ${written.slice(0, 500)}\n${runs[i]!.out}`).toBe(0);
      }
      const results = runs.map(
        (_, i) => JSON.parse(readFileSync(outFile(i), "utf8")) as ChildResult,
      );
      for (const r of results) {
        expect(r.error).toBeUndefined();
        expect(r.report!.failures).toEqual({});
        expect(r.report!.run).toMatchObject({ failed: 0, conflicts: 0 });
      }
      const reports = results.map((r) => r.report!);
      // Each process did part of the job; together exactly the row count.
      const perProcess = reports.map((r) => r.run.rewrapped);
      for (const count of perProcess) expect(count).toBeGreaterThan(0);
      expect(perProcess.reduce((a, b) => a + b, 0)).toBe(ROWS);
      // And each row was read by one process only: they divided the job, rather than each
      // doing all of it with the compare-and-swap catching the overlap (conflicts above).
      expect(reports.reduce((a, r) => a + r.run.scanned, 0)).toBe(ROWS);

      // Every committed write, from the audit trigger: one per row, each by one process.
      const { rows: writes } = await db.query(`SELECT id, writer FROM ${audit}`);
      const timesWritten = new Map<string, number>();
      const writtenBy: Set<string>[] = reports.map(() => new Set());
      const unknown: string[] = [];
      for (const w of writes) {
        const id = String(w.id);
        timesWritten.set(id, (timesWritten.get(id) ?? 0) + 1);
        const owner = /_w(\d+)$/.exec(String(w.writer))?.[1];
        if (owner === undefined || !String(w.writer).startsWith(table)) unknown.push(id);
        else writtenBy[Number(owner)]!.add(id);
      }
      expect(unknown).toEqual([]);
      expect([...timesWritten].filter(([, times]) => times !== 1)).toEqual([]);
      expect(timesWritten.size).toBe(ROWS);
      expect(writes.length).toBe(ROWS);
      // What each process wrote is what it reported; the sets are disjoint (each row
      // written once) and together cover the table.
      expect(writtenBy.map((s) => s.size)).toEqual(perProcess);

      // Every row on the target key alone, decrypting to its original plaintext.
      expect(await verifyAll(db, table, localAesProvider({ keys: newKey.hex }))).toEqual({
        rows: ROWS,
        wrong: [],
      });
      // The job's own state agrees: all ranges done, nothing failed, counted once.
      const pending = await db.query(
        `SELECT COUNT(*) AS n FROM ${prefix}_ranges WHERE status <> 'done'`,
      );
      expect(Number(pending.rows[0]!.n)).toBe(0);
      const failures = await db.query(`SELECT COUNT(*) AS n FROM ${prefix}_failures`);
      expect(Number(failures.rows[0]!.n)).toBe(0);
      const jobs = new Set(reports.map((r) => r.jobId));
      expect(jobs.size).toBe(1);
      // The process whose report came last saw every range done (earlier ones may
      // report complete: false, since others still held ranges when they finished).
      expect(reports.some((r) => r.complete)).toBe(true);
      const sums = await db.query(
        `SELECT SUM(scanned) AS scanned, SUM(rewrapped) AS rewrapped, SUM(skipped) AS skipped FROM ${prefix}_checkpoints`,
      );
      const s = sums.rows[0]!;
      expect([s.scanned, s.rewrapped, s.skipped].map(Number)).toEqual([ROWS, ROWS, 0]);
    },
    90_000,
  );
});
