// @envelope/vault, through its public API only (package exports and README usage), against
// the independent Vault server in ./server.ts (written from the Vault API docs, not from this
// repo's test/servers/vault-transit.ts).
//
// Run: pnpm exec vitest run test/independent/vault/provider.test.ts
//
// Findings are listed in ./README.md; a case that fails because of an open one is `it.fails`
// with the finding named.
import { format, inspect } from "node:util";
import {
  createEnvelope,
  DecryptionError,
  decodeEnvelope,
  Envelope,
  EnvelopeError,
  fromText,
  inspectEnvelope,
} from "@envelope/core";
import {
  PROVIDER_ID,
  providerFactory,
  type VaultTransitProvider,
  vaultTransitProvider,
} from "@envelope/vault";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { type IndependentVault, readmePolicy, startIndependentVault } from "./server.js";

const PLAINTEXT = "alice.CANARY-PLAINTEXT@example.com";
const CONTEXT = { table: "users", column: "email", id: "42" };
const FAST = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, timeoutMs: 2000 };

let vault: IndependentVault;
/** Everything printed while the tests ran: console.* and process warnings. */
const printed: string[] = [];

beforeAll(async () => {
  vault = await startIndependentVault();
  vault.writePolicy("envelope-pii", readmePolicy("transit", "pii"));
  for (const level of ["log", "info", "warn", "error", "debug", "trace"] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      printed.push(format(...args));
    });
  }
  process.on("warning", onWarning);
});

function onWarning(warning: Error): void {
  printed.push(`${warning.name}: ${warning.message}`);
}

afterAll(async () => {
  process.off("warning", onWarning);
  vi.restoreAllMocks();
  await vault.close();
  // Nothing this suite did may have printed a token, a secret ID, plaintext or a data key.
  const secrets = [...vault.tokens.keys(), PLAINTEXT, "CANARY-SECRET-ID"];
  for (const line of printed) for (const s of secrets) expect(line).not.toContain(s);
});

beforeEach(() => {
  vault.createKey("pii");
  vault.clearFaults();
  vault.sealed = false;
  vault.requests.length = 0;
});

afterEach(() => {
  vi.useRealTimers();
});

function policyToken(
  policies = ["envelope-pii"],
  extra: Parameters<IndependentVault["createToken"]>[0] = {},
) {
  return vault.createToken({ policies, ...extra });
}

function provider(options: Partial<Parameters<typeof vaultTransitProvider>[0]> = {}) {
  return vaultTransitProvider({
    address: vault.address,
    keyName: "pii",
    auth: { token: policyToken() },
    retry: FAST,
    ...options,
  });
}

/** Every rendered surface of an error and its causes. */
function surfaces(error: unknown): string {
  const out: string[] = [];
  let current: unknown = error;
  for (let i = 0; current && i < 10; i++) {
    const e = current as Error;
    out.push(
      String(e.message),
      String(e.stack),
      JSON.stringify(e),
      inspect(e, { showHidden: true, depth: Number.POSITIVE_INFINITY }),
      format("%o", e),
    );
    current = (current as { cause?: unknown }).cause;
  }
  return out.join("\n");
}

async function failure(promise: Promise<unknown>): Promise<EnvelopeError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, "expected a rejection").toBeDefined();
  expect(EnvelopeError.isInstance(error), `not an EnvelopeError: ${String(error)}`).toBe(true);
  return error as EnvelopeError;
}

/** The checks every provider error must pass: typed, named, actionable, and secret-free. */
function expectTyped(error: EnvelopeError, code: string, secrets: string[] = []) {
  expect(error.code).toBe(code);
  expect(error.message).toContain("vault-transit");
  const all = surfaces(error);
  for (const s of [...secrets, ...vault.tokens.keys(), PLAINTEXT]) expect(all).not.toContain(s);
  // A data key or plaintext base64 that Vault handled in this test must not surface either.
  for (const r of vault.requests) {
    const p = r.body?.plaintext;
    if (typeof p === "string" && p.length > 8) expect(all).not.toContain(p);
  }
  // No raw axios / node-vault error (its config holds the token header and the request body).
  expect(all).not.toMatch(/X-Vault-Token|x-vault-token|"secret_id"|secret_id:|"plaintext"/);
}

const transitCalls = (op: string) => vault.calls(new RegExp(`^transit/${op}`));

describe("README: config-driven setup (vault-transit:// URI)", () => {
  it("seals and opens, with VAULT_TOKEN from the env given to createEnvelope", async () => {
    const token = policyToken();
    const port = new URL(vault.address).port;
    const envelope = await createEnvelope(
      { encrypt: `vault-transit://127.0.0.1:${port}/transit/keys/pii?tls=false` },
      { VAULT_TOKEN: token },
    );
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT, output: "text" });
    expect(await envelope.decrypt(sealed, { context: CONTEXT, as: "text" })).toBe(PLAINTEXT);

    const [entry] = inspectEnvelope(sealed).entries;
    expect(entry).toMatchObject({ provider: "vault-transit", keyRef: "transit/keys/pii@v1" });
    expect(entry!.wrappedBytes).toBe(89); // README: vault:v1: + base64(12 + 32 + 16)
    const wrapped = Buffer.from(decodeEnvelope(fromText(sealed)).entries[0]!.wrapped).toString();
    expect(wrapped).toMatch(/^vault:v1:[A-Za-z0-9+/]+={0,2}$/);

    // What was sent: the start-up key read, the token lookup, one datakey, one decrypt.
    expect(vault.calls(/^transit\/keys\/pii$/, "GET")).toHaveLength(1);
    expect(vault.calls(/^auth\/token\/lookup-self$/)).toHaveLength(1);
    const [datakey] = transitCalls("datakey/plaintext/pii");
    expect(datakey!.body).toEqual({ bits: 256 }); // no context for a non-derived key
    expect(transitCalls("decrypt/pii")).toHaveLength(1);
    for (const r of vault.requests) {
      expect(r.token).toBe(token);
      expect(JSON.stringify(r.body ?? {})).not.toContain(PLAINTEXT);
      expect(JSON.stringify(r.body ?? {})).not.toContain("users");
    }
  });

  it("a config object with the address from VAULT_ADDR works", async () => {
    const envelope = await createEnvelope(
      { encrypt: { provider: "vault-transit", keyName: "pii" } },
      { VAULT_ADDR: vault.address, VAULT_TOKEN: policyToken() },
    );
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(await envelope.decrypt(sealed, { context: CONTEXT, as: "text" })).toBe(PLAINTEXT);
  });

  it("fails at start-up with ENVELOPE_KEY_NOT_FOUND when the key does not exist", async () => {
    const error = await failure(
      createEnvelope(
        { encrypt: "vault-transit:///transit/keys/nope" },
        { VAULT_ADDR: vault.address, VAULT_TOKEN: vault.rootToken },
      ),
    );
    expectTyped(error, "ENVELOPE_KEY_NOT_FOUND");
    expect(error.message).toContain("transit/keys/nope");
  });

  it("fails at start-up with ENVELOPE_BAD_CONFIG naming the variables when no credentials are set", async () => {
    const error = await failure(
      createEnvelope(
        { encrypt: "vault-transit:///transit/keys/pii" },
        { VAULT_ADDR: vault.address },
      ),
    );
    expect(error.code).toBe("ENVELOPE_BAD_CONFIG");
    expect(error.message).toMatch(/VAULT_TOKEN/);
    expect(error.message).toMatch(/VAULT_ROLE_ID/);
    expect(vault.requests).toHaveLength(0);
  });

  it("AppRole credentials from VAULT_ROLE_ID / VAULT_SECRET_ID log in at auth/approle/login", async () => {
    vault.addAppRole({
      roleName: "envelope-pii",
      roleId: "role-1",
      secretId: "CANARY-SECRET-ID-1",
      policies: ["envelope-pii"],
    });
    const envelope = await createEnvelope(
      { encrypt: "vault-transit:///transit/keys/pii" },
      { VAULT_ADDR: vault.address, VAULT_ROLE_ID: "role-1", VAULT_SECRET_ID: "CANARY-SECRET-ID-1" },
    );
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(await envelope.decrypt(sealed, { context: CONTEXT, as: "text" })).toBe(PLAINTEXT);
    const logins = vault.calls(/^auth\/approle\/login$/);
    expect(logins).toHaveLength(1);
    expect(logins[0]!.body).toEqual({ role_id: "role-1", secret_id: "CANARY-SECRET-ID-1" });
    expect(logins[0]!.token).toBeUndefined();
  });

  it("the provider object never shows a token or secret", async () => {
    const p = provider({ auth: { approle: { roleId: "r", secretId: "CANARY-SECRET-ID-2" } } });
    const shown = [JSON.stringify(p), inspect(p), String(p), format("%o", p)].join("\n");
    expect(shown).not.toContain("CANARY-SECRET-ID-2");
    expect(providerFactory).toBeDefined();
    expect(p.id).toBe(PROVIDER_ID);
  });
});

