import { decodeEnvelope, Envelope, EnvelopeError } from "@envelope/core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./helpers.js";

const context = { table: "users", column: "email", id: "42" };
let h: Harness;
let counter = 0;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  Object.assign(h.kv.faults, { throttleEvery: 0, failEvery: 0, dropEvery: 0, hang: false });
  h.kv.resetCalls();
});

const entry = (sealed: Uint8Array) => decodeEnvelope(sealed).entries[0]!;
const body = (sealed: Uint8Array) => Buffer.from(decodeEnvelope(sealed).body);

describe("envelope.refreshKeys() after an Azure rotation (default keyRefreshMs: 10 min)", () => {
  it.each([
    ["local wrap", true],
    ["wrapKey in Key Vault", false],
  ])(
    "%s: new encrypts wrap under the new version and rewrap moves values to it",
    async (_name, localWrap) => {
      const name = `refresh-${++counter}`;
      const v1 = await h.admin.createRsaKey(name);
      const provider = h.provider(`${h.kv.url}/keys/${name}`, { localWrap });
      const envelope = new Envelope({ encrypt: provider, cache: false });
      const old = await envelope.encrypt("before rotation", { context, output: "binary" });
      expect(entry(old).keyRef).toBe(v1.id);

      const v2 = await h.admin.rotateKey(name);
      expect(v2.id).not.toBe(v1.id);
      await envelope.refreshKeys();
      expect(provider.keyRef).toBe(v2.id);

      const fresh = await envelope.encrypt("after rotation", { context, output: "binary" });
      expect(entry(fresh).keyRef).toBe(v2.id);

      const moved = await envelope.rewrap(old, { context });
      expect(entry(moved).keyRef).toBe(v2.id);
      expect(body(moved).equals(body(old))).toBe(true);
      expect((await envelope.decrypt(moved, { context })).toString()).toBe("before rotation");
      // The old version can go: the moved value opens with v2 alone.
      await h.admin.updateKeyProperties(name, v1.properties.version!, { enabled: false });
      expect((await envelope.decrypt(moved, { context })).toString()).toBe("before rotation");
    },
  );

  it("an explicit refresh reports a vault failure instead of keeping the old version silently", async () => {
    const name = `refresh-${++counter}`;
    await h.admin.createRsaKey(name);
    const provider = h.provider(`${h.kv.url}/keys/${name}`, {
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2, timeoutMs: 5_000 },
    });
    const envelope = new Envelope({ encrypt: provider, cache: false });
    await envelope.encrypt("x"); // the key is cached now
    await h.admin.rotateKey(name);
    h.kv.faults.throttleEvery = 1;
    const error = await envelope.refreshKeys().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(EnvelopeError.isInstance(error) && error.code).toBe("ENVELOPE_KMS_THROTTLED");
    // Encrypt still works on the cached key (serving the last good version is safe).
    await expect(envelope.encrypt("y")).resolves.toBeDefined();
  });

  it("a pinned version stays pinned after refreshKeys()", async () => {
    const name = `refresh-${++counter}`;
    const v1 = await h.admin.createRsaKey(name);
    const provider = h.provider(v1.id!);
    const envelope = new Envelope({ encrypt: provider, cache: false });
    await h.admin.rotateKey(name);
    await envelope.refreshKeys();
    expect(provider.keyRef).toBe(v1.id);
    expect(entry(await envelope.encrypt("x", { output: "binary" })).keyRef).toBe(v1.id);
  });

  it("refreshKey() (deprecated) still re-reads and returns the versioned id", async () => {
    const name = `refresh-${++counter}`;
    await h.admin.createRsaKey(name);
    const provider = h.provider(`${h.kv.url}/keys/${name}`);
    await new Envelope({ encrypt: provider }).encrypt("x");
    const v2 = await h.admin.rotateKey(name);
    expect(await provider.refreshKey()).toBe(v2.id);
    expect(await provider.refresh()).toBe(v2.id);
  });
});
