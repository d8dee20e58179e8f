import { randomBytes } from "node:crypto";
import { Envelope, EnvelopeError, ProviderError } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { hierarchicalProvider, memoryKeyStore } from "../src/index.js";
import { countingMaster } from "./helpers.js";

const context = { table: "users", column: "email", id: "42" };

describe("hierarchicalProvider", () => {
  it("round-trips through Envelope with entries that reference the intermediate key", async () => {
    const store = memoryKeyStore();
    const provider = hierarchicalProvider({ master: countingMaster().provider, store });
    const envelope = new Envelope({ encrypt: provider });
    const sealed = await envelope.encrypt("alice@example.com", { context, output: "text" });
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe("alice@example.com");
    const info = envelope.inspect(sealed);
    expect(info.entries).toHaveLength(1);
    expect(info.entries[0]!.provider).toBe("hierarchical");
    expect(info.entries[0]!.keyRef).toBe(provider.stats().current);
    expect(info.entries[0]!.wrappedBytes).toBe(32); // the seed the data key is derived from
    const [record] = await store.list();
    expect(record!.id).toBe(info.entries[0]!.keyRef);
  });

  it("a fresh process (new provider, same store) opens old records with one master call", async () => {
    const store = memoryKeyStore();
    const master = countingMaster();
    const writer = new Envelope({
      encrypt: hierarchicalProvider({ master: master.provider, store }),
    });
    const sealed = await Promise.all(
      Array.from({ length: 50 }, (_, i) => writer.encrypt(`v${i}`, { context })),
    );
    const before = master.total();
    const readerProvider = hierarchicalProvider({ master: master.provider, store });
    const reader = new Envelope({ encrypt: readerProvider, cache: false });
    const opened = await Promise.all(sealed.map((s) => reader.decrypt(s, { context, as: "text" })));
    expect(opened).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
    expect(master.total() - before).toBe(1); // concurrent misses shared one unwrap
    expect(readerProvider.stats().inflightJoins).toBeGreaterThan(0);
  });

  it("10,000 encrypts make one master call", async () => {
    const master = countingMaster();
    const provider = hierarchicalProvider({ master: master.provider, store: memoryKeyStore() });
    const envelope = new Envelope({ encrypt: provider });
    for (let i = 0; i < 10_000; i++) await envelope.encrypt(randomBytes(16), { context });
    expect(master.total()).toBe(1);
    expect(provider.stats().intermediateKeysCreated).toBe(1);
  });

  it("concurrent first use creates exactly one intermediate key", async () => {
    const master = countingMaster();
    const store = memoryKeyStore();
    const envelope = new Envelope({
      encrypt: hierarchicalProvider({ master: master.provider, store }),
    });
    await Promise.all(Array.from({ length: 200 }, () => envelope.encrypt("x", { context })));
    expect(await store.list()).toHaveLength(1);
    expect(master.calls.wrap).toBe(1);
  });

  it("rotates by use count", async () => {
    const store = memoryKeyStore();
    const provider = hierarchicalProvider({
      master: countingMaster().provider,
      store,
      rotateAfter: { uses: 10 },
    });
    const envelope = new Envelope({ encrypt: provider });
    const sealed = await Promise.all(
      Array.from({ length: 35 }, () => envelope.encrypt("x", { context })),
    );
    expect(await store.list()).toHaveLength(4);
    const refs = new Map<string, number>();
    for (const s of sealed) {
      const ref = envelope.inspect(s).entries[0]!.keyRef;
      refs.set(ref, (refs.get(ref) ?? 0) + 1);
    }
    expect([...refs.values()].sort((a, b) => a - b)).toEqual([5, 10, 10, 10]);
    for (const s of sealed) expect(await envelope.decrypt(s, { context, as: "text" })).toBe("x");
  });

  it("rotates by age", async () => {
    let now = 1_000_000;
    const store = memoryKeyStore();
    const provider = hierarchicalProvider({
      master: countingMaster().provider,
      store,
      rotateAfter: { ageMs: 60_000 },
      now: () => now,
    });
    const envelope = new Envelope({ encrypt: provider });
    const a = await envelope.encrypt("a", { context });
    now += 59_999;
    const b = await envelope.encrypt("b", { context });
    now += 1;
    const c = await envelope.encrypt("c", { context });
    const ref = (s: Buffer | string) => envelope.inspect(s).entries[0]!.keyRef;
    expect(ref(a)).toBe(ref(b));
    expect(ref(c)).not.toBe(ref(a));
    expect((await store.list()).map((r) => r.createdAt).sort()).toEqual([1_000_000, 1_060_000]);
  });

  it("a missing intermediate key is ENVELOPE_KEY_NOT_FOUND and says to restore the backup", async () => {
    const master = countingMaster();
    const writer = new Envelope({
      encrypt: hierarchicalProvider({ master: master.provider, store: memoryKeyStore() }),
    });
    const sealed = await writer.encrypt("x", { context });
    const lost = new Envelope({
      encrypt: hierarchicalProvider({ master: master.provider, store: memoryKeyStore() }),
    });
    const error = await lost.decrypt(sealed, { context }).catch((e) => e);
    expect(ProviderError.isInstance(error)).toBe(true);
    expect(error.code).toBe("ENVELOPE_KEY_NOT_FOUND");
    expect(error.message).toMatch(/backup/);
  });

  it("a corrupted record is ENVELOPE_BAD_KEY, for a changed field or a swapped wrapped key", async () => {
    const master = countingMaster();
    const base = memoryKeyStore();
    const writer = new Envelope({
      encrypt: hierarchicalProvider({ master: master.provider, store: base }),
    });
    const one = await writer.encrypt("x", { context });
    const [record] = await base.list();
    // A store that returns the record with a flipped byte in the wrapped key.
    const flipped = Buffer.from(record!.master.wrapped);
    flipped[3]! ^= 1;
    const damaged = {
      ...base,
      get: async () => ({ ...record!, master: { ...record!.master, wrapped: flipped } }),
    };
    const reader = new Envelope({
      encrypt: hierarchicalProvider({ master: master.provider, store: damaged }),
    });
    const error = await reader.decrypt(one, { context }).catch((e) => e);
    expect(EnvelopeError.isInstance(error) && error.code).toBe("ENVELOPE_BAD_KEY");
    expect(error.message).toMatch(/corrupted.*backup/s);
  });

  it("never uses an intermediate key the store failed to save", async () => {
    const store = memoryKeyStore();
    const failing = {
      ...store,
      put: async () => {
        throw new Error("disk full");
      },
    };
    const envelope = new Envelope({
      encrypt: hierarchicalProvider({ master: countingMaster().provider, store: failing }),
    });
    const error = await envelope.encrypt("x", { context }).catch((e) => e);
    expect(error.code).toBe("ENVELOPE_KMS_UNAVAILABLE");
    expect(String(error.cause?.cause ?? error.cause)).toMatch(/disk full/);
    expect(await store.list()).toHaveLength(0);
  });

  it("a damaged wrapped data key in the envelope is a typed error", async () => {
    const provider = hierarchicalProvider({
      master: countingMaster().provider,
      store: memoryKeyStore(),
    });
    const envelope = new Envelope({ encrypt: provider, cache: false });
    const sealed = await envelope.encrypt("x", { context });
    const entry = { ...envelope.inspect(sealed).entries[0]! };
    const wrapped = Buffer.alloc(40, 7);
    const error = await provider
      .unwrap({ providerId: "hierarchical", keyRef: entry.keyRef, wrapped }, { context })
      .catch((e) => e);
    expect(error.code).toBe("ENVELOPE_UNWRAP_FAILED");
  });

  it("rewraps a direct-mode envelope into hierarchical mode (AES-KW entry) and opens it", async () => {
    const local = countingMaster().provider;
    const provider = hierarchicalProvider({
      master: countingMaster().provider,
      store: memoryKeyStore(),
    });
    const direct = new Envelope({ encrypt: local });
    const sealed = await direct.encrypt("moved", { context });
    const both = new Envelope({ encrypt: provider, decrypt: [local] });
    const moved = await both.rewrap(sealed, { to: provider, context });
    expect(both.inspect(moved).entries.map((e) => [e.provider, e.wrappedBytes])).toEqual([
      ["hierarchical", 40],
    ]);
    const reader = new Envelope({ encrypt: provider, cache: false });
    expect(await reader.decrypt(moved, { context, as: "text" })).toBe("moved");
  });

  it("a changed seed derives another data key, which the key commitment rejects", async () => {
    const provider = hierarchicalProvider({
      master: countingMaster().provider,
      store: memoryKeyStore(),
    });
    const envelope = new Envelope({ encrypt: provider, cache: false });
    const sealed = await envelope.encrypt("x", { context, output: "binary" });
    const { decodeEnvelope, encodeEnvelope } = await import("@envelope/core");
    const parts = decodeEnvelope(sealed);
    const seed = Buffer.from(parts.entries[0]!.wrapped);
    seed[0]! ^= 1;
    const tampered = encodeEnvelope({
      ...parts,
      entries: [{ ...parts.entries[0]!, wrapped: seed }],
    });
    await expect(envelope.decrypt(tampered, { context })).rejects.toMatchObject({
      code: "ENVELOPE_COMMITMENT_MISMATCH",
    });
  });

  it("shows only ids when inspected or serialized", async () => {
    const provider = hierarchicalProvider({
      master: countingMaster().provider,
      store: memoryKeyStore(),
    });
    await provider.wrap(randomBytes(32), { context });
    const text = `${JSON.stringify(provider)} ${(await import("node:util")).inspect(provider)}`;
    expect(text).toContain(provider.stats().current);
    expect(text).not.toMatch(/[0-9a-f]{64}/);
  });

  it("rejects bad options with ENVELOPE_BAD_CONFIG", () => {
    const master = countingMaster().provider;
    expect(() =>
      hierarchicalProvider({ master, store: memoryKeyStore(), rotateAfter: { uses: 0 } }),
    ).toThrow(expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }));
    expect(() => hierarchicalProvider({ master, store: undefined as never })).toThrow(
      expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }),
    );
  });
});