describe("README: building the provider yourself", () => {
  it("init() reads the key once; keyRef names the latest version; round trips", async () => {
    const p = provider();
    expect(p.keyRef).toBe("transit/keys/pii");
    await p.init();
    expect(p.keyRef).toBe("transit/keys/pii@v1");
    const envelope = new Envelope({ encrypt: p });
    const sealed = await envelope.encrypt(Buffer.from(PLAINTEXT), { context: CONTEXT });
    expect((await envelope.decrypt(sealed, { context: CONTEXT })).toString()).toBe(PLAINTEXT);
    expect(vault.calls(/^transit\/keys\/pii$/, "GET")).toHaveLength(1);
  });

  it("a mount with slashes (team-a/transit) and a namespace reach the right key", async () => {
    vault.createNamespace("team-a");
    vault.enableTransit("team-a/transit", "team-a");
    vault.createKey("pii", { mount: "team-a/transit", ns: "team-a" });
    vault.writePolicy("ns-pii", readmePolicy("team-a/transit", "pii"), "team-a");
    vault.addAppRole({
      roleName: "r",
      roleId: "ns-role",
      secretId: "CANARY-SECRET-ID-3",
      policies: ["ns-pii"],
      ns: "team-a",
    });
    const p = provider({
      mount: "team-a/transit",
      namespace: "team-a",
      auth: { approle: { roleId: "ns-role", secretId: "CANARY-SECRET-ID-3" } },
    });
    await p.init();
    const envelope = new Envelope({ encrypt: p });
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(await envelope.decrypt(sealed, { context: CONTEXT, as: "text" })).toBe(PLAINTEXT);
    expect(inspectEnvelope(sealed).entries[0]!.keyRef).toBe("team-a/transit/keys/pii@v1");
    // Every request, login included, carries X-Vault-Namespace.
    expect(vault.requests.length).toBeGreaterThanOrEqual(4);
    for (const r of vault.requests) expect(r.namespace).toBe("team-a");

    // Without the namespace the same key is not there.
    const outside = provider({
      mount: "team-a/transit",
      auth: { token: vault.rootToken, renew: false },
    });
    expectTyped(await failure(outside.init()), "ENVELOPE_KEY_NOT_FOUND");
  });
});

describe("context binding", () => {
  it("non-derived key: no context goes to Vault; another row's context is refused by the AAD", async () => {
    const envelope = new Envelope({ encrypt: provider() });
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    const error = await failure(envelope.decrypt(sealed, { context: { ...CONTEXT, id: "43" } }));
    expect(error).toBeInstanceOf(DecryptionError);
    for (const r of vault.requests) expect(r.body?.context).toBeUndefined();
  });

  it("derived key: Vault gets a base64 context and refuses another row's with KMS_CONTEXT_MISMATCH", async () => {
    vault.createKey("pii", { derived: true });
    const p = provider();
    await p.init();
    const envelope = new Envelope({ encrypt: p, cache: false });
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    const [datakey] = transitCalls("datakey/plaintext/pii");
    expect(typeof datakey!.body?.context).toBe("string");
    expect(Buffer.from(datakey!.body!.context as string, "base64").length).toBeGreaterThan(0);
    expect(await envelope.decrypt(sealed, { context: CONTEXT, as: "text" })).toBe(PLAINTEXT);

    const error = await failure(envelope.decrypt(sealed, { context: { ...CONTEXT, id: "43" } }));
    expectTyped(error, "ENVELOPE_KMS_CONTEXT_MISMATCH");
    expect(error.message).toMatch(/context/);
    expect(error.message).toContain("transit/keys/pii@v1");
  });

  it("derived key with kmsContext ['table','column']: Vault binds the column, the AAD binds the row", async () => {
    vault.createKey("pii", { derived: true });
    const envelope = new Envelope({
      encrypt: provider({ kmsContext: ["table", "column"] }),
      cache: false,
    });
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    const otherColumn = await failure(
      envelope.decrypt(sealed, { context: { ...CONTEXT, column: "phone" } }),
    );
    expect(otherColumn.code).toBe("ENVELOPE_KMS_CONTEXT_MISMATCH");
    const otherRow = await failure(envelope.decrypt(sealed, { context: { ...CONTEXT, id: "43" } }));
    expect(otherRow).toBeInstanceOf(DecryptionError);
  });

  it("derived key told derived:false: Vault's missing-context error says what to set", async () => {
    vault.createKey("pii", { derived: true });
    const envelope = new Envelope({ encrypt: provider({ derived: false }) });
    const error = await failure(envelope.encrypt(PLAINTEXT, { context: CONTEXT }));
    expectTyped(error, "ENVELOPE_KMS_ERROR");
    expect(error.message).toMatch(/derived/);
    expect(transitCalls("datakey")).toHaveLength(1); // a 400 is not retried
  });
});

