import { inspect } from "node:util";
import { decodeEnvelope, Envelope, localAesProvider } from "@envelope/core";
import { type VaultClient, vaultTransitProvider } from "@envelope/vault";
import nodeVault from "node-vault";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CONTEXT, failure, type Harness, harness } from "./helpers.js";

let h: Harness;
beforeEach(async () => {
  h = await harness();
  await h.admin.write("transit/keys/pii", { type: "aes256-gcm96" });
  h.vault.resetCalls();
});
afterEach(() => h.close());

describe("round trip through the real node-vault client", () => {
  it("seals with one datakey call and opens with one decrypt call", async () => {
    const provider = h.provider();
    const envelope = new Envelope({ encrypt: provider });
    const sealed = await envelope.encrypt("alice@example.com", {
      context: CONTEXT,
      output: "text",
    });
    expect(h.vault.calls.datakey).toBe(1);
    expect(h.vault.calls.encrypt).toBeUndefined();

    const [entry] = decodeEnvelope(Buffer.from(sealed.slice(4), "base64url")).entries;
    expect(entry?.providerId).toBe("vault-transit");
    expect(entry?.keyRef).toBe("transit/keys/pii@v1");
    expect(Buffer.from(entry!.wrapped).toString("latin1")).toMatch(/^vault:v1:[A-Za-z0-9+/]+=*$/);
    expect(provider.keyRef).toBe("transit/keys/pii@v1");

    const reader = new Envelope({ encrypt: h.provider() });
    await expect(reader.decrypt(sealed, { context: CONTEXT, as: "text" })).resolves.toBe(
      "alice@example.com",
    );
    expect(h.vault.calls.decrypt).toBe(1);
  });

  it("multi-wraps with encrypt, and either key alone decrypts", async () => {
    await h.admin.write("transit/keys/backup", {});
    const primary = h.provider();
    const backup = h.provider({ keyName: "backup" });
    const local = localAesProvider({ keys: Buffer.alloc(32, 7) });
    const sealed = await new Envelope({ encrypt: [primary, backup, local] }).encrypt("x", {
      context: CONTEXT,
    });
    expect(h.vault.calls.datakey).toBe(1);
    expect(h.vault.calls.encrypt).toBe(1);
    const refs = decodeEnvelope(sealed).entries.map((e) => e.keyRef);
    expect(refs.slice(0, 2)).toEqual(["transit/keys/pii@v1", "transit/keys/backup@v1"]);

    const onlyBackup = new Envelope({ encrypt: h.provider({ keyName: "backup" }) });
    expect((await onlyBackup.decrypt(sealed, { context: CONTEXT })).toString()).toBe("x");
    const onlyLocal = new Envelope({ encrypt: local });
    expect((await onlyLocal.decrypt(sealed, { context: CONTEXT })).toString()).toBe("x");
  });

  it("handles only entries of its own mount and key name, any version", () => {
    const provider = h.provider();
    const entry = (keyRef: string, providerId = "vault-transit") => ({
      providerId,
      keyRef,
      wrapped: new Uint8Array(1),
    });
    expect(provider.handles(entry("transit/keys/pii@v1"))).toBe(true);
    expect(provider.handles(entry("transit/keys/pii@v7"))).toBe(true);
    expect(provider.handles(entry("transit/keys/other@v1"))).toBe(false);
    expect(provider.handles(entry("other/keys/pii@v1"))).toBe(false);
    expect(provider.handles(entry("transit/keys/pii@v1", "aws-kms"))).toBe(false);
  });

  it("rejects an altered wrapped key with ENVELOPE_UNWRAP_FAILED", async () => {
    const envelope = new Envelope({ encrypt: h.provider() });
    const parts = decodeEnvelope(await envelope.encrypt("x"));
    const text = Buffer.from(parts.entries[0]!.wrapped).toString("latin1");
    const flipped = `${text.slice(0, 12)}${text[12] === "A" ? "B" : "A"}${text.slice(13)}`;
    const provider = h.provider();
    const error = await failure(
      provider.unwrap(
        { ...parts.entries[0]!, wrapped: Buffer.from(flipped, "latin1") },
        { context: {} },
      ),
    );
    expect(error.code).toBe("ENVELOPE_UNWRAP_FAILED");
    const mislabelled = await failure(
      provider.unwrap({ ...parts.entries[0]!, keyRef: "transit/keys/pii@v2" }, { context: {} }),
    );
    expect(mislabelled.code).toBe("ENVELOPE_UNWRAP_FAILED");
  });

  it("shows no token in toJSON or inspect", () => {
    const provider = h.provider();
    const shown = `${JSON.stringify(provider)} ${inspect(provider)}`;
    expect(shown).not.toContain(h.vault.rootToken === "root" ? '"root"' : h.vault.rootToken);
    expect(shown).toContain("transit/keys/pii");
  });
});

