import { countKeyRefs, findJob, rewrapTable, type SqlAdapter } from "@envelope/batch-rewrap";
import { type EncryptionContext, Envelope, type KeyProvider } from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  contextOf,
  DATABASES,
  dropAll,
  instrumented,
  keyPair,
  openDb,
  plaintextOf,
  seedTable,
  uniqueName,
  verifyAll,
} from "./support.js";

/** Seals `plaintextOf(id)` under `key` as the application would, and writes it to row `id`. */
async function writeUnder(db: SqlAdapter, table: string, key: KeyProvider, ids: number[]) {
  const envelope = new Envelope({ encrypt: key, cache: false });
  for (const id of ids) {
    const value = await envelope.encrypt(plaintextOf(id), {
      context: contextOf(table, "email", id),
      output: "binary",
    });
    const updated = await db.query(`UPDATE ${table} SET email = ? WHERE id = ?`, [value, id]);
    if (updated.affected === 0)
      await db.query(`INSERT INTO ${table} (id, email) VALUES (?, ?)`, [id, value]);
  }
}

/** Records the context id of every provider call, per provider. */
function recording(inner: KeyProvider) {
  const ids: string[] = [];
  const note = ({ context }: { context: EncryptionContext }) => {
    ids.push(String(context.id));
  };
  const provider = instrumented(inner, { beforeWrap: note, beforeUnwrap: note });
  return { provider, ids, calls: () => provider.counts.wrap + provider.counts.unwrap };
}

