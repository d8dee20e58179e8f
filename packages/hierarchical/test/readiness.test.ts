// Envelope.check() on a hierarchical provider (issue 15, item 7): it proves the master key
// and the key store, and creates, stores or uses up no intermediate key.
import { randomBytes } from "node:crypto";
import { Envelope, type KeyProvider, localAesProvider, ProviderError } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { hierarchicalProvider, type KeyStore, memoryKeyStore } from "../src/index.js";
import { countingMaster } from "./helpers.js";

/** A master whose KMS can be switched off, as a revoked or unreachable key would be. */
function switchableMaster() {
  const { provider: inner, calls } = countingMaster();
  const state = { down: false };
  const down = () =>
    new ProviderError("ENVELOPE_KMS_UNAVAILABLE", "test-kms: unreachable", {
      details: { provider: inner.id },
    });
  const provider: KeyProvider = {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    wrap: async (k, r) => {
      if (state.down) throw down();
      return inner.wrap(k, r);
    },
    unwrap: async (e, r) => {
      if (state.down) throw down();
      return inner.unwrap(e, r);
    },
  };
  return { provider, calls, state };
}

describe("Envelope.check() with a hierarchical provider", () => {
  it("checks the master with a canary and reads the store; creates and stores no intermediate key", async () => {
    const { provider: master, calls } = switchableMaster();
    const store = memoryKeyStore();
    const provider = hierarchicalProvider({ master, store });
    const report = await new Envelope({ encrypt: provider }).check();
    expect(report.ok).toBe(true);
    expect(report.providers).toHaveLength(1);
    expect(report.providers[0]).toMatchObject({
      provider: "hierarchical",
      role: "encrypt",
      status: "ok",
      via: { provider: master.id, keyRef: master.keyRef },
    });
    expect(report.providers[0]!.latencyMs.probe).toBeGreaterThanOrEqual(0);
    expect(calls).toMatchObject({ wrap: 1, unwrap: 1 }); // the canary, through the master
    expect(await store.list()).toEqual([]);
    expect(provider.stats()).toMatchObject({ intermediateKeysCreated: 0, current: undefined });
  });

  it("reports a dead master as failed even with an intermediate key cached", async () => {
    const { provider: master, state } = switchableMaster();
    const provider = hierarchicalProvider({ master, store: memoryKeyStore() });
    const envelope = new Envelope({ encrypt: provider });
    await envelope.encrypt("x"); // an IK is created and cached: encrypts need no master now
    state.down = true;
    await envelope.encrypt("y"); // traffic still works off the cached IK…
    const report = await envelope.check(); // …but the next IK, or a restart, will not
    expect(report.ok).toBe(false);
    expect(report.providers[0]).toMatchObject({
      status: "failed",
      error: { code: "ENVELOPE_KMS_UNAVAILABLE", step: "wrap" },
    });
  });

  it("uses up none of an intermediate key's uses (rotateAfter.uses)", async () => {
    const store = memoryKeyStore();
    const provider = hierarchicalProvider({
      master: localAesProvider({ keys: randomBytes(32) }),
      store,
      rotateAfter: { uses: 2 },
    });
    const envelope = new Envelope({ encrypt: provider });
    await envelope.encrypt("a");
    for (let i = 0; i < 3; i++) expect((await envelope.check()).ok).toBe(true);
    await envelope.encrypt("b"); // the second use of the first IK
    expect(await store.list()).toHaveLength(1);
  });

  it("a key store that fails its read fails the check at the probe, before any KMS call", async () => {
    const { provider: master, calls } = switchableMaster();
    const inner = memoryKeyStore();
    const store: KeyStore = {
      name: "test-store",
      get: async () => {
        throw new Error("connection refused");
      },
      put: (r) => inner.put(r),
      list: () => inner.list(),
      update: (id, v, r) => inner.update(id, v, r),
    };
    const report = await new Envelope({
      encrypt: hierarchicalProvider({ master, store }),
    }).check();
    expect(report.ok).toBe(false);
    expect(report.providers[0]).toMatchObject({
      status: "failed",
      error: { code: "ENVELOPE_KMS_UNAVAILABLE", step: "probe" },
    });
    expect(report.providers[0]!.error!.message).toContain("test-store");
    expect(report.providers[0]!.error!.message).not.toContain("connection refused");
    expect(calls).toMatchObject({ wrap: 0, unwrap: 0 });
  });

  it("fails at the probe when the store lost the intermediate key this process seals under", async () => {
    // A store restored from a backup older than the current IK: this process still seals
    // with the IK it holds, which no other reader (nor this one after a restart) can load.
    const inner = memoryKeyStore();
    const state = { lost: false };
    const store: KeyStore = {
      name: "restored-store",
      get: async (id) => (state.lost ? undefined : inner.get(id)),
      put: (r) => inner.put(r),
      list: () => inner.list(),
      update: (id, v, r) => inner.update(id, v, r),
    };
    const provider = hierarchicalProvider({
      master: localAesProvider({ keys: randomBytes(32) }),
      store,
    });
    const envelope = new Envelope({ encrypt: provider });
    await envelope.encrypt("x");
    expect((await envelope.check()).ok).toBe(true);
    state.lost = true;
    const report = await envelope.check();
    expect(report.providers[0]).toMatchObject({
      status: "failed",
      error: { code: "ENVELOPE_KEY_NOT_FOUND", step: "probe" },
    });
  });

  it("checks the older masters of a master rotation as decrypt keys", async () => {
    const current = localAesProvider({ keys: randomBytes(32) });
    const { provider: older, state } = switchableMaster();
    const provider = hierarchicalProvider({
      master: current,
      decrypt: [older],
      store: memoryKeyStore(),
    });
    const envelope = new Envelope({ encrypt: provider });
    const ok = await envelope.check();
    expect(ok.providers.map((p) => [p.provider, p.keyRef, p.role, p.status])).toEqual([
      ["hierarchical", provider.keyRef, "encrypt", "ok"],
      [older.id, older.keyRef, "decrypt", "ok"],
    ]);
    state.down = true; // intermediate keys still wrapped under it can no longer be read
    const report = await envelope.check();
    expect(report.ok).toBe(false);
    expect(report.providers[1]).toMatchObject({ role: "decrypt", status: "failed" });
  });
});