describe("mounts and namespaces", () => {
  it("uses a custom mount inside a namespace (X-Vault-Namespace)", async () => {
    h.vault.enableMount("secrets/transit", "team-a");
    const admin = nodeVault({
      endpoint: h.vault.url,
      token: h.vault.rootToken,
      namespace: "team-a",
      debug: () => {},
    });
    await admin.write("secrets/transit/keys/pii", {});
    const provider = h.provider({ mount: "secrets/transit", namespace: "team-a" });
    await provider.init();
    expect(provider.keyRef).toBe("secrets/transit/keys/pii@v1");
    const envelope = new Envelope({ encrypt: provider });
    const sealed = await envelope.encrypt("in a namespace");
    expect((await envelope.decrypt(sealed)).toString()).toBe("in a namespace");

    // The same mount without the namespace does not exist.
    const outside = h.provider({ mount: "secrets/transit" });
    expect((await failure(outside.init())).code).toBe("ENVELOPE_KEY_NOT_FOUND");
  });

  it("reports a missing key as ENVELOPE_KEY_NOT_FOUND", async () => {
    const provider = h.provider({ keyName: "nope" });
    const init = await failure(provider.init());
    expect(init.code).toBe("ENVELOPE_KEY_NOT_FOUND");
    expect(init.message).toContain("transit/keys/nope");
    // With `derived` given there is no key read: datakey itself answers 400 "encryption key not found".
    const direct = h.provider({ keyName: "nope", derived: false });
    const generate = await failure(new Envelope({ encrypt: direct }).encrypt("x"));
    expect(generate.code).toBe("ENVELOPE_KEY_NOT_FOUND");
    expect(h.vault.calls.datakey).toBe(1); // not retried
  });

  it("reports a deleted key as ENVELOPE_KEY_NOT_FOUND", async () => {
    const envelope = new Envelope({ encrypt: h.provider(), cache: false });
    const sealed = await envelope.encrypt("x");
    await h.admin.write("transit/keys/pii/config", { deletion_allowed: true });
    await h.admin.delete("transit/keys/pii");
    expect((await failure(envelope.decrypt(sealed))).code).toBe("ENVELOPE_KEY_NOT_FOUND");
  });
});

describe("derived keys and the context mapping", () => {
  /** Wraps the real node-vault client to record the body of every write. */
  function recording(): { client: VaultClient; bodies: { path: string; data: unknown }[] } {
    const real = nodeVault({ endpoint: h.vault.url, debug: () => {} }) as unknown as VaultClient;
    const bodies: { path: string; data: unknown }[] = [];
    return {
      bodies,
      client: {
        read: (path, o) => real.read(path, o),
        write: (path, data, o) => {
          bodies.push({ path, data });
          return real.write(path, data, o);
        },
      },
    };
  }

  it("sends the mapped context only for derived keys, and a wrong one fails in Vault", async () => {
    await h.admin.write("transit/keys/tenant", { derived: true });
    const { client, bodies } = recording();
    const provider = vaultTransitProvider({
      client,
      keyName: "tenant",
      auth: { token: h.vault.rootToken },
      context: ["table", "id"],
    });
    const envelope = new Envelope({ encrypt: provider, cache: false });
    const sealed = await envelope.encrypt("x", { context: CONTEXT });
    expect(h.vault.calls["keys.read"]).toBe(1); // learned `derived` from Vault once
    const datakey = bodies.find((b) => b.path === "transit/datakey/plaintext/tenant");
    expect(datakey?.data).toHaveProperty("context");

    const other = await failure(envelope.decrypt(sealed, { context: { ...CONTEXT, id: "43" } }));
    expect(other.code).toBe("ENVELOPE_KMS_CONTEXT_MISMATCH");
    // column is not mapped: Vault unwraps, and the body's AAD catches the change instead.
    const column = await failure(
      envelope.decrypt(sealed, { context: { ...CONTEXT, column: "x" } }),
    );
    expect(column.code).toBe("ENVELOPE_DECRYPT_FAILED");
    expect((await envelope.decrypt(sealed, { context: CONTEXT })).toString()).toBe("x");

    // A non-derived key never gets a context.
    bodies.length = 0;
    const plain = vaultTransitProvider({
      client,
      keyName: "pii",
      auth: { token: h.vault.rootToken },
    });
    const plainEnvelope = new Envelope({ encrypt: plain, cache: false });
    const plainSealed = await plainEnvelope.encrypt("y", { context: CONTEXT });
    expect(bodies.every((b) => !(b.data as Record<string, unknown>).context)).toBe(true);
    // …so for it a context mismatch is caught by the body's AAD after one Vault decrypt.
    const decrypts = h.vault.calls.decrypt ?? 0;
    const mismatch = await failure(
      plainEnvelope.decrypt(plainSealed, { context: { ...CONTEXT, id: "43" } }),
    );
    expect(mismatch.code).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(h.vault.calls.decrypt).toBe(decrypts + 1);
  });

  it("derived=true skips the key read; kmsContextKey reflects the mapping", async () => {
    await h.admin.write("transit/keys/tenant", { derived: true });
    const provider = h.provider({ keyName: "tenant", derived: true, context: "none" });
    const envelope = new Envelope({ encrypt: provider });
    const sealed = await envelope.encrypt("x", { context: CONTEXT });
    expect(h.vault.calls["keys.read"]).toBeUndefined();
    // "none" sends one fixed context, so any caller context unwraps in Vault.
    expect(provider.kmsContextKey!(CONTEXT)).toBe(provider.kmsContextKey!({}));
    expect((await envelope.decrypt(sealed, { context: CONTEXT })).toString()).toBe("x");
    expect(h.provider({ derived: false }).kmsContextKey!(CONTEXT)).toBe("");
  });
});