describe.each(DATABASES)("reruns, counters and KMS calls on $name", ({ url }) => {
  let db: SqlAdapter;
  const cleanup: [string, string][] = [];
  beforeAll(async () => {
    db = await openDb(url);
  });
  afterAll(async () => {
    for (const [table, prefix] of cleanup) await dropAll(db, table, prefix);
    await db.close();
  });
  /** A rewrap of `email` from `from` to `to`, 50 rows a batch, state under `prefix`. */
  const jobOn = (table: string, prefix: string, from: KeyProvider, to: KeyProvider) => ({
    db,
    table,
    primaryKey: "id",
    columns: ["email"],
    to,
    decrypt: [from],
    stateTablePrefix: prefix,
    batchSize: 50,
  });
  const names = (label: string) => {
    const table = uniqueName(label);
    const prefix = `${table}_st`;
    cleanup.push([table, prefix]);
    return { table, prefix };
  };

  it("apply after a finished job moves what was written under the old key since, as the dry run said", async () => {
    const { table, prefix } = names("late");
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    await seedTable(db, table, 200, oldKey);
    const options = { ...jobOn(table, prefix, oldKey, newKey), rangeSize: 60 };
    const first = await rewrapTable({ ...options, apply: true });
    expect(first.complete).toBe(true);
    expect(first.reopened).not.toBe(true);
    expect(first.run.rewrapped).toBe(200);
    expect((await findJob(db, first.jobId, { stateTablePrefix: prefix }))?.complete).toBe(true);

    // An application instance still on the old config writes 10 values (6 in rows the job
    // already did, 4 new rows) under the old key.
    const late = [3, 70, 120, 121, 150, 199, 201, 202, 203, 204];
    await writeUnder(db, table, oldKey, late);

    const dry = await rewrapTable(options);
    expect(dry.wouldRewrite).toBe(late.length);
    const applied = await rewrapTable({ ...options, apply: true });
    expect(applied.jobId).toBe(first.jobId);
    expect(applied.run).toMatchObject({ rewrapped: late.length, scanned: 204, failed: 0 });
    expect(applied).toMatchObject({ complete: true, reopened: true, failures: {} });
    expect(applied.total).toMatchObject({ rewrapped: late.length, scanned: 204 });

    const scan = await countKeyRefs({ db, table, primaryKey: "id", columns: ["email"] });
    expect(scan.byKeyRef[`local-aes:${oldKey.keyRef}`] ?? 0).toBe(0);
    expect(scan.byKeyRef[`local-aes:${newKey.keyRef}`]).toBe(204);
    expect(await verifyAll(db, table, newKey)).toEqual({ rows: 204, wrong: [] });

    // And once more: nothing left, the dry run and the apply agree on 0.
    expect((await rewrapTable(options)).wouldRewrite).toBe(0);
    expect((await rewrapTable({ ...options, apply: true })).run.rewrapped).toBe(0);
  });

  it("N bad values count as N failed, once, and the per-code counts add up to it", async () => {
    const { table, prefix } = names("badrows");
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    await seedTable(db, table, 300, oldKey);
    // Past the rows the preflight refuses on: the run records them and leaves them.
    const good = (await db.query(`SELECT email FROM ${table} WHERE id = 1`)).rows[0]!
      .email as Buffer;
    await db.query(`UPDATE ${table} SET email = ? WHERE id IN (200, 250)`, [good.subarray(0, 20)]);
    await db.query(`UPDATE ${table} SET email = ? WHERE id IN (210, 260)`, [
      Buffer.from("not an envelope at all"),
    ]);
    const options = { ...jobOn(table, prefix, oldKey, newKey), apply: true };
    const report = await rewrapTable(options);
    const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    expect(report.complete).toBe(false);
    expect(sum(report.failures)).toBe(4);
    expect(report.run).toMatchObject({ scanned: 300, rewrapped: 296, failed: 4 });
    expect(report.total).toMatchObject({ scanned: 300, rewrapped: 296, failed: 4 });
    const state = await findJob(db, report.jobId, { stateTablePrefix: prefix });
    expect(state?.done.failed).toBe(4);
    expect(state?.outstandingFailures).toBe(4);

    // A rerun: goes over the table again, the same 4 fail, still counted once.
    const again = await rewrapTable(options);
    expect(again.run).toMatchObject({ scanned: 300, rewrapped: 0, failed: 4 });
    expect(sum(again.failures)).toBe(4);

    // Fixed by hand: the rerun's retry step clears them, failed is 0.
    await writeUnder(db, table, oldKey, [200, 210, 250, 260]);
    const fixed = await rewrapTable(options);
    expect(fixed).toMatchObject({ complete: true, failures: {} });
    expect(fixed.run).toMatchObject({ rewrapped: 4, failed: 0 });
    expect(await verifyAll(db, table, newKey)).toEqual({ rows: 300, wrong: [] });
  });

  it("a rerun is not refused by the values it already recorded as failed; it retries them and moves the rest", async () => {
    const { table, prefix } = names("tampered");
    const oldKey = keyPair().provider;
    const newKey = keyPair().provider;
    await seedTable(db, table, 200, oldKey);
    // Altered in place (last tag byte): ENVELOPE_DECRYPT_FAILED, the preflight's refusal had
    // the rerun sampled them, past the rows the first run's preflight reads.
    for (const id of [150, 180]) {
      const value = (await db.query(`SELECT email FROM ${table} WHERE id = ?`, [id])).rows[0]!
        .email as Buffer;
      const altered = Buffer.from(value);
      altered[altered.length - 1]! ^= 1;
      await db.query(`UPDATE ${table} SET email = ? WHERE id = ?`, [altered, id]);
    }
    const options = { ...jobOn(table, prefix, oldKey, newKey), apply: true };
    const first = await rewrapTable(options);
    expect(first.run).toMatchObject({ rewrapped: 198, failed: 2 });
    expect(first.failures).toEqual({ ENVELOPE_DECRYPT_FAILED: 2 });

    // Written since under the old key by an instance on the old config: the rerun moves it.
    await writeUnder(db, table, oldKey, [201]);
    const again = await rewrapTable(options);
    expect(again.run).toMatchObject({ rewrapped: 1, failed: 2 });
    expect(again.failures).toEqual({ ENVELOPE_DECRYPT_FAILED: 2 });

    // Repaired: the next rerun finishes the job.
    await writeUnder(db, table, oldKey, [150, 180]);
    const fixed = await rewrapTable(options);
    expect(fixed).toMatchObject({ complete: true, failures: {} });
    expect(await verifyAll(db, table, newKey)).toEqual({ rows: 201, wrong: [] });
  });

  it("a run with nothing to do makes no KMS call; one with k values to move samples only those", async () => {
    const { table, prefix } = names("calls");
    const oldKey = recording(keyPair().provider);
    const newKey = recording(keyPair().provider);
    await seedTable(db, table, 200, newKey.provider);
    const options = jobOn(table, prefix, oldKey.provider, newKey.provider);
    const seedCalls = newKey.calls();

    // Nothing to do: dry run and apply, no provider call at all.
    const dry = await rewrapTable(options);
    const noop = await rewrapTable({ ...options, apply: true });
    expect(dry.wouldRewrite).toBe(0);
    expect(noop.run).toMatchObject({ rewrapped: 0, skipped: 200, kmsCalls: 0 });
    expect(noop).toMatchObject({ complete: true, preflightChecked: 0 });
    expect(oldKey.calls()).toBe(0);
    expect(newKey.calls()).toBe(seedCalls);

    // k = 5 values under the old key, far past the first rows: the preflight finds them
    // and samples only them.
    const moved = [120, 140, 160, 180, 199];
    await writeUnder(db, table, oldKey.provider, moved);
    oldKey.ids.length = 0;
    newKey.ids.length = 0;
    const run = await rewrapTable({ ...options, apply: true });
    expect(run.preflightChecked).toBe(moved.length);
    expect(run.run.rewrapped).toBe(moved.length);
    const allowed = new Set(moved.map(String));
    expect(oldKey.ids.filter((id) => !allowed.has(id))).toEqual([]);
    expect(newKey.ids.filter((id) => !allowed.has(id))).toEqual([]);
    expect(oldKey.ids.length).toBeGreaterThan(0);
    expect(await verifyAll(db, table, newKey.provider)).toEqual({ rows: 200, wrong: [] });
  });

  it("a value under a key the config lacks: the preflight gives its advice once", async () => {
    const { table, prefix } = names("nokey");
    const oldKey = keyPair().provider;
    await seedTable(db, table, 20, oldKey);
    const error = await rewrapTable({
      db,
      table,
      primaryKey: "id",
      columns: ["email"],
      to: keyPair().provider,
      stateTablePrefix: prefix,
      apply: true,
    }).catch((e) => e);
    expect(error).toMatchObject({ code: "ENVELOPE_NO_MATCHING_KEY" });
    expect(error.message.match(/decrypt (list|keys)/g)).toEqual(["decrypt list"]);
    expect(error.message).toMatch(/Nothing was written\.$/);
  });
});
