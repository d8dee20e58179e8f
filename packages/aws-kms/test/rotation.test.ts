import { decodeEnvelope, Envelope } from "@envelope/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CONTEXT, type Harness, harness } from "./helpers.js";

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

const parts = (sealed: Uint8Array) => decodeEnvelope(sealed);
const body = (sealed: Uint8Array) => Buffer.from(parts(sealed).body);

describe("rotation and rewrap on KMS", () => {
  it("after key rotation new data keys use the new material, old envelopes still open, the ARN stays", async () => {
    const key = h.kms.createKey();
    const provider = h.provider({ keyId: key.arn });
    const envelope = new Envelope({ encrypt: provider, cache: false });
    const before = await envelope.encrypt("before", { context: CONTEXT, output: "binary" });
    expect(h.kms.rotateKey(key.arn)).toBe(1);
    const after = await envelope.encrypt("after", { context: CONTEXT, output: "binary" });
    const [b, a] = [parts(before).entries[0]!, parts(after).entries[0]!];
    expect(h.kms.inspectCiphertext(b.wrapped).version).toBe(0);
    expect(h.kms.inspectCiphertext(a.wrapped).version).toBe(1);
    expect([a.keyRef, b.keyRef]).toEqual([key.arn, key.arn]);
    expect((await envelope.decrypt(before, { context: CONTEXT })).toString()).toBe("before");
    expect((await envelope.decrypt(after, { context: CONTEXT })).toString()).toBe("after");
  });

  it("provider.rewrap moves an entry to the newest key material with ReEncrypt only", async () => {
    const key = h.kms.createKey();
    const provider = h.provider({ keyId: key.arn });
    const sealed = await new Envelope({ encrypt: provider }).encrypt("v", {
      context: CONTEXT,
      output: "binary",
    });
    h.kms.rotateKey(key.arn);
    h.kms.resetCalls();
    const entry = await provider.rewrap!(parts(sealed).entries[0]!, { context: CONTEXT });
    expect(h.kms.calls).toEqual({ ReEncrypt: 1 });
    expect(h.kms.inspectCiphertext(entry.wrapped).version).toBe(1);
    expect(entry.keyRef).toBe(key.arn);
  });

  it("Envelope.rewrap to a new key uses ReEncrypt: no Decrypt, body byte-identical", async () => {
    const oldKey = h.kms.createKey();
    const newKey = h.kms.createKey();
    const sealed = await new Envelope({ encrypt: h.provider({ keyId: oldKey.arn }) }).encrypt(
      "pii",
      { context: CONTEXT, output: "binary" },
    );
    const target = h.provider({ keyId: newKey.arn, decryptKeys: [oldKey.arn] });
    h.kms.resetCalls();
    const moved = await new Envelope({ encrypt: target }).rewrap(sealed, {
      to: target,
      context: CONTEXT,
    });
    // Issue 11: the KMS's new entry is unwrapped once and checked against the key
    // commitment before the old entry is dropped.
    expect(h.kms.calls).toEqual({ ReEncrypt: 1, Decrypt: 1 });
    expect(body(moved).equals(body(sealed))).toBe(true);
    expect(parts(moved).entries.map((e) => e.keyRef)).toEqual([newKey.arn]);
    h.kms.disableKey(oldKey.arn); // the old key is no longer needed
    const reader = new Envelope({ encrypt: h.provider({ keyId: newKey.arn }) });
    expect((await reader.decrypt(moved, { context: CONTEXT })).toString()).toBe("pii");
  });

  it("rewrap through an alias after the alias moves (alias-based rotation) is native", async () => {
    const oldKey = h.kms.createKey();
    const newKey = h.kms.createKey();
    const { aliasArn } = h.kms.createAlias("alias/pii", oldKey.arn);
    const sealed = await new Envelope({ encrypt: h.provider({ keyId: aliasArn }) }).encrypt("v", {
      output: "binary",
      context: CONTEXT,
    });
    h.kms.createAlias("alias/pii", newKey.arn);
    const alias = h.provider({ keyId: aliasArn });
    h.kms.resetCalls();
    const moved = await new Envelope({ encrypt: alias }).rewrap(sealed, {
      to: alias,
      context: CONTEXT,
    });
    // Issue 11: the KMS's new entry is unwrapped once and checked against the key
    // commitment before the old entry is dropped.
    expect(h.kms.calls).toEqual({ ReEncrypt: 1, Decrypt: 1 });
    expect(parts(moved).entries[0]!.keyRef).toBe(newKey.arn);
  });

  it("rewrap to the key that already wraps the entry is a no-op (no KMS call)", async () => {
    const key = h.kms.createKey();
    const provider = h.provider({ keyId: key.arn });
    const envelope = new Envelope({ encrypt: provider });
    const sealed = await envelope.encrypt("v", { context: CONTEXT, output: "binary" });
    h.kms.resetCalls();
    const same = await envelope.rewrap(sealed, { to: provider, context: CONTEXT });
    expect(Buffer.from(same).equals(Buffer.from(sealed))).toBe(true);
    expect(h.kms.calls).toEqual({});
  });

  it("a target that does not claim the old key falls back to Decrypt + Encrypt in core", async () => {
    const oldKey = h.kms.createKey();
    const newKey = h.kms.createKey();
    const source = h.provider({ keyId: oldKey.arn });
    const sealed = await new Envelope({ encrypt: source }).encrypt("v", {
      context: CONTEXT,
      output: "binary",
    });
    const target = h.provider({ keyId: newKey.arn });
    h.kms.resetCalls();
    const moved = await new Envelope({ encrypt: target, decrypt: [source] }).rewrap(sealed, {
      to: target,
      context: CONTEXT,
    });
    expect(h.kms.calls).toEqual({ Decrypt: 1, Encrypt: 1 });
    expect(body(moved).equals(body(sealed))).toBe(true);
  });
});