describe("rotation and Vault's native rewrap", () => {
  async function rotate() {
    const res = await fetch(`${vault.address}/v1/transit/keys/pii/rotate`, {
      method: "POST",
      headers: { "X-Vault-Token": vault.rootToken },
    });
    expect(res.status).toBe(200);
  }
  async function configure(body: Record<string, unknown>) {
    const res = await fetch(`${vault.address}/v1/transit/keys/pii/config`, {
      method: "POST",
      headers: { "X-Vault-Token": vault.rootToken, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it("rotate, refreshKeys, rewrap: entry moves to v2 in Vault, body byte-identical, old data still opens", async () => {
    const p = provider();
    await p.init();
    const envelope = new Envelope({ encrypt: p, cache: false });
    const v1 = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });

    await rotate();
    await envelope.refreshKeys();
    expect(p.keyRef).toBe("transit/keys/pii@v2");
    expect(await p.refresh()).toEqual({
      latestVersion: 2,
      minDecryptionVersion: 1,
      derived: false,
    });
    expect(
      p.handles({
        providerId: "vault-transit",
        keyRef: "transit/keys/pii@v1",
        wrapped: new Uint8Array(),
      }),
    ).toBe(true);
    expect(
      p.handles({
        providerId: "vault-transit",
        keyRef: "transit/keys/pii2@v1",
        wrapped: new Uint8Array(),
      }),
    ).toBe(false);
    expect(
      p.handles({
        providerId: "vault-transit",
        keyRef: "other/keys/pii@v1",
        wrapped: new Uint8Array(),
      }),
    ).toBe(false);
    vault.requests.length = 0;
    const rewrapped = await envelope.rewrap(v1, { context: CONTEXT });
    const before = decodeEnvelope(v1);
    const after = decodeEnvelope(rewrapped as Buffer);
    expect(Buffer.from(after.body).equals(Buffer.from(before.body))).toBe(true);
    expect(after.entries.map((e) => e.keyRef)).toEqual(["transit/keys/pii@v2"]);
    expect(Buffer.from(after.entries[0]!.wrapped).toString()).toMatch(/^vault:v2:/);
    expect(transitCalls("rewrap/pii")).toHaveLength(1);
    // the data key never left Vault on the rewrap itself
    expect(vault.calls(/^transit\/rewrap/)[0]!.body).not.toHaveProperty("plaintext");
    expect(await envelope.decrypt(rewrapped, { context: CONTEXT, as: "text" })).toBe(PLAINTEXT);
    expect(await envelope.decrypt(v1, { context: CONTEXT, as: "text" })).toBe(PLAINTEXT);

    // New values go to v2; a value already on v2 is left alone without a Vault call.
    const v2 = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(inspectEnvelope(v2).entries[0]!.keyRef).toBe("transit/keys/pii@v2");
    vault.requests.length = 0;
    const same = await envelope.rewrap(v2, { context: CONTEXT });
    expect(Buffer.from(same as Buffer).equals(v2)).toBe(true);
    expect(vault.requests).toHaveLength(0);
  });

  it("min_decryption_version: old versions are refused with ENVELOPE_KEY_DISABLED, not retried", async () => {
    const envelope = new Envelope({ encrypt: provider(), cache: false });
    const v1 = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    await rotate();
    expect((await configure({ min_decryption_version: 2 })).status).toBe(200);
    vault.requests.length = 0;
    const error = await failure(envelope.decrypt(v1, { context: CONTEXT }));
    expectTyped(error, "ENVELOPE_KEY_DISABLED");
    expect(error.message).toMatch(/min_decryption_version/);
    expect(error.message).toContain("transit/keys/pii@v1");
    expect(transitCalls("decrypt")).toHaveLength(1);

    const rewrapError = await failure(envelope.rewrap(v1, { context: CONTEXT, force: true }));
    expect(rewrapError.code).toBe("ENVELOPE_KEY_DISABLED");

    // Lowering it again reopens old data: a policy, not erasure (README, Rotation 3).
    expect((await configure({ min_decryption_version: 1 })).status).toBe(200);
    expect(await envelope.decrypt(v1, { context: CONTEXT, as: "text" })).toBe(PLAINTEXT);
  });

  it("min_encryption_version: new data keys still use the latest version; Vault refuses a min above min_decryption's rules", async () => {
    const envelope = new Envelope({ encrypt: provider(), cache: false });
    await rotate();
    expect((await configure({ min_decryption_version: 2, min_encryption_version: 2 })).status).toBe(
      200,
    );
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(inspectEnvelope(sealed).entries[0]!.keyRef).toBe("transit/keys/pii@v2");
    const refused = await configure({ min_encryption_version: 1 });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([
      "min encryption version of 1 must be greater than or equal to min decryption version of 2",
    ]);
  });

  it("a deleted key (deletion_allowed) is ENVELOPE_KEY_NOT_FOUND; without deletion_allowed Vault refuses the delete", async () => {
    const envelope = new Envelope({ encrypt: provider(), cache: false });
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    const del = () =>
      fetch(`${vault.address}/v1/transit/keys/pii`, {
        method: "DELETE",
        headers: { "X-Vault-Token": vault.rootToken },
      });
    const refused = await del();
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { errors: string[] }).errors[0]).toMatch(
      /deletion is not allowed/,
    );
    expect((await configure({ deletion_allowed: true })).status).toBe(200);
    expect((await del()).status).toBe(204);
    vault.requests.length = 0;
    const error = await failure(envelope.decrypt(sealed, { context: CONTEXT }));
    expectTyped(error, "ENVELOPE_KEY_NOT_FOUND");
    expect(transitCalls("decrypt")).toHaveLength(1);
  });

  it("nothing half-written: a rewrap whose verifying decrypt fails returns nothing and leaves the value as it was", async () => {
    const p = provider();
    await p.init();
    const envelope = new Envelope({ encrypt: p, cache: false });
    const v1 = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    const copy = Buffer.from(v1);
    await rotate();
    await envelope.refreshKeys();
    vault.fault(/^transit\/decrypt\/pii$/, { status: 500, errors: ["internal error"] }, 3);
    const error = await failure(envelope.rewrap(v1, { context: CONTEXT }));
    expectTyped(error, "ENVELOPE_KMS_UNAVAILABLE");
    expect(transitCalls("rewrap")).toHaveLength(1);
    expect(v1.equals(copy)).toBe(true);
    expect(await envelope.decrypt(v1, { context: CONTEXT, as: "text" })).toBe(PLAINTEXT);
  });

  it("nothing half-written: multi-wrap where the second key refuses produces no value", async () => {
    vault.createKey("pii2");
    const first = provider();
    const second = provider({ keyName: "pii2" }); // the token's policy does not cover pii2
    const envelope = new Envelope({ encrypt: [first, second] });
    const error = await failure(envelope.encrypt(PLAINTEXT, { context: CONTEXT }));
    expectTyped(error, "ENVELOPE_KMS_ACCESS_DENIED");
  });
});

