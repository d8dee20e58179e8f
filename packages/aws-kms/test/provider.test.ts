import { inspect } from "node:util";
import { KMSClient } from "@aws-sdk/client-kms";
import { awsKmsProvider } from "@envelope/aws-kms";
import { decodeEnvelope, Envelope, fromText } from "@envelope/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CONTEXT, failure, type Harness, harness } from "./helpers.js";

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

const entriesOf = (sealed: Uint8Array | string) =>
  decodeEnvelope(typeof sealed === "string" ? fromText(sealed) : sealed).entries;

describe("aws-kms provider against the KMS test server", () => {
  it("round-trips through Envelope with one GenerateDataKey and one Decrypt", async () => {
    const key = h.kms.createKey();
    const envelope = new Envelope({ encrypt: h.provider({ keyId: key.arn }) });
    const sealed = await envelope.encrypt("alice@example.com", {
      context: CONTEXT,
      output: "text",
    });
    expect(entriesOf(sealed)).toMatchObject([{ providerId: "aws-kms", keyRef: key.arn }]);
    expect(h.kms.calls).toEqual({ GenerateDataKey: 1 });
    const reader = new Envelope({ encrypt: h.provider({ keyId: key.arn }) });
    expect(await reader.decrypt(sealed, { context: CONTEXT, as: "text" })).toBe(
      "alice@example.com",
    );
    expect(h.kms.calls).toEqual({ GenerateDataKey: 1, Decrypt: 1 });
    const decrypt = h.kms.requests.find((r) => r.operation === "Decrypt")!;
    expect(decrypt.keyId).toBe(key.arn); // Decrypt always names the recorded key ARN
  });

  it.each([
    ["key id", (k: { keyId: string }) => k.keyId],
    ["key ARN", (k: { arn: string }) => k.arn],
    ["alias name", () => "alias/pii"],
    ["alias ARN", (_k: unknown, aliasArn: string) => aliasArn],
  ] as const)("accepts a %s and records the key ARN in the entry", async (_label, pick) => {
    const key = h.kms.createKey();
    const { aliasArn } = h.kms.createAlias("alias/pii", key.arn);
    const keyId = (pick as (k: typeof key, a: string) => string)(key, aliasArn);
    const provider = h.provider({
      keyId,
      region: keyId.startsWith("arn:") ? undefined : "us-east-1",
    });
    expect(provider.keyRef).toBe(keyId);
    const envelope = new Envelope({ encrypt: provider });
    const sealed = await envelope.encrypt("x", { context: CONTEXT });
    expect(entriesOf(sealed)[0]!.keyRef).toBe(key.arn);
    // Any provider configured for the same key opens it, whichever way it names the key.
    const byArn = new Envelope({ encrypt: h.provider({ keyId: key.arn }) });
    expect((await byArn.decrypt(sealed, { context: CONTEXT })).toString()).toBe("x");
    const same = new Envelope({
      encrypt: h.provider({ keyId, region: keyId.startsWith("arn:") ? undefined : "us-east-1" }),
    });
    expect((await same.decrypt(sealed, { context: CONTEXT })).toString()).toBe("x");
  });

  it("keeps opening values after the alias is moved to a new key (fresh process, no extra config)", async () => {
    const oldKey = h.kms.createKey();
    const newKey = h.kms.createKey();
    const { aliasArn } = h.kms.createAlias("alias/pii", oldKey.arn);
    const before = await new Envelope({ encrypt: h.provider({ keyId: aliasArn }) }).encrypt("old", {
      context: CONTEXT,
    });
    h.kms.createAlias("alias/pii", newKey.arn); // UpdateAlias
    const envelope = new Envelope({ encrypt: h.provider({ keyId: aliasArn }) });
    const after = await envelope.encrypt("new", { context: CONTEXT });
    expect(entriesOf(after)[0]!.keyRef).toBe(newKey.arn);
    expect((await envelope.decrypt(before, { context: CONTEXT })).toString()).toBe("old");
    expect((await envelope.decrypt(after, { context: CONTEXT })).toString()).toBe("new");
    // discovery: false limits an alias to the keys it resolved to in this process.
    const strict = new Envelope({ encrypt: h.provider({ keyId: aliasArn, discovery: false }) });
    expect((await failure(strict.decrypt(before, { context: CONTEXT }))).code).toBe(
      "ENVELOPE_NO_MATCHING_KEY",
    );
  });

  it("multi-wraps with GenerateDataKey + Encrypt; either key alone decrypts", async () => {
    const a = h.kms.createKey();
    const b = h.kms.createKey();
    const sealed = await new Envelope({
      encrypt: [h.provider({ keyId: a.arn }), h.provider({ keyId: b.arn })],
    }).encrypt("both", { context: CONTEXT });
    expect(h.kms.calls).toEqual({ GenerateDataKey: 1, Encrypt: 1 });
    expect(entriesOf(sealed).map((e) => e.keyRef)).toEqual([a.arn, b.arn]);
    h.kms.disableKey(a.arn);
    const onlyB = new Envelope({ encrypt: h.provider({ keyId: b.arn }) });
    expect((await onlyB.decrypt(sealed, { context: CONTEXT })).toString()).toBe("both");
  });

  it("decrypts a multi-Region key's data with its replica in another region", async () => {
    const primary = h.kms.createKey({ region: "us-east-1", multiRegion: true });
    expect(primary.keyId).toMatch(/^mrk-/);
    const replica = h.kms.replicateKey(primary.arn, "eu-west-1");
    expect(replica.arn).toBe(primary.arn.replace("us-east-1", "eu-west-1"));
    const sealed = await new Envelope({ encrypt: h.provider({ keyId: primary.arn }) }).encrypt(
      "mrk",
      {
        context: CONTEXT,
      },
    );
    h.kms.resetCalls();
    const europe = new Envelope({ encrypt: h.provider({ keyId: replica.arn }) });
    expect((await europe.decrypt(sealed, { context: CONTEXT })).toString()).toBe("mrk");
    expect(h.kms.requests).toMatchObject([
      { operation: "Decrypt", region: "eu-west-1", keyId: replica.arn },
    ]);
    // Without MRK awareness the replica does not claim the primary's entries.
    const unaware = new Envelope({ encrypt: h.provider({ keyId: replica.arn, mrkAware: false }) });
    expect((await failure(unaware.decrypt(sealed, { context: CONTEXT }))).code).toBe(
      "ENVELOPE_NO_MATCHING_KEY",
    );
  });

  it("rewraps from a primary MRK to its replica with ReEncrypt in the replica's region", async () => {
    const primary = h.kms.createKey({ region: "us-east-1", multiRegion: true });
    const replica = h.kms.replicateKey(primary.arn, "eu-west-1");
    const sealed = await new Envelope({ encrypt: h.provider({ keyId: primary.arn }) }).encrypt(
      "mrk",
      {
        context: CONTEXT,
      },
    );
    const europe = h.provider({ keyId: replica.arn });
    h.kms.resetCalls();
    const moved = await new Envelope({ encrypt: europe }).rewrap(sealed, {
      to: europe,
      context: CONTEXT,
    });
    // Issue 11: the KMS's new entry is unwrapped once and checked against the key
    // commitment before the old entry is dropped.
    expect(h.kms.calls).toEqual({ ReEncrypt: 1, Decrypt: 1 });
    expect(h.kms.requests[0]).toMatchObject({ region: "eu-west-1" });
    expect(h.kms.requests[1]).toMatchObject({ operation: "Decrypt", region: "eu-west-1" });
    expect(entriesOf(moved)[0]!.keyRef).toBe(replica.arn);
  });

  describe("context mapping", () => {
    it.each([
      ["all", undefined, { table: "users", column: "email", id: "42" }],
      ["a subset", ["table", "column", "absent"], { table: "users", column: "email" }],
      ["none", "none", undefined],
    ] as const)("sends %s of the context to KMS", async (_label, kmsContext, expected) => {
      const key = h.kms.createKey();
      const provider = h.provider({ keyId: key.arn, ...(kmsContext ? { kmsContext } : {}) });
      const envelope = new Envelope({ encrypt: provider, cache: false });
      const sealed = await envelope.encrypt("v", { context: CONTEXT });
      await envelope.decrypt(sealed, { context: CONTEXT });
      for (const r of h.kms.requests) expect(r.encryptionContext).toEqual(expected);
      expect(h.kms.requests.map((r) => r.operation)).toEqual(["GenerateDataKey", "Decrypt"]);
    });

    it("KMS itself rejects a wrong context when the context is mapped", async () => {
      const key = h.kms.createKey();
      const envelope = new Envelope({ encrypt: h.provider({ keyId: key.arn }) });
      const sealed = await envelope.encrypt("v", { context: CONTEXT });
      const error = await failure(envelope.decrypt(sealed, { context: { ...CONTEXT, id: "43" } }));
      expect(error.code).toBe("ENVELOPE_KMS_CONTEXT_MISMATCH");
      expect(error.message).toContain(key.arn);
      expect(error.details).toMatchObject({
        provider: "aws-kms",
        awsError: "InvalidCiphertextException",
      });
      expect(h.kms.calls.Decrypt).toBe(1); // not retried
    });

    it("with kmsContext none, KMS unwraps and the envelope's own AAD rejects the wrong context", async () => {
      const key = h.kms.createKey();
      const envelope = new Envelope({
        encrypt: h.provider({ keyId: key.arn, kmsContext: "none" }),
      });
      const sealed = await envelope.encrypt("v", { context: CONTEXT });
      const error = await failure(envelope.decrypt(sealed, { context: { ...CONTEXT, id: "43" } }));
      expect(error.code).toBe("ENVELOPE_DECRYPT_FAILED");
      expect(h.kms.calls.Decrypt).toBe(1);
    });

    it("a subset mapping lets KMS ignore unmapped keys but the body still binds them", async () => {
      const key = h.kms.createKey();
      const envelope = new Envelope({
        encrypt: h.provider({ keyId: key.arn, kmsContext: ["table"] }),
        cache: false,
      });
      const sealed = await envelope.encrypt("v", { context: CONTEXT });
      expect(
        (await failure(envelope.decrypt(sealed, { context: { ...CONTEXT, table: "orders" } })))
          .code,
      ).toBe("ENVELOPE_KMS_CONTEXT_MISMATCH");
      expect(
        (await failure(envelope.decrypt(sealed, { context: { ...CONTEXT, id: "43" } }))).code,
      ).toBe("ENVELOPE_DECRYPT_FAILED");
    });

    it("puts the mapped context in the unwrap-cache key", () => {
      const p = awsKmsProvider({
        keyId: "arn:aws:kms:us-east-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
        kmsContext: ["table"],
      });
      expect(p.kmsContextKey!({ table: "a", id: "1" })).toBe(
        p.kmsContextKey!({ table: "a", id: "2" }),
      );
      expect(p.kmsContextKey!({ table: "a" })).not.toBe(p.kmsContextKey!({ table: "b" }));
      const none = awsKmsProvider({ keyId: "alias/x", region: "us-east-1", kmsContext: "none" });
      expect(none.kmsContextKey!({ table: "a" })).toBe("");
    });
  });

  it("sends grant tokens with every operation", async () => {
    const a = h.kms.createKey();
    const b = h.kms.createKey();
    const grantTokens = ["grant-token-1", "grant-token-2"];
    const pa = h.provider({ keyId: a.arn, grantTokens });
    const pb = h.provider({ keyId: b.arn, grantTokens });
    const envelope = new Envelope({ encrypt: [pa, pb], cache: false });
    const sealed = await envelope.encrypt("v", { context: CONTEXT });
    await envelope.decrypt(sealed, { context: CONTEXT });
    // decryptKeys lets the target claim the old entry, so rewrap is KMS-native (ReEncrypt).
    const pc = h.provider({ keyId: h.kms.createKey().arn, grantTokens, decryptKeys: [a.arn] });
    await envelope.rewrap(sealed, { to: pc, context: CONTEXT });
    expect(h.kms.requests.map((r) => r.operation)).toEqual([
      "GenerateDataKey",
      "Encrypt",
      "Decrypt",
      "ReEncrypt",
      "Decrypt", // the commitment check of the new entry (issue 11)
    ]);
    for (const r of h.kms.requests) expect(r.grantTokens).toEqual(grantTokens);
  });

  it("claims only aws-kms entries under its keys, decryptKeys or discovery", () => {
    const own = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const other = "arn:aws:kms:us-east-1:111122223333:key/00000000-12ab-34cd-56ef-1234567890ab";
    const foreign = "arn:aws:kms:us-east-1:444455556666:key/00000000-12ab-34cd-56ef-1234567890ab";
    const entry = (keyRef: string, providerId = "aws-kms") => ({
      providerId,
      keyRef,
      wrapped: new Uint8Array(8),
    });
    const p = awsKmsProvider({ keyId: own });
    expect(p.handles(entry(own))).toBe(true);
    expect(p.handles(entry(own, "local-aes"))).toBe(false);
    expect(p.handles(entry(other))).toBe(false);
    expect(p.handles(entry("alias/x"))).toBe(false);
    expect(awsKmsProvider({ keyId: own, decryptKeys: [other] }).handles(entry(other))).toBe(true);
    expect(
      awsKmsProvider({ keyId: own, discovery: { accountIds: ["444455556666"] } }).handles(
        entry(foreign),
      ),
    ).toBe(true);
    expect(
      awsKmsProvider({ keyId: own, discovery: { accountIds: ["444455556666"] } }).handles(
        entry(other),
      ),
    ).toBe(false);
    expect(awsKmsProvider({ keyId: own, discovery: true }).handles(entry(foreign))).toBe(true);
    const alias = awsKmsProvider({ keyId: "arn:aws:kms:us-east-1:111122223333:alias/pii" });
    expect(alias.handles(entry(other))).toBe(true); // same account and region as the alias
    expect(alias.handles(entry(foreign))).toBe(false);
  });

  it("works with an injected KMSClient", async () => {
    const key = h.kms.createKey({ region: "eu-central-1" });
    const client = new KMSClient({
      region: "eu-central-1",
      endpoint: h.kms.url,
      credentials: h.kms.credentials,
    });
    const envelope = new Envelope({ encrypt: awsKmsProvider({ keyId: key.arn, client }) });
    const sealed = await envelope.encrypt("injected", { context: CONTEXT });
    expect((await envelope.decrypt(sealed, { context: CONTEXT })).toString()).toBe("injected");
    expect(h.kms.requests.every((r) => r.region === "eu-central-1")).toBe(true);
    client.destroy();
  });

  it("shows only ids in toJSON and inspect", () => {
    const p = awsKmsProvider({
      keyId: "arn:aws:kms:us-east-1:111122223333:alias/pii",
      credentials: { accessKeyId: "AKIASECRETISH", secretAccessKey: "do-not-print" },
    });
    const shown = `${JSON.stringify(p)} ${inspect(p)}`;
    expect(shown).toContain("alias/pii");
    expect(shown).not.toContain("do-not-print");
    expect(shown).not.toContain("AKIASECRETISH");
  });

  it.each([
    [{ keyId: "not-a-key" }, "keyId"],
    [{ keyId: "alias/x", kmsContext: "some" }, "kmsContext"],
    [{ keyId: "alias/x", decryptKeys: ["alias/y"] }, "decryptKeys[0]"],
    [{ keyId: "alias/x", grantTokens: "t" }, "grantTokens"],
    [{ keyId: "alias/x", discovery: { accountIds: ["12"] } }, "discovery"],
    [{ keyId: "alias/x", retry: { attempts: 0 } }, "retry.attempts"],
    [{ keyId: "arn:aws:kms:us-east-1:111122223333:alias/x", region: "eu-west-1" }, "region"],
  ])("rejects bad options up front (%j)", (options, field) => {
    try {
      awsKmsProvider(options as never);
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ code: "ENVELOPE_BAD_CONFIG", details: { field } });
    }
  });
});
