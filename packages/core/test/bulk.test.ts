import { randomBytes } from "node:crypto";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { parse } from "../src/format/parse.js";
import { toText } from "../src/format/text.js";
import { entryBytes } from "../src/format/v1/entry-bytes.js";

import {
  type BulkResult,
  Envelope,
  type KeyProvider,
  localAesProvider,
  UnwrapCache,
} from "../src/index.js";
import { fieldContext, pacedKms, sealRows } from "./support/bulk-rows.js";
import { craft } from "./support/craft.js";

// Counts parses and groupings: decryptMany groups each value by its entries' bytes, and
// parses it once, to open it. The paths are from the repository root (vitest's root):
// vitest finds the importer of a relative vi.mock path from a V8-style stack trace, which
// Bun does not print.
vi.mock("/packages/core/src/format/parse.ts", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../src/format/parse.js")>();
  return { ...actual, parse: vi.fn(actual.parse) };
});
vi.mock("/packages/core/src/format/v1/entry-bytes.ts", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../src/format/v1/entry-bytes.js")>();
  return { ...actual, entryBytes: vi.fn(actual.entryBytes) };
});
// The real functions, as the mocks wrap them (vi.importActual of a relative path fails on
// Bun for the same reason).
const parseActual = vi.mocked(parse).getMockImplementation()!;
const entryBytesActual = vi.mocked(entryBytes).getMockImplementation()!;

