import { decodeEnvelope, Envelope } from "@envelope/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CONTEXT, failure, type Harness, harness } from "./helpers.js";

let h: Harness;
beforeEach(async () => {
  h = await harness();
  await h.admin.write("transit/keys/pii", {});
  h.vault.resetCalls();
});
afterEach(() => h.close());

const entryOf = (sealed: Uint8Array) => decodeEnvelope(sealed).entries[0]!;
const wrappedText = (sealed: Uint8Array) => Buffer.from(entryOf(sealed).wrapped).toString("latin1");

describe("rotation", () => {
  it("new version encrypts, old still opens, rewrap moves to the new version inside Vault", async () => {
    const provider = h.provider();
    await provider.init();
    const envelope = new Envelope({ encrypt: provider, cache: false });
    const old = await envelope.encrypt("v1 data", { context: CONTEXT });
    expect(entryOf(old).keyRef).toBe("transit/keys/pii@v1");

    await h.admin.write("transit/keys/pii/rotate", {});
    expect(provider.keyRef).toBe("transit/keys/pii@v1"); // not re-read yet
    expect((await provider.refresh()).latestVersion).toBe(2);
    expect(provider.keyRef).toBe("transit/keys/pii@v2");

    const fresh = await envelope.encrypt("v2 data", { context: CONTEXT });
    expect(entryOf(fresh).keyRef).toBe("transit/keys/pii@v2");
    expect(wrappedText(fresh)).toMatch(/^vault:v2:/);
    expect((await envelope.decrypt(old, { context: CONTEXT })).toString()).toBe("v1 data");

    h.vault.resetCalls();
    const moved = await envelope.rewrap(old, { context: CONTEXT });
    expect(h.vault.calls.rewrap).toBe(1);
    // Issue 11: the new entry is unwrapped once (commitment check) before the old goes.
    expect(h.vault.calls.decrypt).toBe(1);
    expect(h.vault.calls.encrypt).toBeUndefined();
    expect(entryOf(moved).keyRef).toBe("transit/keys/pii@v2");
    expect(wrappedText(moved)).toMatch(/^vault:v2:/);
    expect(
      Buffer.from(decodeEnvelope(moved).body).equals(Buffer.from(decodeEnvelope(old).body)),
    ).toBe(true);
    expect(Buffer.from(decodeEnvelope(moved).messageId)).toEqual(
      Buffer.from(decodeEnvelope(old).messageId),
    );

    // Already on the latest version: rewrap is a no-op with no Vault call.
    h.vault.resetCalls();
    const again = await envelope.rewrap(moved, { context: CONTEXT });
    expect(Buffer.from(again).equals(Buffer.from(moved))).toBe(true);
    expect(h.vault.calls.rewrap).toBeUndefined();
  });

  it("min_decryption_version makes un-rewrapped entries fail with ENVELOPE_KEY_DISABLED", async () => {
    const provider = h.provider();
    const envelope = new Envelope({ encrypt: provider, cache: false });
    const stale = await envelope.encrypt("left behind");
    const kept = await envelope.encrypt("moved in time");
    await h.admin.write("transit/keys/pii/rotate", {});
    await provider.refresh();
    const moved = await envelope.rewrap(kept);
    await h.admin.write("transit/keys/pii/config", { min_decryption_version: 2 });

    const error = await failure(envelope.decrypt(stale));
    expect(error.code).toBe("ENVELOPE_KEY_DISABLED");
    expect(error.message).toContain("min_decryption_version");
    expect(error.message).toContain("transit/keys/pii@v1");
    expect((await envelope.decrypt(moved)).toString()).toBe("moved in time");
    // Rewrap of a too-old entry fails the same way (Vault must decrypt it first).
    expect((await failure(envelope.rewrap(stale))).code).toBe("ENVELOPE_KEY_DISABLED");

    // Lowering it again reopens the old data: it is a policy, not erasure.
    await h.admin.write("transit/keys/pii/config", { min_decryption_version: 1 });
    expect((await envelope.decrypt(stale)).toString()).toBe("left behind");
  });

  it("keyRef follows the versions Vault reports on datakey / encrypt answers", async () => {
    const provider = h.provider({ derived: false });
    expect(provider.keyRef).toBe("transit/keys/pii");
    await h.admin.write("transit/keys/pii/rotate", {});
    await new Envelope({ encrypt: provider }).encrypt("x");
    expect(provider.keyRef).toBe("transit/keys/pii@v2");
  });
});

describe("unwrap cache", () => {
  it("repeated and concurrent decrypts of one envelope make one decrypt call", async () => {
    const writer = new Envelope({ encrypt: h.provider() });
    const sealed = await writer.encrypt("cached", { context: CONTEXT });
    const reader = new Envelope({ encrypt: h.provider() });
    h.vault.resetCalls();
    const results = await Promise.all(
      Array.from({ length: 10 }, () => reader.decrypt(sealed, { context: CONTEXT, as: "text" })),
    );
    for (let i = 0; i < 5; i++)
      results.push(await reader.decrypt(sealed, { context: CONTEXT, as: "text" }));
    expect(new Set(results)).toEqual(new Set(["cached"]));
    expect(h.vault.calls.decrypt).toBe(1);
    expect(reader.cacheStats().hits).toBeGreaterThanOrEqual(5);
  });
});

describe("envelope.refreshKeys() after a Vault rotation", () => {
  it("new encrypts wrap under the new version and rewrap moves values to it, inside Vault", async () => {
    const provider = h.provider();
    await provider.init();
    const envelope = new Envelope({ encrypt: provider, cache: false });
    const old = await envelope.encrypt("v1 data", { context: CONTEXT, output: "binary" });
    expect(entryOf(old).keyRef).toBe("transit/keys/pii@v1");

    await h.admin.write("transit/keys/pii/rotate", {});
    // Not re-read yet: the provider still names v1, so a rewrap treats v1 entries as current.
    const early = await envelope.rewrap(old, { context: CONTEXT });
    expect(entryOf(early).keyRef).toBe("transit/keys/pii@v1");

    await envelope.refreshKeys();
    expect(provider.keyRef).toBe("transit/keys/pii@v2");
    const fresh = await envelope.encrypt("v2 data", { context: CONTEXT, output: "binary" });
    expect(entryOf(fresh).keyRef).toBe("transit/keys/pii@v2");
    expect(wrappedText(fresh)).toMatch(/^vault:v2:/);

    h.vault.resetCalls();
    const moved = await envelope.rewrap(old, { context: CONTEXT });
    expect(h.vault.calls.rewrap).toBe(1);
    expect(entryOf(moved).keyRef).toBe("transit/keys/pii@v2");
    expect(wrappedText(moved)).toMatch(/^vault:v2:/);
    // Only v2 may decrypt now: the moved value opens, the un-moved copy does not.
    await h.admin.write("transit/keys/pii/config", { min_decryption_version: 2 });
    expect((await envelope.decrypt(moved, { context: CONTEXT })).toString()).toBe("v1 data");
    expect((await failure(envelope.decrypt(old, { context: CONTEXT }))).code).toBe(
      "ENVELOPE_KEY_DISABLED",
    );
  });
});