describe("README claims, start-up options", () => {
  it("?lookup=false makes no request at start-up", async () => {
    const port = new URL(vault.address).port;
    await createEnvelope(
      { encrypt: `vault-transit://127.0.0.1:${port}/transit/keys/pii?tls=false&lookup=false` },
      { VAULT_TOKEN: policyToken() },
    );
    expect(vault.requests).toHaveLength(0);
  });

  it("ENVELOPE_VAULT_TOKEN_RENEW=false: no token lookup, ever", async () => {
    const envelope = await createEnvelope(
      { encrypt: "vault-transit:///transit/keys/pii" },
      {
        VAULT_ADDR: vault.address,
        VAULT_TOKEN: policyToken(),
        ENVELOPE_VAULT_TOKEN_RENEW: "false",
      },
    );
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(vault.calls(/^auth\//)).toHaveLength(0);
  });

  it("a proxy that forwards only transit paths: the failed lookup is reported as such", async () => {
    vault.fault(/^auth\/token\/lookup-self$/, { status: 404, errors: [] });
    const error = await failure(
      createEnvelope(
        { encrypt: "vault-transit:///transit/keys/pii" },
        { VAULT_ADDR: vault.address, VAULT_TOKEN: policyToken() },
      ),
    );
    expectTyped(error, "ENVELOPE_KMS_ERROR");
    expect(error.message).toMatch(/lookup-self/);
    expect(error.message).toMatch(/renew=false/);
  });

  it("FINDING 1: behind a Vault Agent / Proxy with require_request_header, every request carries X-Vault-Request: true", async () => {
    vault.requireRequestHeader = true;
    try {
      vault.addAppRole({
        roleName: "agent",
        roleId: "agent-role",
        secretId: "CANARY-SECRET-ID-10",
        policies: ["envelope-pii"],
      });
      for (const env of [
        { VAULT_TOKEN: policyToken() },
        { VAULT_ROLE_ID: "agent-role", VAULT_SECRET_ID: "CANARY-SECRET-ID-10" },
      ]) {
        const envelope = await createEnvelope(
          { encrypt: "vault-transit:///transit/keys/pii" },
          { VAULT_ADDR: vault.address, ...env },
        );
        const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
        expect(await envelope.decrypt(sealed, { context: CONTEXT, as: "text" })).toBe(PLAINTEXT);
      }
      expect(vault.requests.filter((r) => r.status === 412)).toHaveLength(0);
    } finally {
      vault.requireRequestHeader = false;
    }
  });

  it("FINDING 1: a 412 \"missing 'X-Vault-Request' header\" is a configuration error, not retried as an outage", async () => {
    const p = provider({ derived: false, auth: { token: policyToken(), renew: false } });
    vault.fault(/datakey/, { status: 412, errors: ["missing 'X-Vault-Request' header"] }, 10);
    const error = await failure(
      new Envelope({ encrypt: p }).encrypt(PLAINTEXT, { context: CONTEXT }),
    );
    expectTyped(error, "ENVELOPE_KMS_ERROR");
    expect(error.message).toMatch(/X-Vault-Request/);
    expect(transitCalls("datakey")).toHaveLength(1);
  });

  it("readiness check of a derived key sends a context and passes", async () => {
    vault.createKey("pii", { derived: true });
    const envelope = new Envelope({ encrypt: provider() });
    const report = await envelope.check();
    expect(report.ok).toBe(true);
  });
});

describe("readiness check (envelope.check)", () => {
  it("ok with the README policy", async () => {
    const envelope = new Envelope({ encrypt: provider() });
    const report = await envelope.check();
    expect(report.ok).toBe(true);
    expect(report.providers[0]).toMatchObject({ provider: "vault-transit", status: "ok" });
  });

  it("a policy without decrypt fails the check with ACCESS_DENIED", async () => {
    const { "transit/decrypt/pii": _, ...noDecrypt } = readmePolicy("transit", "pii");
    vault.writePolicy("writer", noDecrypt);
    const envelope = new Envelope({
      encrypt: provider({ auth: { token: policyToken(["writer"]) } }),
    });
    const report = await envelope.check();
    expect(report.ok).toBe(false);
    expect(report.providers[0]!.error).toMatchObject({ code: "ENVELOPE_KMS_ACCESS_DENIED" });
  });

  it("a sealed Vault fails the check with KMS_UNAVAILABLE and a message about unsealing", async () => {
    const envelope = new Envelope({ encrypt: provider({ derived: false }) });
    vault.sealed = true;
    const report = await envelope.check();
    expect(report.ok).toBe(false);
    expect(report.providers[0]!.error?.code).toBe("ENVELOPE_KMS_UNAVAILABLE");
    expect(report.providers[0]!.error?.message).toMatch(/sealed/i);
  });
});

describe("errors and retries", () => {
  async function sealWith(p: VaultTransitProvider) {
    return new Envelope({ encrypt: p, cache: false }).encrypt(PLAINTEXT, { context: CONTEXT });
  }

  it("429 once, then success: retried after its Retry-After", async () => {
    // maxDelayMs above Vault's Retry-After (1 s), so that the wait is taken.
    const p = provider({
      derived: false,
      auth: { token: policyToken(), renew: false },
      retry: { ...FAST, maxDelayMs: 1500 },
    });
    vault.fault(/datakey/, {
      status: 429,
      errors: ['request path "transit/datakey/plaintext/pii": rate limit quota exceeded'],
      headers: { "Retry-After": "1" },
    });
    const started = Date.now();
    await sealWith(p);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(transitCalls("datakey")).toHaveLength(2);
  });

  it.each([
    [
      429,
      'request path "transit/datakey/plaintext/pii": rate limit quota exceeded',
      "ENVELOPE_KMS_THROTTLED",
    ],
    [500, "internal error", "ENVELOPE_KMS_UNAVAILABLE"],
    [502, "bad gateway", "ENVELOPE_KMS_UNAVAILABLE"],
    [503, "Vault is sealed", "ENVELOPE_KMS_UNAVAILABLE"],
    [504, "gateway timeout", "ENVELOPE_KMS_UNAVAILABLE"],
    [412, "required index state not present", "ENVELOPE_KMS_UNAVAILABLE"],
  ])("%i persisting: %s -> %s after exactly `attempts` calls", async (status, message, code) => {
    const p = provider({ derived: false, auth: { token: policyToken(), renew: false } });
    vault.fault(/datakey/, { status, errors: [message] }, 10);
    const error = await failure(sealWith(p));
    expectTyped(error, code);
    expect(error.message).toContain("transit/keys/pii");
    expect(transitCalls("datakey")).toHaveLength(3);
  });

  it("a dropped connection is KMS_UNAVAILABLE, retried, bounded", async () => {
    const p = provider({ derived: false, auth: { token: policyToken(), renew: false } });
    vault.fault(/datakey/, { drop: true }, 10);
    const error = await failure(sealWith(p));
    expectTyped(error, "ENVELOPE_KMS_UNAVAILABLE");
    expect(transitCalls("datakey")).toHaveLength(3);
  });

  it("no answer within timeoutMs is KMS_TIMEOUT, retried, bounded", async () => {
    const p = provider({
      derived: false,
      auth: { token: policyToken(), renew: false },
      retry: { ...FAST, timeoutMs: 150 },
    });
    vault.fault(/datakey/, { delayMs: 600 }, 10);
    const started = Date.now();
    const error = await failure(sealWith(p));
    expectTyped(error, "ENVELOPE_KMS_TIMEOUT");
    expect(transitCalls("datakey")).toHaveLength(3);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("403 permission denied (policy) is ACCESS_DENIED and not retried", async () => {
    vault.writePolicy("nothing", {});
    const token = policyToken(["nothing"]);
    const p = provider({ derived: false, auth: { token, renew: false } });
    const error = await failure(sealWith(p));
    expectTyped(error, "ENVELOPE_KMS_ACCESS_DENIED", [token]);
    expect(error.message).toMatch(/policy|token/);
    expect(vault.requests).toHaveLength(1);
  });

  it("a revoked token is ACCESS_DENIED, one call, no token in the error", async () => {
    const token = policyToken();
    const p = provider({ derived: false, auth: { token, renew: false } });
    vault.revokeToken(token);
    const error = await failure(sealWith(p));
    expectTyped(error, "ENVELOPE_KMS_ACCESS_DENIED", [token]);
    expect(vault.requests).toHaveLength(1);
  });

  it("a token lookup refused at start-up says so (and how to skip the lookup)", async () => {
    const token = policyToken();
    vault.revokeToken(token);
    const p = provider({ auth: { token } });
    const error = await failure(p.init());
    expectTyped(error, "ENVELOPE_KMS_ACCESS_DENIED", [token]);
    expect(error.message).toMatch(/lookup-self/);
    expect(vault.calls(/lookup-self/)).toHaveLength(1);
  });

  it("an unknown mount (404 no handler) is KEY_NOT_FOUND", async () => {
    const p = provider({ mount: "nope", auth: { token: vault.rootToken, renew: false } });
    const error = await failure(p.init());
    expectTyped(error, "ENVELOPE_KEY_NOT_FOUND");
    expect(error.message).toMatch(/mount/);
  });

  it("a missing key on datakey (400 encryption key not found) is KEY_NOT_FOUND", async () => {
    const p = provider({
      keyName: "missing",
      derived: false,
      auth: { token: vault.rootToken, renew: false },
    });
    const error = await failure(sealWith(p));
    expectTyped(error, "ENVELOPE_KEY_NOT_FOUND");
    expect(error.message).toContain("missing");
    expect(vault.requests).toHaveLength(1);
  });

  it("README: with only `update`, encrypt under a missing key is a 403 (no key is created)", async () => {
    vault.writePolicy("typo", readmePolicy("transit", "piii"));
    const p = provider({
      keyName: "piii",
      derived: false,
      auth: { token: policyToken(["typo"]), renew: false },
    });
    const error = await failure(p.wrap(Buffer.alloc(32, 7), { context: CONTEXT }));
    expectTyped(error, "ENVELOPE_KMS_ACCESS_DENIED");
    expect(vault.key("piii")).toBeUndefined();
  });

  it("a tampered ciphertext is UNWRAP_FAILED, not retried", async () => {
    const p = provider();
    const envelope = new Envelope({ encrypt: p, cache: false });
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    const parts = decodeEnvelope(sealed);
    const ct = Buffer.from(parts.entries[0]!.wrapped).toString();
    const raw = Buffer.from(ct.slice("vault:v1:".length), "base64");
    raw[20]! ^= 1;
    const tampered = {
      ...parts.entries[0]!,
      wrapped: Buffer.from(`vault:v1:${raw.toString("base64")}`),
    };
    vault.requests.length = 0;
    const error = await failure(p.unwrap(tampered, { context: CONTEXT }));
    expectTyped(error, "ENVELOPE_UNWRAP_FAILED");
    expect(transitCalls("decrypt")).toHaveLength(1);
  });

  it("FINDING 2: a ciphertext of a version this Vault does not have (restored from an older snapshot, lagging replica) is KEY_NOT_FOUND and never says to restore the value", async () => {
    const p = provider();
    const envelope = new Envelope({ encrypt: p, cache: false });
    vault.key("pii")!.latest = 2;
    vault.key("pii")!.versions.set(2, { key: Buffer.alloc(32, 9), createdAt: Date.now() });
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(inspectEnvelope(sealed).entries[0]!.keyRef).toBe("transit/keys/pii@v2");
    // Vault is restored from a snapshot taken before the rotation: it knows only version 1.
    vault.key("pii")!.versions.delete(2);
    vault.key("pii")!.latest = 1;
    vault.requests.length = 0;
    const error = await failure(envelope.decrypt(sealed, { context: CONTEXT }));
    expectTyped(error, "ENVELOPE_KEY_NOT_FOUND");
    expect(error.message).toContain("transit/keys/pii@v2");
    expect(error.message).toMatch(/snapshot|replica/);
    expect(error.message).not.toMatch(/restore the value|corrupted/);
    expect(transitCalls("decrypt")).toHaveLength(1);
  });
});

describe("tokens: expiry, renewal, re-login (README Authentication)", () => {
  function useClock() {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    return (seconds: number) => vi.setSystemTime(Date.now() + seconds * 1000);
  }

  it("token: renewed with renew-self when less than a third of its TTL is left", async () => {
    const advance = useClock();
    const token = policyToken(undefined, { ttl: 30 });
    const p = provider({ auth: { token } });
    const envelope = new Envelope({ encrypt: p, cache: false });
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(vault.calls(/lookup-self/)).toHaveLength(1);
    advance(15);
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(vault.calls(/renew-self/)).toHaveLength(0);
    advance(7); // 8 s of 30 left
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(vault.calls(/renew-self/)).toHaveLength(1);
    advance(25); // past the first lease, within the renewed one
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
  });

  it("token: renew: false skips lookup and renewal; an expired token is then ACCESS_DENIED", async () => {
    const advance = useClock();
    const token = policyToken(undefined, { ttl: 10 });
    const envelope = new Envelope({
      encrypt: provider({ derived: false, auth: { token, renew: false } }),
      cache: false,
    });
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    advance(11);
    const error = await failure(envelope.encrypt(PLAINTEXT, { context: CONTEXT }));
    expectTyped(error, "ENVELOPE_KMS_ACCESS_DENIED", [token]);
    expect(error.message).toMatch(/expired|revoked/);
    expect(vault.calls(/lookup-self|renew-self/)).toHaveLength(0);
  });

  it("AppRole: renews at a third of the lease; logs in again when renewal is capped by max TTL", async () => {
    const advance = useClock();
    vault.addAppRole({
      roleName: "ttl",
      roleId: "ttl-role",
      secretId: "CANARY-SECRET-ID-4",
      policies: ["envelope-pii"],
      tokenTtl: 30,
      tokenMaxTtl: 50,
    });
    const envelope = new Envelope({
      encrypt: provider({
        derived: false,
        auth: { approle: { roleId: "ttl-role", secretId: "CANARY-SECRET-ID-4" } },
      }),
      cache: false,
    });
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(vault.calls(/approle\/login/)).toHaveLength(1);
    advance(22); // 8 s left of 30: renew (max TTL leaves 28 s: a full lease)
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(vault.calls(/renew-self/)).toHaveLength(1);
    expect(vault.calls(/approle\/login/)).toHaveLength(1);
    advance(22); // 8 s left; the max TTL caps renewal at 6 s: log in again
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(vault.calls(/approle\/login/)).toHaveLength(2);
    advance(20);
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
  });

  it("AppRole: a non-renewable token is replaced by a new login before it expires", async () => {
    const advance = useClock();
    vault.addAppRole({
      roleName: "batch",
      roleId: "batch-role",
      secretId: "CANARY-SECRET-ID-5",
      policies: ["envelope-pii"],
      tokenTtl: 30,
      renewable: false,
    });
    const envelope = new Envelope({
      encrypt: provider({
        derived: false,
        auth: { approle: { roleId: "batch-role", secretId: "CANARY-SECRET-ID-5" } },
      }),
      cache: false,
    });
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    advance(22);
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(vault.calls(/approle\/login/)).toHaveLength(2);
    expect(vault.calls(/renew-self/)).toHaveLength(0);
  });

  it("AppRole: a revoked token gets one fresh login and one retry of the call", async () => {
    vault.addAppRole({
      roleName: "rev",
      roleId: "rev-role",
      secretId: "CANARY-SECRET-ID-6",
      policies: ["envelope-pii"],
    });
    const envelope = new Envelope({
      encrypt: provider({
        derived: false,
        auth: { approle: { roleId: "rev-role", secretId: "CANARY-SECRET-ID-6" } },
      }),
      cache: false,
    });
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    for (const t of vault.issuedTokens()) vault.revokeToken(t.id);
    vault.requests.length = 0;
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(vault.calls(/approle\/login/)).toHaveLength(1);
    expect(transitCalls("datakey")).toHaveLength(2);
  });

  it("AppRole: a 403 that a fresh login does not cure is ACCESS_DENIED after one re-login, not more", async () => {
    vault.writePolicy("nothing", {});
    vault.addAppRole({
      roleName: "weak",
      roleId: "weak-role",
      secretId: "CANARY-SECRET-ID-7",
      policies: ["nothing"],
    });
    const envelope = new Envelope({
      encrypt: provider({
        derived: false,
        auth: { approle: { roleId: "weak-role", secretId: "CANARY-SECRET-ID-7" } },
      }),
      cache: false,
    });
    const error = await failure(envelope.encrypt(PLAINTEXT, { context: CONTEXT }));
    expectTyped(error, "ENVELOPE_KMS_ACCESS_DENIED", ["CANARY-SECRET-ID-7"]);
    expect(vault.calls(/approle\/login/)).toHaveLength(2);
    expect(transitCalls("datakey")).toHaveLength(2);
  });

  it("AppRole: a wrong secret_id is ACCESS_DENIED, one login, no secret in the error", async () => {
    vault.addAppRole({
      roleName: "w",
      roleId: "w-role",
      secretId: "CANARY-SECRET-ID-8",
      policies: ["envelope-pii"],
    });
    const p = provider({
      auth: { approle: { roleId: "w-role", secretId: "CANARY-SECRET-ID-wrong" } },
    });
    const error = await failure(p.init());
    expectTyped(error, "ENVELOPE_KMS_ACCESS_DENIED", ["CANARY-SECRET-ID-wrong"]);
    expect(error.message).toMatch(/role_id|secret_id|VAULT_SECRET_ID/);
    expect(vault.calls(/approle\/login/)).toHaveLength(1);
  });

  it("AppRole: a sealed Vault on login is UNAVAILABLE, retried and bounded", async () => {
    vault.addAppRole({
      roleName: "s",
      roleId: "s-role",
      secretId: "CANARY-SECRET-ID-9",
      policies: ["envelope-pii"],
    });
    vault.sealed = true;
    const p = provider({ auth: { approle: { roleId: "s-role", secretId: "CANARY-SECRET-ID-9" } } });
    const error = await failure(p.init());
    expectTyped(error, "ENVELOPE_KMS_UNAVAILABLE", ["CANARY-SECRET-ID-9"]);
    expect(error.message).toMatch(/sealed/i);
    expect(vault.calls(/approle\/login/)).toHaveLength(3);
  });
});

describe("more behaviour under load and migration", () => {
  it("20 concurrent first calls share one key read and one AppRole login", async () => {
    vault.addAppRole({
      roleName: "c",
      roleId: "c-role",
      secretId: "CANARY-SECRET-ID-11",
      policies: ["envelope-pii"],
    });
    const envelope = new Envelope({
      encrypt: provider({
        auth: { approle: { roleId: "c-role", secretId: "CANARY-SECRET-ID-11" } },
      }),
      cache: false,
    });
    await Promise.all(
      Array.from({ length: 20 }, () => envelope.encrypt(PLAINTEXT, { context: CONTEXT })),
    );
    expect(vault.calls(/approle\/login/)).toHaveLength(1);
    expect(vault.calls(/^transit\/keys\/pii$/, "GET")).toHaveLength(1);
    expect(transitCalls("datakey")).toHaveLength(20);
  });

  it("20 concurrent calls after a revocation share one re-login", async () => {
    vault.addAppRole({
      roleName: "c2",
      roleId: "c2-role",
      secretId: "CANARY-SECRET-ID-12",
      policies: ["envelope-pii"],
    });
    const envelope = new Envelope({
      encrypt: provider({
        derived: false,
        auth: { approle: { roleId: "c2-role", secretId: "CANARY-SECRET-ID-12" } },
      }),
      cache: false,
    });
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    for (const t of vault.issuedTokens()) vault.revokeToken(t.id);
    vault.requests.length = 0;
    await Promise.all(
      Array.from({ length: 20 }, () => envelope.encrypt(PLAINTEXT, { context: CONTEXT })),
    );
    expect(vault.calls(/approle\/login/)).toHaveLength(1);
  });

  it("a secret_id with num_uses=1: the re-login after expiry fails with ACCESS_DENIED saying secret IDs can be use-limited", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    vault.addAppRole({
      roleName: "once",
      roleId: "once-role",
      secretId: "CANARY-SECRET-ID-13",
      policies: ["envelope-pii"],
      tokenTtl: 30,
      renewable: false,
      secretIdNumUses: 1,
    });
    const envelope = new Envelope({
      encrypt: provider({
        derived: false,
        auth: { approle: { roleId: "once-role", secretId: "CANARY-SECRET-ID-13" } },
      }),
      cache: false,
    });
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    vi.setSystemTime(Date.now() + 25_000);
    // The re-login fails, but the token in hand is valid for 5 s more: it keeps serving.
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    vi.setSystemTime(Date.now() + 6_000);
    const error = await failure(envelope.encrypt(PLAINTEXT, { context: CONTEXT }));
    expectTyped(error, "ENVELOPE_KMS_ACCESS_DENIED", ["CANARY-SECRET-ID-13"]);
    expect(error.message).toMatch(/number of uses|expire/);
  });

  // FINDING 3: renewal trouble while the current token is still valid.
  it("FINDING 3: token: a failing renew-self is not retried by every request (back-off), and requests go on", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const token = policyToken(undefined, { ttl: 30 });
    const envelope = new Envelope({
      encrypt: provider({ derived: false, auth: { token } }),
      cache: false,
    });
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    vi.setSystemTime(Date.now() + 22_000); // 8 s left of 30: time to renew
    vault.fault(/renew-self/, { status: 500, errors: ["internal error"] }, 100);
    for (let i = 0; i < 10; i++) await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(vault.calls(/renew-self/).length).toBeLessThanOrEqual(2);
    expect(transitCalls("datakey")).toHaveLength(11);
  });

  it("FINDING 3: token: a renew-self that hangs does not fail requests while the token is valid", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const token = policyToken(undefined, { ttl: 30 });
    const envelope = new Envelope({
      encrypt: provider({ derived: false, auth: { token }, retry: { ...FAST, timeoutMs: 300 } }),
      cache: false,
    });
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    vi.setSystemTime(Date.now() + 22_000);
    vault.fault(/renew-self/, { delayMs: 1000 }, 100);
    for (let i = 0; i < 3; i++) await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(vault.calls(/renew-self/).length).toBeLessThanOrEqual(2);
  });

  it("FINDING 3: AppRole: renewal capped and Vault's login failing: the still-valid token keeps serving", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    vault.addAppRole({
      roleName: "cap",
      roleId: "cap-role",
      secretId: "CANARY-SECRET-ID-14",
      policies: ["envelope-pii"],
      tokenTtl: 30,
      tokenMaxTtl: 30,
    });
    const envelope = new Envelope({
      encrypt: provider({
        derived: false,
        auth: { approle: { roleId: "cap-role", secretId: "CANARY-SECRET-ID-14" } },
      }),
      cache: false,
    });
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    vi.setSystemTime(Date.now() + 22_000); // 8 s left; renewal is capped by the max TTL
    vault.fault(/approle\/login/, { status: 500, errors: ["internal error"] }, 100);
    for (let i = 0; i < 5; i++) await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expect(vault.calls(/approle\/login/).length).toBeLessThanOrEqual(3);
    // Once the token has expired, the login failure is the error.
    vi.setSystemTime(Date.now() + 10_000);
    const error = await failure(envelope.encrypt(PLAINTEXT, { context: CONTEXT }));
    expectTyped(error, "ENVELOPE_KMS_UNAVAILABLE", ["CANARY-SECRET-ID-14"]);
    vault.clearFaults();
    await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
  });

  it("rewrap to another Vault key (pii -> pii2) goes through unwrap + wrap and keeps the body", async () => {
    vault.createKey("pii2");
    vault.writePolicy("both", {
      ...readmePolicy("transit", "pii"),
      ...readmePolicy("transit", "pii2"),
    });
    const token = policyToken(["both"]);
    const oldKey = provider({ auth: { token } });
    const newKey = provider({ keyName: "pii2", auth: { token } });
    const envelope = new Envelope({ encrypt: newKey, decrypt: [oldKey], cache: false });
    const sealed = await new Envelope({ encrypt: oldKey }).encrypt(PLAINTEXT, { context: CONTEXT });
    const moved = (await envelope.rewrap(sealed, { context: CONTEXT })) as Buffer;
    expect(inspectEnvelope(moved).entries.map((e) => e.keyRef)).toEqual(["transit/keys/pii2@v1"]);
    expect(
      Buffer.from(decodeEnvelope(moved).body).equals(Buffer.from(decodeEnvelope(sealed).body)),
    ).toBe(true);
    expect(await envelope.decrypt(moved, { context: CONTEXT, as: "text" })).toBe(PLAINTEXT);
  });
});