describe("unwrap cache in front of KMS", () => {
  it("repeated decrypts of one envelope make one Decrypt call", async () => {
    const key = h.kms.createKey();
    const envelope = new Envelope({ encrypt: h.provider({ keyId: key.arn }) });
    const sealed = await envelope.encrypt("cached", { context: CONTEXT, output: "binary" });
    for (let i = 0; i < 10; i++) {
      expect((await envelope.decrypt(sealed, { context: CONTEXT })).toString()).toBe("cached");
    }
    expect(h.kms.calls.Decrypt).toBe(1);
    expect(envelope.cacheStats()).toMatchObject({ misses: 1, hits: 9 });
  });

  it("50 concurrent decrypts of one envelope share one Decrypt call", async () => {
    const key = h.kms.createKey();
    const sealed = await new Envelope({ encrypt: h.provider({ keyId: key.arn }) }).encrypt("hot", {
      output: "binary",
      context: CONTEXT,
    });
    h.kms.faults.latencyMs = 30; // keep the first call in flight while the others arrive
    const envelope = new Envelope({ encrypt: h.provider({ keyId: key.arn }) });
    const results = await Promise.all(
      Array.from({ length: 50 }, () => envelope.decrypt(sealed, { context: CONTEXT, as: "text" })),
    );
    expect(new Set(results)).toEqual(new Set(["hot"]));
    expect(h.kms.calls.Decrypt).toBe(1);
    expect(envelope.cacheStats().inflightJoins).toBe(49);
  });

  it("a different mapped context is a different cache entry (and KMS checks it)", async () => {
    const key = h.kms.createKey();
    const envelope = new Envelope({ encrypt: h.provider({ keyId: key.arn }) });
    const sealed = await envelope.encrypt("v", { context: CONTEXT, output: "binary" });
    await envelope.decrypt(sealed, { context: CONTEXT });
    await envelope.decrypt(sealed, { context: { ...CONTEXT, id: "7" } }).catch(() => undefined);
    expect(h.kms.calls.Decrypt).toBe(2);
  });
});

describe("envelope.refreshKeys() after a KMS rotation", () => {
  it("key refs carry no version: nothing to re-read; new encrypts use the new material, rewrap needs force", async () => {
    const key = h.kms.createKey();
    const provider = h.provider({ keyId: key.arn });
    // KMS rotation keeps the ARN, and the ARN is all an entry records: no refresh() to call.
    expect(provider.refresh).toBeUndefined();
    const envelope = new Envelope({ encrypt: provider, cache: false });
    const old = await envelope.encrypt("before", { context: CONTEXT, output: "binary" });
    h.kms.rotateKey(key.arn);
    h.kms.resetCalls();
    await envelope.refreshKeys();
    expect(h.kms.calls).toEqual({}); // no KMS call, nothing cached to go stale

    const fresh = await envelope.encrypt("after", { context: CONTEXT, output: "binary" });
    expect(h.kms.inspectCiphertext(parts(fresh).entries[0]!.wrapped).version).toBe(1);

    // Same ARN: a plain rewrap keeps the entry as it is; `force` moves it to the new material.
    const same = await envelope.rewrap(old, { context: CONTEXT });
    expect(Buffer.from(same).equals(Buffer.from(old))).toBe(true);
    h.kms.resetCalls();
    const moved = await envelope.rewrap(old, { context: CONTEXT, force: true });
    // ReEncrypt moves it; one Decrypt of the new entry proves it opens to the committed
    // data key before the old entry is dropped (issue 11 item 4a).
    expect(h.kms.calls).toEqual({ ReEncrypt: 1, Decrypt: 1 });
    expect(h.kms.inspectCiphertext(parts(moved).entries[0]!.wrapped).version).toBe(1);
    expect(body(moved).equals(body(old))).toBe(true);
    expect((await envelope.decrypt(moved, { context: CONTEXT })).toString()).toBe("before");
  });
});
