import { Envelope } from "@envelope/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { failure, type Harness, harness } from "./helpers.js";

let h: Harness;
beforeEach(async () => {
  h = await harness();
  await h.admin.write("transit/keys/pii", {});
  h.vault.resetCalls();
});
afterEach(() => h.close());

// renew: false and derived: false: no lookup-self / key read, so every request is the datakey.
const quiet = () =>
  h.provider({ auth: { token: h.vault.rootToken, renew: false }, derived: false });

describe("faults: retried with a bound, then a typed error", () => {
  it("429 on every call: 3 attempts, then ENVELOPE_KMS_THROTTLED", async () => {
    h.vault.faults.throttleEvery = 1;
    const error = await failure(new Envelope({ encrypt: quiet() }).encrypt("x"));
    expect(error.code).toBe("ENVELOPE_KMS_THROTTLED");
    expect(error.details.attempts).toBe(3);
    expect(error.message).toContain("vault-transit");
    expect(error.message).toContain("transit/keys/pii");
    expect(error.message).toContain("rate limit");
    expect(h.vault.calls.datakey).toBe(3);
  });

  it("429 on every 2nd call: the retry succeeds", async () => {
    h.vault.faults.throttleEvery = 2;
    const envelope = new Envelope({ encrypt: quiet() });
    const sealed = await envelope.encrypt("x"); // request 1 ok
    expect((await envelope.decrypt(sealed)).toString()).toBe("x"); // request 2 throttled, 3 ok
    expect(h.vault.calls.decrypt).toBe(2);
  });

  it("500 on every call: attempts as configured, then ENVELOPE_KMS_UNAVAILABLE", async () => {
    h.vault.faults.failEvery = 1;
    const provider = h.provider({
      auth: { token: h.vault.rootToken, renew: false },
      derived: false,
      retry: { attempts: 5, baseDelayMs: 1, maxDelayMs: 2 },
    });
    const error = await failure(new Envelope({ encrypt: provider }).encrypt("x"));
    expect(error.code).toBe("ENVELOPE_KMS_UNAVAILABLE");
    expect(error.details.attempts).toBe(5);
    expect(h.vault.calls.datakey).toBe(5);
  });

  it("a sealed Vault is ENVELOPE_KMS_UNAVAILABLE that says so", async () => {
    h.vault.sealed = true;
    const error = await failure(new Envelope({ encrypt: quiet() }).encrypt("x"));
    expect(error.code).toBe("ENVELOPE_KMS_UNAVAILABLE");
    expect(error.message).toMatch(/sealed/i);
    expect(error.message).toMatch(/unseal/i);
  });

  it("a hung Vault hits the per-attempt timeout, bounded", async () => {
    h.vault.faults.hang = true;
    const provider = h.provider({
      auth: { token: h.vault.rootToken, renew: false },
      derived: false,
      timeoutMs: 150,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    });
    const started = Date.now();
    const error = await failure(new Envelope({ encrypt: provider }).encrypt("x"));
    expect(error.code).toBe("ENVELOPE_KMS_TIMEOUT");
    expect(error.details.attempts).toBe(2);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(h.vault.calls.datakey).toBe(2);
  });

  it("dropped connections are ENVELOPE_KMS_UNAVAILABLE after the bound; one drop is survived", async () => {
    h.vault.faults.dropEvery = 1;
    const error = await failure(new Envelope({ encrypt: quiet() }).encrypt("x"));
    expect(error.code).toBe("ENVELOPE_KMS_UNAVAILABLE");
    expect(h.vault.calls.datakey).toBe(3);

    h.vault.faults.dropEvery = 2;
    h.vault.resetCalls();
    const envelope = new Envelope({ encrypt: quiet() });
    // resetCalls restarts the request count: request 1 (datakey) passes, 2 (decrypt) is dropped, 3 passes.
    const sealed = await envelope.encrypt("x");
    expect((await envelope.decrypt(sealed)).toString()).toBe("x");
    expect(h.vault.calls.datakey).toBe(1);
    expect(h.vault.calls.decrypt).toBe(2);
  });

  it("latency under the timeout is just slower", async () => {
    h.vault.faults.latencyMs = 50;
    const envelope = new Envelope({ encrypt: quiet() });
    expect((await envelope.decrypt(await envelope.encrypt("x"))).toString()).toBe("x");
    expect(h.vault.calls.datakey).toBe(1);
  });

  it("a closed port is ENVELOPE_KMS_UNAVAILABLE", async () => {
    const provider = quiet();
    await h.vault.close();
    const error = await failure(new Envelope({ encrypt: provider }).encrypt("x"));
    expect(error.code).toBe("ENVELOPE_KMS_UNAVAILABLE");
    expect(error.message).toContain("ECONNREFUSED");
  });

  it("nothing half-written: a failing second wrap fails the whole encrypt", async () => {
    const ok = quiet();
    // (A missing key would be created by encrypt's upsert under a root token, as in Vault;
    // a missing mount is not.)
    const missing = h.provider({ mount: "nowhere", derived: false });
    const error = await failure(new Envelope({ encrypt: [ok, missing] }).encrypt("x"));
    expect(error.code).toBe("ENVELOPE_KEY_NOT_FOUND");
  });

  it("error causes never carry the request (which holds the data key)", async () => {
    h.vault.faults.dropEvery = 1;
    const provider = quiet();
    const error = await failure(provider.wrap(Buffer.alloc(32, 0xab), { context: {} }));
    const seen =
      JSON.stringify(error) + String((error.cause as Error)?.message) + JSON.stringify(error.cause);
    expect(seen).not.toContain(Buffer.alloc(32, 0xab).toString("base64"));
    expect(Object.keys(error.cause as object)).not.toContain("config");
  });
});