describe("hostile or odd stored entries", () => {
  async function vaultEncrypt(plaintextB64: string): Promise<string> {
    const res = await fetch(`${vault.address}/v1/transit/encrypt/pii`, {
      method: "POST",
      headers: { "X-Vault-Token": vault.rootToken, "Content-Type": "application/json" },
      body: JSON.stringify({ plaintext: plaintextB64 }),
    });
    return ((await res.json()) as { data: { ciphertext: string } }).data.ciphertext;
  }

  it.each([
    ["an empty data key", ""],
    ["a 16-byte data key", Buffer.alloc(16, 1).toString("base64")],
    ["another 32-byte data key", Buffer.alloc(32, 2).toString("base64")],
  ])(
    "an entry swapped for a valid Vault ciphertext of %s is refused with a typed error",
    async (_, b64) => {
      const envelope = new Envelope({ encrypt: provider(), cache: false });
      const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT, output: "text" });
      const parts = decodeEnvelope(fromText(sealed));
      const ct = await vaultEncrypt(b64);
      const { encodeEnvelope } = await import("@envelope/core");
      const swapped = encodeEnvelope({
        ...parts,
        entries: [{ ...parts.entries[0]!, wrapped: Buffer.from(ct) }],
      });
      const error = await failure(envelope.decrypt(swapped, { context: CONTEXT }));
      expect(error.code).toMatch(/^ENVELOPE_/);
      expect(surfaces(error)).not.toContain(PLAINTEXT);
    },
  );

  it("after trim, versions below min_available_version are KEY_DISABLED", async () => {
    const envelope = new Envelope({ encrypt: provider(), cache: false });
    const v1 = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    const post = (path: string, body: unknown) =>
      fetch(`${vault.address}/v1/transit/keys/pii/${path}`, {
        method: "POST",
        headers: { "X-Vault-Token": vault.rootToken, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await post("rotate", {})).status).toBe(200);
    expect(
      (await post("config", { min_decryption_version: 2, min_encryption_version: 2 })).status,
    ).toBe(200);
    expect((await post("trim", { min_available_version: 2 })).status).toBe(200);
    const error = await failure(envelope.decrypt(v1, { context: CONTEXT }));
    expectTyped(error, "ENVELOPE_KEY_DISABLED");
    // Its advice must not promise that lowering min_decryption_version always works: after
    // trim, Vault refuses to go below min_available_version.
    const lower = await post("config", { min_decryption_version: 1 });
    expect(lower.status).toBe(400);
    expect(error.message).toMatch(/trim/);
  });
});

