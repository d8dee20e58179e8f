import { Envelope, type KeyProvider } from "@envelope/core";
import { describe, expect, it } from "vitest";
import {
  hierarchicalProvider,
  memoryKeyStore,
  rotateMaster,
  verifyKeyStore,
} from "../src/index.js";
import { countingMaster, rotatingMasters } from "./helpers.js";

const context = { table: "t", column: "c", id: "1" };

async function sealMany(master: KeyProvider, count: number, uses: number) {
  const store = memoryKeyStore();
  const envelope = new Envelope({
    encrypt: hierarchicalProvider({ master, store, rotateAfter: { uses } }),
  });
  const sealed: Buffer[] = [];
  // output "binary" is the default; named here so the overload picks Buffer.
  for (let i = 0; i < count; i++)
    sealed.push(await envelope.encrypt(`value ${i}`, { context, output: "binary" }));
  return { store, sealed };
}

describe("rotateMaster", () => {
  it("rewraps only the intermediate keys; records keep their bytes and open under the new master alone", async () => {
    const { old, next, newOnly } = rotatingMasters();
    const { store, sealed } = await sealMany(old, 300, 100);
    const copies = sealed.map((s) => Buffer.from(s));
    const report = await rotateMaster(store, { from: old, to: next });
    expect(report).toMatchObject({ total: 3, rewrapped: 3, native: 3, unchanged: 0, failed: [] });
    expect(sealed.every((s, i) => s.equals(copies[i]!))).toBe(true);
    for (const record of await store.list()) {
      expect(record.master.keyRef).toBe(newOnly.keyRef);
      expect(record.version).toBe(2);
    }
    const reader = new Envelope({ encrypt: hierarchicalProvider({ master: newOnly, store }) });
    for (const [i, s] of sealed.entries())
      expect(await reader.decrypt(s, { context, as: "text" })).toBe(`value ${i}`);
    expect((await verifyKeyStore(store, { masters: [newOnly] })).failures).toEqual([]);
  });

  it("costs the same number of master calls for 100 and for 2,000 records", async () => {
    const calls: number[] = [];
    for (const count of [100, 2_000]) {
      const before = countingMaster();
      const after = countingMaster();
      const { store } = await sealMany(before.provider, count, 10_000);
      const report = await rotateMaster(store, { from: before.provider, to: after.provider });
      expect(report.rewrapped).toBe(1);
      calls.push(before.calls.unwrap + after.total());
    }
    // unwrap (old) + wrap (new) + one unwrap (new) proving the new entry before it replaces the old.
    expect(calls).toEqual([3, 3]);
  });

  it("falls back to unwrap + wrap when the target has no native rewrap", async () => {
    const before = countingMaster();
    const after = countingMaster();
    const { store } = await sealMany(before.provider, 5, 2);
    const report = await rotateMaster(store, { from: before.provider, to: after.provider });
    expect(report).toMatchObject({ total: 3, rewrapped: 3, native: 0 });
    expect(after.calls.wrap).toBe(3);
  });

  it("is idempotent", async () => {
    const { old, next } = rotatingMasters();
    const { store } = await sealMany(old, 10, 5);
    await rotateMaster(store, { from: old, to: next });
    const again = await rotateMaster(store, { from: old, to: next });
    expect(again).toMatchObject({ total: 2, rewrapped: 0, unchanged: 2 });
  });

  it("throws a typed error naming the records it could not rewrap, after doing the rest", async () => {
    const before = countingMaster();
    const stranger = countingMaster();
    const { store } = await sealMany(before.provider, 4, 2);
    const error = await rotateMaster(store, {
      from: stranger.provider,
      to: countingMaster().provider,
    }).catch((e) => e);
    expect(error.code).toBe("ENVELOPE_KEY_NOT_FOUND");
    expect(error.message).toMatch(/could not rewrap 2 of 2/);
    const report = await rotateMaster(store, {
      from: stranger.provider,
      to: countingMaster().provider,
      allowFailures: true,
    });
    expect(report.failed).toHaveLength(2);
  });

  it("loses no update when two rotations race (compare-and-swap)", async () => {
    const before = countingMaster();
    const after = countingMaster();
    const { store } = await sealMany(before.provider, 20, 2);
    const [a, b] = await Promise.all([
      rotateMaster(store, { from: before.provider, to: after.provider }),
      rotateMaster(store, { from: before.provider, to: after.provider }),
    ]);
    expect(a.rewrapped + b.rewrapped).toBeGreaterThanOrEqual(10);
    expect(a.failed.length + b.failed.length).toBe(0);
    const records = await store.list();
    expect(records.every((r) => r.master.keyRef === after.provider.keyRef)).toBe(true);
    expect((await verifyKeyStore(store, { masters: [after.provider] })).ok).toBe(10);
  });
});
