import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Worker } from "node:worker_threads";
import { Limiter, rewrapTable, type SqlAdapter } from "@envelope/batch-rewrap";
import { decodeEnvelope, fromText, type KeyProvider, localAesProvider } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_PER_MESSAGE } from "../src/threads/pool.js";
import { dropAll, instrumented, openDb, PG_URL, seedTable, verifyAll } from "./support.js";

// Issue 12, item 6: a rewrap job with local keys rewraps its values on worker threads.
const CHILD = fileURLToPath(new URL("./fixtures/threads-child.mjs", import.meta.url));

/** A key file readable by group and others (a warning, not a refusal, by default). */
function keyFile(hex: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "thr-key-")), "new.key");
  writeFileSync(file, hex, { mode: 0o644 });
  chmodSync(file, 0o644);
  return file;
}

/** A local-aes key: its hex (what a thread's spec names, via env) and a provider. */
function aesKey() {
  const hex = randomBytes(32).toString("hex");
  return { hex, provider: localAesProvider({ keys: hex }) };
}

describe("rewrapTable on worker threads (PostgreSQL)", () => {
  let db: SqlAdapter;
  const cleanup: [string, string][] = [];
  beforeAll(async () => {
    db = await openDb(PG_URL);
  });
  afterAll(async () => {
    for (const [table, prefix] of cleanup) await dropAll(db, table, prefix);
    await db.close();
  });

  const newTable = (label: string) => {
    const table = `thr_${label}_${process.pid}_${randomBytes(3).toString("hex")}`;
    cleanup.push([table, `${table}_st`]);
    return { table, prefix: `${table}_st` };
  };
  const values = async (table: string) =>
    (await db.query(`SELECT id, email FROM ${table} ORDER BY id`)).rows.map((r) => ({
      id: String(r.id),
      email: Buffer.isBuffer(r.email) ? Buffer.from(r.email) : Buffer.from(String(r.email)),
    }));
  const bodyOf = (v: Buffer, form: "binary" | "text") =>
    Buffer.from(decodeEnvelope(form === "text" ? fromText(v.toString("utf8")) : v).body);

  /** Both keys as env variables, and the job options that name them as thread specs. */
  function keys() {
    const oldKey = aesKey();
    const newKey = aesKey();
    const env = { THR_OLD: oldKey.hex, THR_NEW: newKey.hex };
    const spec = { to: ["local-aes://env/THR_NEW"], decrypt: ["local-aes://env/THR_OLD"], env };
    return { oldKey, newKey, spec };
  }

  it.each(["binary", "text"] as const)(
    "%s: every row is rewrapped on the threads, as the main thread would (body kept, opens under the new key with its context)",
    async (form) => {
      const { table, prefix } = newTable(`ok_${form}`);
      const { oldKey, newKey, spec } = keys();
      await seedTable(db, table, 700, oldKey.provider, form);
      const before = await values(table);
      // Counted on the main thread: with threads, the rewraps make no call here.
      const to = instrumented(newKey.provider);
      const from = instrumented(oldKey.provider);
      const report = await rewrapTable({
        db,
        table,
        primaryKey: "id",
        columns: ["email"],
        to,
        decrypt: [from],
        threads: { count: 2, ...spec },
        stateTablePrefix: prefix,
        apply: true,
        batchSize: 100,
        workers: 2,
        sampleSize: 0,
      });
      expect(report.complete).toBe(true);
      expect(report.failures).toEqual({});
      expect(report.run.rewrapped).toBe(700);
      // The threads' key calls are counted: one unwrap and one wrap per value.
      expect(report.kmsCallsPerValue).toBe(2);
      expect(from.counts.unwrap + to.counts.unwrap + to.counts.wrap).toBe(0);
      const check = await verifyAll(db, table, newKey.provider);
      expect(check).toEqual({ rows: 700, wrong: [] });
      const after = await values(table);
      for (const [i, row] of after.entries())
        expect(bodyOf(row.email, form).equals(bodyOf(before[i]!.email, form))).toBe(true);
    },
  );

  it("a damaged or moved value fails with the main thread's code and message and is left byte-identical", async () => {
    // The same keys for both runs: the messages name them.
    const { oldKey, newKey, spec } = keys();
    const other = aesKey(); // a key neither side has: row 20 cannot be unwrapped
    const run = async (threaded: boolean) => {
      const { table, prefix } = newTable(threaded ? "bad_thr" : "bad_main");
      await seedTable(db, table, 40, oldKey.provider);
      const seven = (await values(table))[6]!.email;
      seven[seven.length - 20]! ^= 0x01;
      await db.query(`UPDATE ${table} SET email = ? WHERE id = 7`, [seven]);
      const twelve = (await values(table))[11]!.email;
      await db.query(`UPDATE ${table} SET email = ? WHERE id = 13`, [twelve]);
      await seedTable(db, `${table}_x`, 1, other.provider);
      const stranger = (await values(`${table}_x`))[0]!.email;
      await db.query(`DROP TABLE ${table}_x`);
      await db.query(`UPDATE ${table} SET email = ? WHERE id = 20`, [stranger]);
      const before = await values(table);
      const to = instrumented(newKey.provider);
      const from = instrumented(oldKey.provider);
      const report = await rewrapTable({
        db,
        table,
        primaryKey: "id",
        columns: ["email"],
        to,
        decrypt: [from],
        ...(threaded ? { threads: { count: 2, ...spec } } : {}),
        stateTablePrefix: prefix,
        apply: true,
        batchSize: 10,
        sampleSize: 0,
      });
      const after = await values(table);
      for (const id of [7, 13, 20])
        expect(after[id - 1]!.email.equals(before[id - 1]!.email)).toBe(true);
      const samples = report.sampleFailures.map((f) => `${f.pk} ${f.code} ${f.message}`).sort();
      const mainThreadUnwraps = from.counts.unwrap + to.counts.unwrap;
      return {
        failures: report.failures,
        rewrapped: report.run.rewrapped,
        samples,
        mainThreadUnwraps,
      };
    };
    const main = await run(false);
    const threaded = await run(true);
    expect(main.mainThreadUnwraps).toBeGreaterThan(0);
    expect(threaded.mainThreadUnwraps).toBe(0);
    main.mainThreadUnwraps = threaded.mainThreadUnwraps;
    expect(main.failures).toEqual({ ENVELOPE_DECRYPT_FAILED: 2, ENVELOPE_NO_MATCHING_KEY: 1 });
    expect(main.rewrapped).toBe(37);
    expect(threaded).toEqual(main);
  });

  it('verify: "all" runs on the threads too: each new value is decrypted by the target keys there', async () => {
    const { table, prefix } = newTable("vall");
    const { oldKey, newKey, spec } = keys();
    await seedTable(db, table, 100, oldKey.provider);
    const to = instrumented(newKey.provider);
    const from = instrumented(oldKey.provider);
    const report = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to,
      decrypt: [from],
      threads: { count: 2, ...spec },
      stateTablePrefix: prefix,
      apply: true,
      verify: "all",
      sampleSize: 0,
    });
    expect(report.run.rewrapped).toBe(100);
    // Unwrap, wrap, and the target's unwrap of the new value: all on the threads.
    expect(report.kmsCallsPerValue).toBe(3);
    expect(from.counts.unwrap + to.counts.unwrap + to.counts.wrap).toBe(0);
    expect(await verifyAll(db, table, newKey.provider)).toEqual({ rows: 100, wrong: [] });
  });

  it("a thread that dies mid-job is replaced, and the values it held are retried", async () => {
    const { table, prefix } = newTable("die");
    const { oldKey, newKey, spec } = keys();
    await seedTable(db, table, 600, oldKey.provider);
    // Node emits process "worker" with each Worker this process creates.
    const threads: Worker[] = [];
    const onWorker = (w: Worker) => threads.push(w);
    process.on("worker", onWorker);
    let killed = false;
    try {
      const report = await rewrapTable({
        db,
        table,
        primaryKey: "id",
        columns: ["email"],
        to: newKey.provider,
        decrypt: [oldKey.provider],
        threads: { count: 2, ...spec },
        stateTablePrefix: prefix,
        apply: true,
        batchSize: 50,
        concurrency: 64,
        sampleSize: 0,
        onProgress: () => {
          if (killed) return;
          killed = true;
          void threads[0]!.terminate();
        },
      });
      expect(killed).toBe(true);
      expect(threads.length).toBeGreaterThan(2); // the dead one was replaced
      expect(report.complete).toBe(true);
      expect(report.failures).toEqual({});
      expect(report.run.rewrapped).toBe(600);
      expect(await verifyAll(db, table, newKey.provider)).toEqual({ rows: 600, wrong: [] });
    } finally {
      process.off("worker", onWorker);
    }
  });

  it("keeps several full messages in flight per thread, whatever concurrency says", async () => {
    const { table, prefix } = newTable("inflight");
    const { oldKey, newKey, spec } = keys();
    await seedTable(db, table, 400, oldKey.provider);
    // Values per message sent to the threads (Node emits process "worker" per Worker).
    const sizes: number[] = [];
    const onWorker = (w: Worker) => {
      const post = w.postMessage.bind(w);
      w.postMessage = (m: { values?: unknown[] }, transfer?: never) => {
        if (m.values) sizes.push(m.values.length);
        return post(m, transfer);
      };
    };
    process.on("worker", onWorker);
    try {
      const report = await rewrapTable({
        db,
        table,
        primaryKey: "id",
        columns: ["email"],
        to: newKey.provider,
        decrypt: [oldKey.provider],
        threads: { count: 2, ...spec },
        stateTablePrefix: prefix,
        apply: true,
        concurrency: 1,
        sampleSize: 0,
      });
      expect(report.run.rewrapped).toBe(400);
    } finally {
      process.off("worker", onWorker);
    }
    // concurrency 1 alone would send one value per message.
    expect(Math.max(...sizes)).toBe(MAX_PER_MESSAGE);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(400);
  });

  describe("bad thread options are typed errors, before anything is written", () => {
    const { oldKey, newKey, spec } = keys();
    const kms = "aws-kms://arn:aws:kms:eu-west-1:111122223333:key/abc";
    const cases: [string, object][] = [
      ["a provider object as spec", { threads: { ...spec, count: 2, to: [newKey.provider] } }],
      ["a KMS key", { threads: { ...spec, count: 2, to: [kms] } }],
      ["count 0", { threads: { ...spec, count: 0 } }],
      ["count 1000", { threads: { ...spec, count: 1000 } }],
      ["specs of other keys", { threads: { ...spec, count: 2, to: ["local-aes://env/THR_OLD"] } }],
      ["a missing decrypt key", { threads: { ...spec, count: 2, decrypt: [] } }],
      ["with rateLimit", { threads: { ...spec, count: 2 }, rateLimit: 100 }],
      ["with a paced Limiter", { threads: { ...spec, count: 2 }, rateLimit: new Limiter(50) }],
      ["a missing env variable", { threads: { ...spec, count: 2, env: {} } }],
    ];
    it.each(cases)("%s", async (_, options) => {
      const { table, prefix } = newTable("cfg");
      await seedTable(db, table, 5, oldKey.provider);
      const before = await values(table);
      const job = rewrapTable({
        db,
        table,
        primaryKey: "id",
        columns: ["email"],
        to: newKey.provider,
        decrypt: [oldKey.provider as KeyProvider],
        stateTablePrefix: prefix,
        apply: true,
        ...options,
      });
      await expect(job).rejects.toMatchObject({ name: "ConfigError", code: "ENVELOPE_BAD_CONFIG" });
      // No key material in the message.
      await job.catch((e: Error) => {
        expect(e.message).not.toContain(oldKey.hex);
        expect(e.message).not.toContain(newKey.hex);
      });
      expect(await values(table)).toEqual(before);
    });
  });

  it.each(["esm", "cjs"])(
    "from the built package (%s): the threads do the work and the process exits on its own",
    async (mode) => {
      const { table, prefix } = newTable(`child_${mode}`);
      const { oldKey, newKey } = keys();
      await seedTable(db, table, 300, oldKey.provider);
      const child = spawn(process.execPath, [CHILD], {
        env: {
          ...process.env,
          DB_URL: PG_URL,
          TABLE: table,
          PREFIX: prefix,
          OLD_KEY: oldKey.hex,
          NEW_KEY: newKey.hex,
          MODE: mode,
          ...(mode === "cjs" ? { NEW_KEY_FILE: keyFile(newKey.hex) } : {}),
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (err += d));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
        child.on("exit", (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      // cjs: the new key's spec names a key file others can read: warned about once, by
      // the main thread (not once more per thread).
      const warnings = err.split("ENVELOPE_KEY_FILE_PERMISSIONS").length - 1;
      expect({ code, warnings }).toEqual({ code: 0, warnings: mode === "cjs" ? 1 : 0 });
      expect(JSON.parse(out)).toEqual({ rewrapped: 300, complete: true, mainThreadUnwraps: 0 });
      expect(await verifyAll(db, table, newKey.provider)).toEqual({ rows: 300, wrong: [] });
    },
  );
});