describe("ACL: the policy from the README is enough", () => {
  const readmePolicy = {
    "transit/datakey/plaintext/pii": ["update"],
    "transit/encrypt/pii": ["update"],
    "transit/decrypt/pii": ["update"],
    "transit/rewrap/pii": ["update"],
    "transit/keys/pii": ["read"],
  };

  it("encrypts, decrypts, rewraps and reads the key with exactly those capabilities", async () => {
    await h.close();
    h = await harness({ policies: { envelope: readmePolicy } });
    await h.admin.write("transit/keys/pii", {});
    const token = h.vault.createToken({ policies: ["envelope"], ttl: 3600 });
    const provider = h.provider({ auth: { token } });
    await provider.init();
    const envelope = new Envelope({ encrypt: provider, cache: false });
    const sealed = await envelope.encrypt("x", { context: CONTEXT });
    await provider.wrap(Buffer.alloc(32, 1), { context: CONTEXT });
    expect((await envelope.decrypt(sealed, { context: CONTEXT })).toString()).toBe("x");
    await h.admin.write("transit/keys/pii/rotate", {});
    await provider.refresh();
    const moved = await envelope.rewrap(sealed, { context: CONTEXT });
    expect(decodeEnvelope(moved).entries[0]?.keyRef).toBe("transit/keys/pii@v2");

    // Without decrypt in the policy, decrypt is denied (and not retried).
    const noDecrypt = { ...readmePolicy, "transit/decrypt/pii": ["deny"] };
    await h.close();
    h = await harness({ policies: { writer: noDecrypt } });
    await h.admin.write("transit/keys/pii", {});
    const writerToken = h.vault.createToken({ policies: ["writer"] });
    const writer = new Envelope({ encrypt: h.provider({ auth: { token: writerToken } }) });
    const written = await writer.encrypt("y");
    h.vault.resetCalls();
    const denied = await failure(writer.decrypt(written));
    expect(denied.code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    expect(denied.message).toContain("policy");
    expect(h.vault.calls.decrypt).toBe(1);
  });
});

describe("a key that cannot encrypt", () => {
  it("init() refuses a signing key (Vault's key read says supports_encryption: false) with ENVELOPE_BAD_KEY, naming its type", async () => {
    await h.admin.write("transit/keys/signer", {});
    // The real client, with Vault's answer for an ed25519 key (the test server models only
    // encryption keys): type and supports_* as GET transit/keys/<name> documents them.
    const real = nodeVault({ endpoint: h.vault.url, debug: () => {} }) as unknown as VaultClient;
    const client: VaultClient = {
      read: async (path, o) => {
        const body = (await real.read(path, o)) as { data?: Record<string, unknown> };
        if (path !== "transit/keys/signer" || !body.data) return body;
        return {
          ...body,
          data: {
            ...body.data,
            type: "ed25519",
            supports_encryption: false,
            supports_signing: true,
          },
        };
      },
      write: (path, data, o) => real.write(path, data, o),
    };
    const provider = vaultTransitProvider({
      client,
      keyName: "signer",
      auth: { token: h.vault.rootToken },
    });
    const error = await failure(provider.init());
    expect(error.code).toBe("ENVELOPE_BAD_KEY");
    expect(error.message).toMatch(/type "ed25519", which cannot encrypt/);
  });
});
