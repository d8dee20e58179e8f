import { Envelope } from "@envelope/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { failure, type Harness, harness } from "./helpers.js";

// Leases are judged by Date.now() in both the provider and the test server, so the clock is
// moved by hand: a real sleep left ~500 ms of slack before a 2 s lease ran out.
const later = (ms: number) => vi.setSystemTime(Date.now() + ms);

let h: Harness;
beforeEach(async () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  h = await harness();
  await h.admin.write("transit/keys/pii", {});
  h.vault.resetCalls();
});
afterEach(async () => {
  await h.close();
  vi.useRealTimers();
});

const roundTrip = async (envelope: Envelope) => {
  const sealed = await envelope.encrypt("x");
  expect((await envelope.decrypt(sealed)).toString()).toBe("x");
};

describe("token auth", () => {
  it("looks the token up once, then sends it with every call", async () => {
    const token = h.vault.createToken({ policies: ["root"], ttl: 3600 });
    const envelope = new Envelope({ encrypt: h.provider({ auth: { token } }), cache: false });
    await roundTrip(envelope);
    await roundTrip(envelope);
    expect(h.vault.calls["auth.token.lookup-self"]).toBe(1);
    expect(h.vault.calls["auth.token.renew-self"]).toBeUndefined();
  });

  it("renews a renewable token with renew-self before it expires", async () => {
    const token = h.vault.createToken({ policies: ["root"], ttl: 2, renewable: true });
    const envelope = new Envelope({ encrypt: h.provider({ auth: { token } }), cache: false });
    await roundTrip(envelope);
    later(1500); // under a third of the 2 s lease is left
    await roundTrip(envelope);
    expect(h.vault.calls["auth.token.renew-self"]).toBe(1);
    later(1000); // past the original expiry: works only because it was renewed
    await roundTrip(envelope);
  });

  it("a bad token is ENVELOPE_KMS_ACCESS_DENIED, not retried", async () => {
    const envelope = new Envelope({ encrypt: h.provider({ auth: { token: "hvs.not-a-token" } }) });
    const error = await failure(envelope.encrypt("x"));
    expect(error.code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    expect(error.message).toContain("vault-transit");
    expect(error.message).toContain("transit/keys/pii");
    expect(error.message).not.toContain("hvs.not-a-token");
    expect(h.vault.calls["auth.token.lookup-self"]).toBe(1);
  });

  it("renew: false skips the lookup and uses the token as is", async () => {
    const envelope = new Envelope({
      encrypt: h.provider({ auth: { token: h.vault.rootToken, renew: false } }),
    });
    await roundTrip(envelope);
    expect(h.vault.calls["auth.token.lookup-self"]).toBeUndefined();
  });
});

describe("AppRole auth", () => {
  it("logs in once and reuses the token", async () => {
    const { roleId, secretId } = h.vault.addAppRole({ policies: ["root"] });
    const envelope = new Envelope({
      encrypt: h.provider({ auth: { approle: { roleId, secretId } } }),
      cache: false,
    });
    await roundTrip(envelope);
    await roundTrip(envelope);
    expect(h.vault.calls["auth.approle.login"]).toBe(1);
  });

  it("renews the AppRole token before expiry (short TTL)", async () => {
    const { roleId, secretId } = h.vault.addAppRole({ policies: ["root"], tokenTtl: 2 });
    const envelope = new Envelope({
      encrypt: h.provider({ auth: { approle: { roleId, secretId } } }),
      cache: false,
    });
    await roundTrip(envelope);
    later(1500);
    await roundTrip(envelope);
    expect(h.vault.calls["auth.token.renew-self"]).toBe(1);
    expect(h.vault.calls["auth.approle.login"]).toBe(1);
  });

  it("logs in again when the token is not renewable", async () => {
    const { roleId, secretId } = h.vault.addAppRole({
      policies: ["root"],
      tokenTtl: 2,
      renewable: false,
    });
    const envelope = new Envelope({
      encrypt: h.provider({ auth: { approle: { roleId, secretId } } }),
      cache: false,
    });
    await roundTrip(envelope);
    later(1500);
    await roundTrip(envelope);
    expect(h.vault.calls["auth.token.renew-self"]).toBeUndefined();
    expect(h.vault.calls["auth.approle.login"]).toBe(2);
  });

  it("logs in again when renewal is capped by the token's max TTL", async () => {
    const { roleId, secretId } = h.vault.addAppRole({
      policies: ["root"],
      tokenTtl: 3,
      tokenMaxTtl: 3,
    });
    const envelope = new Envelope({
      encrypt: h.provider({ auth: { approle: { roleId, secretId } } }),
      cache: false,
    });
    await roundTrip(envelope);
    // 0.8 s left: renew-self is capped at 1 s, under half the 3 s lease, so it logs in again.
    later(2200);
    await roundTrip(envelope);
    expect(h.vault.calls["auth.token.renew-self"]).toBe(1);
    expect(h.vault.calls["auth.approle.login"]).toBe(2);
  });

  it("logs in again once after a 403 (token revoked)", async () => {
    const { roleId, secretId } = h.vault.addAppRole({ policies: ["root"], mount: "apps/approle" });
    const provider = h.provider({
      auth: { approle: { roleId, secretId, mount: "apps/approle" } },
    });
    const envelope = new Envelope({ encrypt: provider, cache: false });
    await roundTrip(envelope);
    const token = (provider as unknown as { toJSON(): object }).toJSON();
    expect(JSON.stringify(token)).not.toMatch(/hvs\./);
    // Revoke every token the role got: the next call gets 403, logs in, and succeeds.
    for (const t of h.vault.issuedTokens()) h.vault.revokeToken(t);
    await roundTrip(envelope);
    expect(h.vault.calls["auth.approle.login"]).toBe(2);
  });

  it("wrong secret_id is ENVELOPE_KMS_ACCESS_DENIED naming the env vars", async () => {
    const { roleId } = h.vault.addAppRole({ policies: ["root"] });
    const envelope = new Envelope({
      encrypt: h.provider({ auth: { approle: { roleId, secretId: "wrong" } } }),
    });
    const error = await failure(envelope.encrypt("x"));
    expect(error.code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    expect(error.message).toContain("VAULT_SECRET_ID");
    expect(error.message).not.toContain("wrong");
    expect(h.vault.calls["auth.approle.login"]).toBe(1);
  });

  it("rejects empty credentials up front with ENVELOPE_BAD_CONFIG", () => {
    expect(() => h.provider({ auth: { approle: { roleId: "", secretId: "s" } } })).toThrow(
      expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }),
    );
    expect(() => h.provider({ auth: { token: "" } })).toThrow(
      expect.objectContaining({ code: "ENVELOPE_BAD_CONFIG" }),
    );
  });
});
