import { createEnvelope, decodeEnvelope } from "@envelope/core";
import { optionsFromUri, providerFactory } from "@envelope/vault";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { failure, type Harness, harness } from "./helpers.js";

describe("vault-transit:// URIs", () => {
  const env = { VAULT_TOKEN: "t0ken" };

  it.each([
    [
      "vault-transit://vault.internal:8200/transit/keys/pii",
      { address: "https://vault.internal:8200", mount: "transit", keyName: "pii" },
    ],
    [
      "vault-transit://vault.internal/team-a/transit/keys/pii.v2?tls=false",
      { address: "http://vault.internal:8200", mount: "team-a/transit", keyName: "pii.v2" },
    ],
    [
      "vault-transit://10.0.0.5:8300/transit/keys/tenant?namespace=ns1&derived=true&context=table,column&timeout_ms=2500",
      {
        address: "https://10.0.0.5:8300",
        namespace: "ns1",
        derived: true,
        // The old URI names (context, timeout_ms) still work; the options use the shared vocabulary.
        kmsContext: ["table", "column"],
        retry: { timeoutMs: 2500 },
      },
    ],
  ])("%s", (uri, expected) => {
    const { options } = optionsFromUri(uri, env);
    expect(options).toMatchObject({ ...expected, auth: { token: "t0ken" } });
  });

  it("takes AppRole credentials and the namespace from the environment", () => {
    const { options, lookup } = optionsFromUri(
      "vault-transit://v:8200/transit/keys/pii?approle_mount=apps&lookup=false",
      { VAULT_ROLE_ID: "r", VAULT_SECRET_ID: "s", VAULT_NAMESPACE: "team-b" },
    );
    expect(options.auth).toEqual({ approle: { roleId: "r", secretId: "s", mount: "apps" } });
    expect(options.namespace).toBe("team-b");
    expect(lookup).toBe(false);
  });

  it.each([
    ["vault-transit://v:8200/transit/pii", "must end in /<mount>/keys/<name>"],
    ["vault-transit://user:pw@v:8200/transit/keys/pii", "credentials"],
    ["vault-transit:///transit/keys/pii", "no Vault host"],
    ["aws-kms://v/transit/keys/pii", "does not start with"],
  ])("rejects %s", (uri, message) => {
    expect(() => optionsFromUri(uri, env)).toThrow(
      expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }),
    );
    expect(() => optionsFromUri(uri, env)).toThrow(message);
  });

  it("without credentials says which variables to set", () => {
    expect(() => optionsFromUri("vault-transit://v/transit/keys/pii", {})).toThrow(
      /VAULT_TOKEN.*VAULT_ROLE_ID/,
    );
  });
});

describe("config alone selects Vault", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
    await h.admin.write("transit/keys/pii", {});
    h.vault.resetCalls();
  });
  afterEach(() => h.close());

  it("createEnvelope loads @envelope/vault lazily from a key URI and reads the key once", async () => {
    const uri = `vault-transit://${new URL(h.vault.url).host}/transit/keys/pii?tls=false`;
    const envelope = await createEnvelope({ encrypt: uri }, { VAULT_TOKEN: h.vault.rootToken });
    expect(envelope.describe().encrypt).toEqual(["vault-transit:transit/keys/pii@v1"]);
    expect(h.vault.calls["keys.read"]).toBe(1);
    const sealed = await envelope.encrypt("by config");
    expect(decodeEnvelope(sealed).entries[0]?.keyRef).toBe("transit/keys/pii@v1");
    expect((await envelope.decrypt(sealed)).toString()).toBe("by config");
  });

  it("fromConfig takes the options object; a missing key fails at start-up", async () => {
    const provider = await providerFactory.fromConfig({
      provider: "vault-transit",
      address: h.vault.url,
      keyName: "pii",
      auth: { token: h.vault.rootToken },
    });
    expect(provider.keyRef).toBe("transit/keys/pii@v1");
    const error = await failure(
      providerFactory.fromConfig({
        provider: "vault-transit",
        address: h.vault.url,
        keyName: "absent",
        auth: { token: h.vault.rootToken },
      }),
    );
    expect(error.code).toBe("ENVELOPE_KEY_NOT_FOUND");
  });
});