describe("decryptMany", () => {
  beforeEach(() => {
    vi.mocked(parse).mockClear();
    vi.mocked(entryBytes).mockClear();
  });

  it("groups each value by its entries' bytes and parses it once, to open it", async () => {
    const { provider, stats } = pacedKms({ delayMs: 0 });
    const binary = await sealRows(new Envelope({ encrypt: provider }), 4);
    // The text form too: decoded to group, and again by the parse that opens it.
    const text = (await sealRows(new Envelope({ encrypt: provider }), 2)).map((item) => ({
      ...item,
      sealed: toText(item.sealed),
    }));
    const items = [...binary, ...text];
    const reader = new Envelope({ encrypt: provider });
    vi.mocked(parse).mockClear();
    const results = await reader.decryptMany(items, { concurrency: 2 });
    expect(results.every((r) => r.ok)).toBe(true);
    expect(vi.mocked(parse).mock.calls.length).toBe(items.length);
    expect(vi.mocked(entryBytes).mock.calls.length).toBe(items.length);
    expect(stats.unwraps).toBe(6); // one per record
    // One group per record, text values too: a record's other fields opened with the key
    // their lane held, not through the cache (a hit) or a join of its unwrap.
    const { hits, misses, inflightJoins } = reader.cacheStats();
    expect({ hits, misses, inflightJoins }).toEqual({ hits: 0, misses: 6, inflightJoins: 0 });
  });

  it("sends the first unwrap before the rest of the batch is grouped", async () => {
    const log: string[] = [];
    const { provider } = pacedKms({ delayMs: 1, log });
    const items = await sealRows(new Envelope({ encrypt: provider }), 3);
    log.length = 0;
    vi.mocked(parse).mockImplementation((sealed) => {
      log.push("parse");
      return parseActual(sealed);
    });
    vi.mocked(entryBytes).mockImplementation((bytes) => {
      log.push("group");
      return entryBytesActual(bytes);
    });
    try {
      const reader = new Envelope({ encrypt: provider });
      const results = await reader.decryptMany(items, { concurrency: 2 });
      expect(results.every((r) => r.ok)).toBe(true);
    } finally {
      vi.mocked(parse).mockImplementation(parseActual);
      vi.mocked(entryBytes).mockImplementation(entryBytesActual);
    }
    // Row 1's unwrap goes out once its first value is grouped and parsed to open, before
    // the rest of the batch is grouped; row 2's before grouping ends too.
    expect(log.slice(0, 5)).toEqual(["group", "parse", "unwrap 1", "group", "group"]);
    expect(log.indexOf("unwrap 2")).toBeLessThan(log.lastIndexOf("group"));
  });

  it("refills a slot the moment an unwrap returns (a pool, not rounds)", async () => {
    const log: string[] = [];
    const { provider } = pacedKms({ delayMs: (call) => (call === 1 ? 80 : 5), log });
    const items = await sealRows(new Envelope({ encrypt: provider }), 4);
    log.length = 0;
    const reader = new Envelope({ encrypt: provider });
    const results = await reader.decryptMany(items, { concurrency: 2 });
    expect(results.every((r) => r.ok)).toBe(true);
    // Rows 2, 3 and 4 go through the second slot while the first unwrap is still out.
    expect(log.indexOf("unwrap 4")).toBeLessThan(log.indexOf("returned 1"));
  });

  it("starts the next group's unwrap as soon as the first group's key is back, before any of its values opens", async () => {
    const log: string[] = [];
    const { provider } = pacedKms({ delayMs: 1, log });
    const items = await sealRows(new Envelope({ encrypt: provider }), 2);
    log.length = 0;
    const reader = new Envelope({
      encrypt: provider,
      onAudit: (e) => {
        if (e.operation === "decrypt") log.push("opened");
      },
    });
    const results = await reader.decryptMany(items, { concurrency: 1 });
    expect(results.every((r) => r.ok)).toBe(true);
    expect(log).toEqual([
      "unwrap 1",
      "returned 1",
      "unwrap 2", // before the first row's values open
      "opened",
      "opened",
      "opened",
      "returned 2",
      "opened",
      "opened",
      "opened",
    ]);
  });

  it("lets every lane of a burst send its next call before any lane opens the rest of its group", async () => {
    // The first four KMS answers arrive together, each in its own callback of one event-loop
    // phase (as responses on four sockets read in one poll): four immediates queued at once.
    const log: string[] = [];
    const aes = localAesProvider({ keys: randomBytes(32) });
    let calls = 0;
    const answers: (() => void)[] = [];
    const provider: KeyProvider = {
      id: aes.id,
      keyRef: aes.keyRef,
      handles: (e) => aes.handles(e),
      wrap: (k, r) => aes.wrap(k, r),
      async unwrap(entry, request) {
        const call = ++calls;
        log.push(`unwrap ${call}`);
        if (call === 1) {
          setTimeout(() => {
            for (const answer of answers) setImmediate(answer);
          }, 5);
        }
        await new Promise<void>((r) => {
          if (call <= 4) answers.push(r);
          else setTimeout(r, 1);
        });
        return aes.unwrap(entry, request);
      },
    };
    const items = await sealRows(new Envelope({ encrypt: aes }), 8);
    const reader = new Envelope({
      encrypt: provider,
      onAudit: (e) => {
        if (e.operation === "decrypt" && e.cacheHit) log.push("opened warm");
      },
    });
    const results = await reader.decryptMany(items, { concurrency: 4 });
    expect(results.every((r) => r.ok)).toBe(true);
    const firstWarm = log.indexOf("opened warm");
    for (const call of [5, 6, 7, 8]) expect(log.indexOf(`unwrap ${call}`)).toBeLessThan(firstWarm);
  });

  it("never has an unwrap out beside a lane's next call: a planted value copying a two-entry record's entries", async () => {
    // Values with more than one candidate entry are not pipelined: the planted value's
    // commitment fails on the first entry's cached key and it goes on to unwrap the second.
    const shared = { inFlight: 0, maxInFlight: 0 };
    const counted = (inner: KeyProvider): KeyProvider => ({
      ...inner,
      handles: (e) => inner.handles(e),
      wrap: (k, r) => inner.wrap(k, r),
      async unwrap(entry, request) {
        shared.maxInFlight = Math.max(shared.maxInFlight, ++shared.inFlight);
        try {
          return await inner.unwrap(entry, request);
        } finally {
          shared.inFlight--;
        }
      },
    });
    const a = counted(pacedKms({ delayMs: 2 }).provider);
    const b = counted(pacedKms({ delayMs: 2 }).provider);
    const rows = await sealRows(new Envelope({ encrypt: [a, b] }), 3);
    const { entries } = parse(rows[0]!.sealed);
    expect(entries).toHaveLength(2);
    const planted = craft({ entries: entries.map((e) => ({ ...e })) });
    const reader = new Envelope({ encrypt: a, decrypt: [b] });
    const results = await reader.decryptMany(
      [rows[0]!, { sealed: planted, context: rows[1]!.context }, ...rows.slice(1)],
      { concurrency: 1 },
    );
    expect(results.map((r) => (r.ok ? "ok" : r.error.code))).toEqual([
      "ok",
      "ENVELOPE_COMMITMENT_MISMATCH",
      ...rows.slice(1).map(() => "ok"),
    ]);
    expect(shared.maxInFlight).toBe(1);
  });

  it("unwraps each distinct data key once and returns results in input order", async () => {
    const { provider, stats } = pacedKms();
    const items = (await sealRows(new Envelope({ encrypt: provider }), 20)).reverse();
    const reader = new Envelope({ encrypt: provider }); // a cold cache, as another process has
    const results = await reader.decryptMany(items, { as: "text", concurrency: 4 });
    expect(results.map((r) => (r.ok ? r.value : r.error.code))).toEqual(
      items.map((i) => `${i.context.column}-${i.context.id}`),
    );
    expect(stats.unwraps).toBe(20);
    expect(stats.maxInFlight).toBeLessThanOrEqual(4);
    expect(stats.maxInFlight).toBeGreaterThan(1);
  });

  it("remembers message keys only for values whose data key was cached before (a repeated read)", async () => {
    const remember = vi.spyOn(UnwrapCache.prototype, "rememberMessageKey");
    const peek = vi.spyOn(UnwrapCache.prototype, "peekMessageKey");
    const peeked = () => peek.mock.results.filter((r) => r.value !== undefined).length;
    try {
      const { provider, stats } = pacedKms({ delayMs: 0 });
      const items = await sealRows(new Envelope({ encrypt: provider }), 5);
      const expected = items.map((i) => `${i.context.column}-${i.context.id}`);
      const texts = (results: BulkResult<string>[]) =>
        results.map((r) => (r.ok ? r.value : r.error.code));
      const bulk = new Envelope({ encrypt: provider });
      // First read: keys come from the KMS, the other two fields open with the held key.
      expect(texts(await bulk.decryptMany(items, { as: "text", concurrency: 2 }))).toEqual(
        expected,
      );
      expect(stats.unwraps).toBe(5);
      expect(remember).not.toHaveBeenCalled();
      // Read again (a list page): every data key is cached, each message key is kept.
      expect(texts(await bulk.decryptMany(items, { as: "text", concurrency: 2 }))).toEqual(
        expected,
      );
      expect(remember).toHaveBeenCalledTimes(15);
      expect(peeked()).toBe(0);
      // A third read opens every value with its remembered key: nothing derived or kept.
      expect(texts(await bulk.decryptMany(items, { as: "text", concurrency: 2 }))).toEqual(
        expected,
      );
      expect(remember).toHaveBeenCalledTimes(15);
      expect(peeked()).toBe(15);
      expect(stats.unwraps).toBe(5);
      // Values with two entries (no held key: each field unwraps through the cache) keep
      // none on their first read either, and keep them when read again.
      remember.mockClear();
      const second = localAesProvider({ keys: randomBytes(32) });
      const twice = await sealRows(new Envelope({ encrypt: [provider, second] }), 5);
      const multi = new Envelope({ encrypt: [provider, second] });
      await multi.decryptMany(twice, { concurrency: 2 });
      expect(remember).not.toHaveBeenCalled();
      await multi.decryptMany(twice, { concurrency: 2 });
      expect(remember).toHaveBeenCalledTimes(15);
      // Control: a loop of decrypt keeps the second and third field's keys on its first read.
      remember.mockClear();
      const loop = new Envelope({ encrypt: provider });
      for (const item of items) await loop.decrypt(item.sealed, { context: item.context });
      expect(remember).toHaveBeenCalledTimes(10);
    } finally {
      remember.mockRestore();
      peek.mockRestore();
    }
  });

  it("a malformed copy leading a record's group fails alone; the record opens, one unwrap, bound kept", async () => {
    const remember = vi.spyOn(UnwrapCache.prototype, "rememberMessageKey");
    try {
      const { provider, stats } = pacedKms({ delayMs: 2 });
      const items = await sealRows(new Envelope({ encrypt: provider }), 4);
      // The same entries (so the same group), then a byte past the end: parse refuses it.
      const planted = items
        .filter((_, i) => i % 3 === 0)
        .map((item) => ({ ...item, sealed: Buffer.concat([item.sealed, Buffer.of(0)]) }));
      const reader = new Envelope({ encrypt: provider });
      const results = await reader.decryptMany([...planted, ...items], { concurrency: 2 });
      expect(results.slice(0, 4).map((r) => (r.ok ? "ok" : r.error.code))).toEqual(
        Array(4).fill("ENVELOPE_BAD_FORMAT"),
      );
      expect(results.slice(4).every((r) => r.ok)).toBe(true);
      expect(stats.unwraps).toBe(4);
      expect(stats.maxInFlight).toBeLessThanOrEqual(2);
      expect(remember).not.toHaveBeenCalled(); // still a first read
    } finally {
      remember.mockRestore();
    }
  });

  it("groups a large text value by the head of its text, not by decoding it whole", async () => {
    const { provider, stats } = pacedKms({ delayMs: 0 });
    const writer = new Envelope({ encrypt: provider });
    const big = "x".repeat(100 * 1024);
    const items = [];
    for (let id = 0; id < 3; id++) {
      const materials = await writer.generateDataKey();
      for (const column of ["notes", "bio"]) {
        const context = fieldContext(id, column);
        const sealed = writer.encryptWithDataKey(materials, `${big}${id}`, { context });
        items.push({ sealed: toText(sealed), context });
      }
      materials.dataKey.fill(0);
    }
    const reader = new Envelope({ encrypt: provider });
    const results = await reader.decryptMany(items, { as: "text", concurrency: 2 });
    expect(results.map((r) => r.ok && r.value.length)).toEqual(Array(6).fill(big.length + 1));
    const grouped = vi.mocked(entryBytes).mock.calls.map(([bytes]) => bytes.length);
    expect(grouped).toEqual(Array(6).fill(3 * 1024)); // a head, not ~100 KiB
    expect(stats.unwraps).toBe(3);
    const { hits, misses, inflightJoins } = reader.cacheStats();
    expect({ hits, misses, inflightJoins }).toEqual({ hits: 0, misses: 3, inflightJoins: 0 });
  });

  it("groups text values whose entries run past the decoded head (large wrapped keys)", async () => {
    // Wrapped keys padded to 3,600 bytes: the entries end past the 3 KiB head.
    const paced = pacedKms({ delayMs: 1 });
    const pad = 3600;
    const provider: KeyProvider = {
      ...paced.provider,
      handles: (e) => paced.provider.handles(e),
      wrap: async (key, request) => {
        const wrapped = await paced.provider.wrap(key, request);
        return { ...wrapped, wrapped: Buffer.concat([wrapped.wrapped, Buffer.alloc(pad)]) };
      },
      unwrap: (entry, request) =>
        paced.provider.unwrap(
          { ...entry, wrapped: entry.wrapped.subarray(0, entry.wrapped.length - pad) },
          request,
        ),
    };
    const rows = await sealRows(new Envelope({ encrypt: provider }), 3);
    const items = rows.map((item) => ({ ...item, sealed: toText(item.sealed) }));
    // A malformed copy of the first record's first field (a stray character at the end):
    // its head is the record's, so it joins the group, and it fails alone.
    items.push({ ...items[0]!, sealed: `${items[0]!.sealed}!` });
    const reader = new Envelope({ encrypt: provider });
    const results = await reader.decryptMany(items, { as: "text", concurrency: 2 });
    expect(results.map((r) => (r.ok ? r.value : r.error.code))).toEqual([
      ...rows.map((r) => `${r.context.column}-${r.context.id}`),
      "ENVELOPE_BAD_FORMAT",
    ]);
    expect(paced.stats.unwraps).toBe(3);
    expect(paced.stats.maxInFlight).toBeLessThanOrEqual(2);
    // One group per record: the other fields opened with the key their lane held.
    const { hits, misses, inflightJoins } = reader.cacheStats();
    expect({ hits, misses, inflightJoins }).toEqual({ hits: 0, misses: 3, inflightJoins: 0 });
  });

  it("a bad item gets its own typed error; the others open", async () => {
    const envelope = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) });
    const [a, b] = await sealRows(envelope, 1);
    const results = await envelope.decryptMany([
      a!,
      { sealed: "ev1:not-an-envelope" },
      { sealed: b!.sealed, context: fieldContext(99, "phone") }, // another row's context
      null as never,
      b!,
    ]);
    expect(results.map((r) => (r.ok ? "ok" : r.error.code))).toEqual([
      "ok",
      "ENVELOPE_BAD_FORMAT",
      "ENVELOPE_DECRYPT_FAILED",
      "ENVELOPE_BAD_INPUT",
      "ok",
    ]);
  });

  it("an item whose getter throws fails alone with ENVELOPE_BAD_INPUT", async () => {
    const envelope = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) });
    const [a, b] = await sealRows(envelope, 1);
    const trap = {
      get sealed(): never {
        throw new Error("getter");
      },
    };
    const results = await envelope.decryptMany([a!, trap as never, b!]);
    expect(results.map((r) => (r.ok ? "ok" : r.error.code))).toEqual([
      "ok",
      "ENVELOPE_BAD_INPUT",
      "ok",
    ]);
    const sealed = await envelope.encryptMany([
      { plaintext: "x" },
      {
        get plaintext(): never {
          throw new Error("getter");
        },
      } as never,
    ]);
    expect(sealed.map((r) => (r.ok ? "ok" : r.error.code))).toEqual(["ok", "ENVELOPE_BAD_INPUT"]);
    // A context whose getter throws (a lazy ORM field), and an array whose element does.
    const lazy = {
      get id(): never {
        throw new Error("lazy ORM field");
      },
    };
    const rows = [a!, { sealed: b!.sealed, context: lazy }, b!];
    Object.defineProperty(rows, 2, {
      get: () => {
        throw new Error("lazy row");
      },
    });
    const mixed = await envelope.decryptMany(rows as never);
    expect(mixed.map((r) => (r.ok ? "ok" : r.error.code))).toEqual([
      "ok",
      "ENVELOPE_BAD_INPUT",
      "ENVELOPE_BAD_INPUT",
    ]);
    const lazySeal = await envelope.encryptMany([{ plaintext: "x", context: lazy as never }]);
    expect(lazySeal.map((r) => (r.ok ? "ok" : r.error.code))).toEqual(["ENVELOPE_BAD_INPUT"]);
  });

  it("refuses a non-array and a bad concurrency up front", async () => {
    const envelope = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) });
    await expect(envelope.decryptMany("x" as never)).rejects.toMatchObject({
      code: "ENVELOPE_BAD_INPUT",
    });
    await expect(envelope.decryptMany([], { concurrency: 0 })).rejects.toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
    });
    expect(await envelope.decryptMany([])).toEqual([]);
  });
});

describe("encryptMany", () => {
  it("seals each item under its own context, in input order, as decryptMany reads back", async () => {
    const envelope = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) });
    const items = Array.from({ length: 30 }, (_, id) => ({
      plaintext: `v${id}`,
      context: fieldContext(id, "email"),
    }));
    const sealed = await envelope.encryptMany(items, { output: "text", concurrency: 3 });
    const back = await envelope.decryptMany(
      sealed.map((r, i) => ({ sealed: r.ok ? r.value : "", context: items[i]!.context })),
      { as: "text" },
    );
    expect(back.map((r) => r.ok && r.value)).toEqual(items.map((i) => i.plaintext));
  });

  it("a bad plaintext fails alone", async () => {
    const envelope = new Envelope({ encrypt: localAesProvider({ keys: randomBytes(32) }) });
    const results = await envelope.encryptMany([{ plaintext: "ok" }, { plaintext: 42 as never }]);
    expect(results.map((r) => (r.ok ? "ok" : r.error.code))).toEqual(["ok", "ENVELOPE_BAD_INPUT"]);
  });
});