describe("README: narrower roles", () => {
  it("a writer with datakey/plaintext + encrypt (+ keys read) seals but cannot read back", async () => {
    vault.writePolicy("writer-only", {
      "transit/datakey/plaintext/pii": ["update"],
      "transit/encrypt/pii": ["update"],
      "transit/keys/pii": ["read"],
    });
    const envelope = new Envelope({
      encrypt: provider({ auth: { token: policyToken(["writer-only"]) } }),
      cache: false,
    });
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    expectTyped(
      await failure(envelope.decrypt(sealed, { context: CONTEXT })),
      "ENVELOPE_KMS_ACCESS_DENIED",
    );
  });

  it("FINDING 4: a rewrap job needs rewrap, keys read AND decrypt (the README said only the first two)", async () => {
    const p = provider();
    await p.init();
    const v1 = await new Envelope({ encrypt: p, cache: false }).encrypt(PLAINTEXT, {
      context: CONTEXT,
    });
    await fetch(`${vault.address}/v1/transit/keys/pii/rotate`, {
      method: "POST",
      headers: { "X-Vault-Token": vault.rootToken },
    });
    vault.writePolicy("rewrap-only", {
      "transit/rewrap/pii": ["update"],
      "transit/keys/pii": ["read"],
    });
    const job = provider({ auth: { token: policyToken(["rewrap-only"]) } });
    await job.init();
    const error = await failure(
      new Envelope({ encrypt: job, cache: false }).rewrap(v1, { context: CONTEXT }),
    );
    expectTyped(error, "ENVELOPE_KMS_ACCESS_DENIED");
    expect(vault.calls(/^transit\/rewrap\/pii$/)).toHaveLength(1);
    expect(vault.calls(/^transit\/decrypt\/pii$/)[0]!.status).toBe(403);
    // With decrypt added (and still no datakey / encrypt) the job works.
    vault.writePolicy("rewrap-job", {
      "transit/rewrap/pii": ["update"],
      "transit/keys/pii": ["read"],
      "transit/decrypt/pii": ["update"],
    });
    const fixed = provider({ auth: { token: policyToken(["rewrap-job"]) } });
    await fixed.init();
    const moved = await new Envelope({ encrypt: fixed, cache: false }).rewrap(v1, {
      context: CONTEXT,
    });
    expect(inspectEnvelope(moved).entries[0]!.keyRef).toBe("transit/keys/pii@v2");
    // The README's "Narrower roles" must say so.
    const { readFileSync } = await import("node:fs");
    const readme = readFileSync(
      new URL("../../../packages/vault/README.md", import.meta.url),
      "utf8",
    );
    expect(/a rewrap job needs only `rewrap` and `keys\/<name>` read/.test(readme)).toBe(false);
    expect(/a rewrap job needs `rewrap`, `keys\/<name>` read and `decrypt`/.test(readme)).toBe(
      true,
    );
  });
});

