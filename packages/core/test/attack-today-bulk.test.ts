/**
 * Review of today's core change: decryptMany pipelines only while the unwrap cache holds two
 * keys per lane (bulk.ts cacheEntries); readiness on a closed client. Each test asserts the
 * SAFE / documented outcome; `it.fails` marks a finding.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  Envelope,
  type EnvelopeError,
  type EnvelopeOptions,
  type KeyProvider,
  localAesProvider,
} from "../src/index.js";

/** local-aes behind a delay, counting every call and the most unwraps in flight at once. */
function countingKms(delayMs = 3) {
  const aes = localAesProvider({ keys: randomBytes(32) });
  const stats = { wrap: 0, unwrap: 0, inFlight: 0, maxInFlight: 0 };
  const wait = () => new Promise((r) => setTimeout(r, delayMs));
  const provider: KeyProvider = {
    id: aes.id,
    keyRef: aes.keyRef,
    handles: (e) => aes.handles(e),
    async wrap(k, r) {
      stats.wrap++;
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      await wait();
      stats.inFlight--;
      return aes.wrap(k, r);
    },
    async unwrap(entry, request) {
      stats.unwrap++;
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      try {
        await wait();
        return await aes.unwrap(entry, request);
      } finally {
        stats.inFlight--;
      }
    },
  };
  const reset = () => {
    stats.wrap = stats.unwrap = stats.inFlight = stats.maxInFlight = 0;
  };
  return { provider, stats, reset };
}

const COLUMNS = ["email", "phone", "ssn"] as const;
const ctx = (id: number, column: string) => ({ table: "users", column, id: String(id) });

/** `records` rows of three fields, every record under its own data key (as records seals). */
async function sealRows(envelope: Envelope, records: number) {
  const rows: { id: number; column: string; sealed: Buffer; context: Record<string, string> }[] =
    [];
  for (let id = 0; id < records; id++) {
    const materials = await envelope.generateDataKey();
    for (const column of COLUMNS) {
      const context = ctx(id, column);
      rows.push({
        id,
        column,
        sealed: envelope.encryptWithDataKey(materials, `${column}-${id}`, { context }),
        context,
      });
    }
    materials.dataKey.fill(0);
  }
  return rows;
}

const codeOf = (r: { ok: boolean; error?: unknown }) =>
  r.ok ? "ok" : (r.error as EnvelopeError).code;

/** A writer, and a reader with a cold unwrap cache (its own client), on one counting KMS. */
function setup(delayMs = 3, options: Partial<EnvelopeOptions> = {}) {
  const kms = countingKms(delayMs);
  const writer = new Envelope({ encrypt: kms.provider });
  const envelope = new Envelope({ encrypt: kms.provider, ...options });
  return { kms, envelope, writer };
}

describe("today: the pipelining cache-size rule (bulk.ts cacheEntries) and readiness", () => {
  // Was FINDING (low-medium; fixed: client.ts counts the lanes of every running decryptMany
  // against the cache). The rule was per call while the unwrap cache is the client's: in a
  // server, list pages call decryptMany at once; four calls of 4 lanes on a cache of 8 each
  // thought they had room to pipeline, evicted each other's keys before their groups opened,
  // and unwrapped again: 216-234 unwraps for 120 records, more than 4 per call in flight.
  it("four concurrent decryptMany calls that each fit the cache: one unwrap per record, at most 4 per call in flight", async () => {
    const { kms, envelope, writer } = setup(3, { cache: { maxEntries: 8 } });
    const batches = [];
    for (let i = 0; i < 4; i++) batches.push(await sealRows(writer, 30));
    kms.reset();
    const results = await Promise.all(
      batches.map((rows) =>
        envelope.decryptMany(
          rows.map((r) => ({ sealed: r.sealed, context: r.context })),
          { concurrency: 4 },
        ),
      ),
    );
    expect(
      results
        .flat()
        .map(codeOf)
        .every((c) => c === "ok"),
    ).toBe(true);
    expect({ unwraps: kms.stats.unwrap, boundOk: kms.stats.maxInFlight <= 16 }).toEqual({
      unwraps: 120,
      boundOk: true,
    });
  });

  const plain = async (cache: { maxEntries: number } | false) => {
    const { kms, envelope, writer } = setup(3, { cache });
    const rows = await sealRows(writer, 20);
    kms.reset();
    const results = await envelope.decryptMany(
      rows.map((r) => ({ sealed: r.sealed, context: r.context })),
      { concurrency: 4 },
    );
    expect(results.every((r) => r.ok)).toBe(true);
    return { maxInFlight: kms.stats.maxInFlight, unwraps: kms.stats.unwrap };
  };

  it("pipelining off just below the rule (maxEntries 7, concurrency 4): one unwrap per record, bound held", async () => {
    const r = await plain({ maxEntries: 7 });
    expect(r.maxInFlight).toBeLessThanOrEqual(4);
    expect(r.unwraps).toBe(20);
  });

  // Was FINDING (low, docs): the core README's decryptMany row said "values sharing a data
  // key (one record's fields) unwrap it once" without saying that takes the unwrap cache.
  // It says so now; with `cache: false` every field unwraps (20 records × 3 fields = 60),
  // as `decrypt` does, and the concurrency bound holds.
  it("with cache: false, each value unwraps its own data key (as documented), within the bound", async () => {
    const r = await plain(false);
    expect(r.maxInFlight).toBeLessThanOrEqual(4);
    expect(r.unwraps).toBe(60);
  });

  it("check() on a closed client is ENVELOPE_CLOSED (a rejection, not a throw)", async () => {
    const { envelope } = setup(1);
    envelope.close?.();
    await expect(envelope.check()).rejects.toMatchObject({ code: "ENVELOPE_CLOSED" });
  });
});