describe("answers Vault would not give (broken proxy, compromised Vault)", () => {
  const ok = (data: unknown) => ({ status: 200, raw: JSON.stringify({ data }) });

  it.each([
    ["an HTML page", { status: 200, raw: "<html>login</html>", contentType: "text/html" }],
    ["no data", { status: 200, raw: "{}" }],
    [
      "a ciphertext without the vault: prefix",
      ok({ ciphertext: "abc", plaintext: Buffer.alloc(32).toString("base64") }),
    ],
    ["a plaintext that is not base64", ok({ ciphertext: "vault:v1:AAAA", plaintext: "%%%" })],
    [
      "a 16-byte data key",
      ok({ ciphertext: "vault:v1:AAAA", plaintext: Buffer.alloc(16, 1).toString("base64") }),
    ],
  ])("datakey answering %s is a typed error and nothing is sealed", async (_, answer) => {
    const envelope = new Envelope({
      encrypt: provider({ derived: false, auth: { token: policyToken(), renew: false } }),
      cache: false,
    });
    vault.fault(/datakey/, answer, 10);
    const error = await failure(envelope.encrypt(PLAINTEXT, { context: CONTEXT }));
    expect(error.code).toMatch(/^ENVELOPE_/);
    expect(surfaces(error)).not.toContain(PLAINTEXT);
  });

  it("decrypt answering another data key is refused by the key commitment (no wrong plaintext)", async () => {
    const envelope = new Envelope({ encrypt: provider(), cache: false });
    const sealed = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    vault.fault(/^transit\/decrypt/, ok({ plaintext: Buffer.alloc(32, 3).toString("base64") }));
    const error = await failure(envelope.decrypt(sealed, { context: CONTEXT }));
    expect(error.code).toMatch(/^ENVELOPE_/);
    expect(surfaces(error)).not.toContain(PLAINTEXT);
  });

  it("rewrap answering a ciphertext of another data key: caught by the verifying decrypt, old entry kept", async () => {
    const p = provider();
    await p.init();
    const envelope = new Envelope({ encrypt: p, cache: false });
    const v1 = await envelope.encrypt(PLAINTEXT, { context: CONTEXT });
    await fetch(`${vault.address}/v1/transit/keys/pii/rotate`, {
      method: "POST",
      headers: { "X-Vault-Token": vault.rootToken },
    });
    await envelope.refreshKeys();
    const res = await fetch(`${vault.address}/v1/transit/encrypt/pii`, {
      method: "POST",
      headers: { "X-Vault-Token": vault.rootToken, "Content-Type": "application/json" },
      body: JSON.stringify({ plaintext: Buffer.alloc(32, 4).toString("base64") }),
    });
    const foreign = ((await res.json()) as { data: { ciphertext: string } }).data.ciphertext;
    expect(foreign).toMatch(/^vault:v2:/);
    vault.fault(/^transit\/rewrap/, ok({ ciphertext: foreign, key_version: 2 }));
    const error = await failure(envelope.rewrap(v1, { context: CONTEXT }));
    expect(error.code).toMatch(/^ENVELOPE_/);
    expect(await envelope.decrypt(v1, { context: CONTEXT, as: "text" })).toBe(PLAINTEXT);
  });
});
