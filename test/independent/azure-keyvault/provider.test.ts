// @envelope/azure-keyvault through its public API (package exports, README usage) against an
// independently written Key Vault + Entra server (./server.ts), with the real
// @azure/keyvault-keys and @azure/identity clients. See README.md beside this file.
import { mkdtempSync, realpathSync, writeFileSync } from "node:fs";
import { Agent } from "node:https";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { format, inspect } from "node:util";
import { azureKeyVaultProvider } from "@envelope/azure-keyvault";
import {
  createEnvelope,
  decodeEnvelope,
  Envelope,
  EnvelopeError,
  encodeEnvelope,
  type ProviderError,
} from "@envelope/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IndependentKeyVault } from "./server.js";

// @azure/identity is the provider package's dependency, not the root's: load that copy.
const fromProvider = createRequire(
  new URL("../../../packages/azure-keyvault/package.json", import.meta.url),
);
const { ClientSecretCredential } = fromProvider(
  "@azure/identity",
) as typeof import("../../../packages/azure-keyvault/node_modules/@azure/identity");

const context = { table: "users", column: "email", id: "42" };
const SECRET_TEXT = "alice@example.com";

let kv: IndependentKeyVault;
let caFile: string;
let agent: Agent;

beforeAll(async () => {
  kv = await new IndependentKeyVault().start();
  const dir = mkdtempSync(join(tmpdir(), "envelope-azure-independent-"));
  caFile = join(dir, "ca.pem");
  writeFileSync(caFile, kv.cert.certPem);
  agent = new Agent({ ca: kv.cert.certPem, keepAlive: false });
});
afterAll(async () => {
  await kv?.stop();
});

/**
 * The real ClientSecretCredential against the test server's Entra endpoints. `agent` (to trust
 * the test CA) is passed through to the identity client's HTTP pipeline at run time, though
 * the credential's option type does not list it.
 */
function entraCredential(
  server: IndependentKeyVault,
  secret = server.clientSecret,
  httpsAgent?: Agent,
  extra: object = {},
) {
  return new ClientSecretCredential(server.tenantId, server.clientId, secret, {
    authorityHost: server.url,
    disableInstanceDiscovery: true,
    agent: httpsAgent ?? new Agent({ ca: server.cert.certPem }),
    ...extra,
  } as ConstructorParameters<typeof ClientSecretCredential>[3]);
}

function credential(secret = kv.clientSecret) {
  return entraCredential(kv, secret, agent);
}

let keyCounter = 0;
function newKey(init: Parameters<IndependentKeyVault["createKey"]>[1] = {}): {
  name: string;
  version: string;
  keyId: string;
} {
  const name = `pii-${++keyCounter}`;
  const version = kv.createKey(name, init);
  return { name, version, keyId: `${kv.url}/keys/${name}` };
}

/** Every string a log or error must never hold: tokens issued, the client secret, the plaintext, data keys sent to wrapkey. */
function secrets(server = kv): string[] {
  const out = [server.clientSecret, SECRET_TEXT, ...server.tokens.keys()];
  for (const r of server.log) {
    if (r.op !== "wrapkey" || !r.body) continue;
    try {
      const v = JSON.parse(r.body).value as string;
      out.push(
        v,
        Buffer.from(v, "base64url").toString("base64"),
        Buffer.from(v, "base64url").toString("hex"),
      );
    } catch {}
  }
  return out.filter((x) => x.length >= 8);
}

function renderings(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let depth = 0; e && depth < 8; depth++) {
    parts.push(String(e), (e as Error).stack ?? "", JSON.stringify(e) ?? "");
    e = (e as Error).cause;
  }
  parts.push(
    inspect(error, { showHidden: true, depth: Number.POSITIVE_INFINITY }),
    format("%o", error),
  );
  return parts.join("\n");
}

/** Awaits a rejection and checks it is a typed Envelope error with `code` that leaks nothing. */
async function typed(promise: Promise<unknown>, code: string, server = kv): Promise<ProviderError> {
  const error = await promise.then(
    () => {
      throw new Error(`expected ${code}, but it resolved`);
    },
    (e: unknown) => e,
  );
  expect(EnvelopeError.isInstance(error), String(error)).toBe(true);
  expect((error as EnvelopeError).code, (error as Error).message).toBe(code);
  const text = renderings(error);
  for (const s of secrets(server)) expect(text).not.toContain(s);
  expect(text).not.toMatch(/Bearer (?!authorization=)[A-Za-z0-9._-]{8,}/);
  return error as ProviderError;
}

function provider(keyId: string, extra: Partial<Parameters<typeof azureKeyVaultProvider>[0]> = {}) {
  return azureKeyVaultProvider({
    keyId,
    credential: credential(),
    caFile,
    disableChallengeResourceVerification: true,
    ...extra,
  });
}

const FAST = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 2000 };

describe("round trips", () => {
  it("encrypts and decrypts through the README's provider object (local wrap, RSA-OAEP-256)", async () => {
    const { keyId, name, version } = newKey();
    const p = azureKeyVaultProvider({
      keyId,
      credential: credential(),
      caFile,
      disableChallengeResourceVerification: true,
    });
    const envelope = new Envelope({ encrypt: p });
    const before = kv.log.length;
    const sealed = await envelope.encrypt(SECRET_TEXT, { context, output: "text" });
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
    expect(p.keyRef).toBe(`${kv.url}/keys/${name}/${version}`);
    // Local wrap: encrypt read the key and wrapped in-process; decrypt sent one unwrapkey.
    const mine = kv.log.slice(before).filter((r) => r.path.includes(`/keys/${name}`));
    expect(mine.filter((r) => r.op === "wrapkey")).toHaveLength(0);
    expect(mine.filter((r) => r.op === "unwrapkey" && r.status === 200)).toHaveLength(1);
    const unwrap = mine.find((r) => r.op === "unwrapkey" && r.status === 200)!;
    expect(unwrap.path).toBe(`/keys/${name}/${version}/unwrapkey`);
    expect(JSON.parse(unwrap.body).alg).toBe("RSA-OAEP-256");
    for (const r of mine) expect(r.apiVersion).toBe("7.6");
    // Another row's context fails with the core's one decryption code.
    await typed(
      envelope.decrypt(sealed, { context: { ...context, id: "43" } }),
      "ENVELOPE_DECRYPT_FAILED",
    );
  });

  it.each([
    ["RSA-OAEP-256", { localWrap: false }],
    ["RSA-OAEP", { localWrap: false, algorithm: "RSA-OAEP" as const }],
    ["RSA-OAEP", { algorithm: "RSA-OAEP" as const }],
  ])("round-trips with %s (%o), Key Vault unwrapping what was wrapped", async (alg, extra) => {
    const { keyId, name } = newKey({ size: 3072 });
    const envelope = new Envelope({ encrypt: provider(keyId, extra) });
    const before = kv.log.length;
    const sealed = await envelope.encrypt(Buffer.from(SECRET_TEXT), { context });
    expect((await envelope.decrypt(sealed, { context })).toString()).toBe(SECRET_TEXT);
    const mine = kv.log
      .slice(before)
      .filter((r) => r.path.includes(`/keys/${name}/`) && r.status === 200);
    const wraps = mine.filter((r) => r.op === "wrapkey");
    expect(wraps).toHaveLength((extra as { localWrap?: boolean }).localWrap === false ? 1 : 0);
    for (const w of wraps) expect(JSON.parse(w.body).alg).toBe(alg);
    const unwraps = mine.filter((r) => r.op === "unwrapkey");
    expect(unwraps).toHaveLength(1);
    expect(JSON.parse(unwraps[0]!.body).alg).toBe(alg);
    // A 3072-bit key: the wrapped data key Key Vault unwrapped is 384 bytes.
    expect(Buffer.from(JSON.parse(unwraps[0]!.body).value, "base64url")).toHaveLength(384);
  });

  it("builds the provider from a config object through createEnvelope, with the CA and challenge setting from the documented env variables", async () => {
    const { name, version } = newKey();
    const envelope = await createEnvelope(
      {
        encrypt: {
          provider: "azure-kv",
          keyId: `azure-kv://localhost:${kv.port}/keys/${name}`,
          credential: credential(),
        },
      },
      {
        ENVELOPE_AZURE_KV_CA_FILE: caFile,
        ENVELOPE_AZURE_KV_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: "true",
      },
    );
    const sealed = await envelope.encrypt(SECRET_TEXT, { context, output: "text" });
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
    expect(envelope.describe().encrypt.join(" ")).toContain(`/keys/${name}`);
    expect(JSON.stringify(envelope.inspect(sealed))).toContain(version);
  });

  it("without the CA, the vault's self-signed certificate is refused with a typed error", async () => {
    const { keyId } = newKey();
    const p = azureKeyVaultProvider({
      keyId,
      credential: credential(),
      disableChallengeResourceVerification: true,
      retry: FAST,
    });
    const e = await typed(
      new Envelope({ encrypt: p }).encrypt(SECRET_TEXT, { context }),
      "ENVELOPE_KMS_ERROR",
    );
    expect(e.message).toMatch(/TLS/);
  });
});

describe("oct-HSM keys (Managed HSM, A256KW)", () => {
  let hsm: IndependentKeyVault;
  let hsmCa: string;
  beforeAll(async () => {
    hsm = await new IndependentKeyVault({ challenge: "hsm" }).start();
    hsmCa = join(mkdtempSync(join(tmpdir(), "envelope-azure-hsm-")), "ca.pem");
    writeFileSync(hsmCa, hsm.cert.certPem);
  });
  afterAll(() => hsm.stop());

  it("wraps and unwraps with Key Vault's A256KW, requesting a token for the Managed HSM resource", async () => {
    hsm.createKey("pii-aes", { kty: "oct-HSM", keyOps: ["wrapKey", "unwrapKey"] });
    const cred = entraCredential(hsm);
    const p = azureKeyVaultProvider({
      keyId: `azure-kv://localhost:${hsm.port}/keys/pii-aes`,
      credential: cred,
      caFile: hsmCa,
      disableChallengeResourceVerification: true,
    });
    const envelope = new Envelope({ encrypt: p });
    const sealed = await envelope.encrypt(SECRET_TEXT, { context });
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
    const wrap = hsm.log.find((r) => r.op === "wrapkey" && r.status === 200)!;
    expect(JSON.parse(wrap.body).alg).toBe("A256KW");
    const unwrap = hsm.log.find((r) => r.op === "unwrapkey" && r.status === 200)!;
    expect(Buffer.from(JSON.parse(unwrap.body).value, "base64url")).toHaveLength(40);
    expect(
      [...hsm.tokens.values()].every((t) => t.audience === "https://managedhsm.azure.net"),
    ).toBe(true);
    // An RSA algorithm configured for an oct-HSM key is refused before anything is wrapped.
    const wrong = azureKeyVaultProvider({
      keyId: `azure-kv://localhost:${hsm.port}/keys/pii-aes`,
      credential: cred,
      caFile: hsmCa,
      disableChallengeResourceVerification: true,
      algorithm: "RSA-OAEP-256",
    });
    await typed(
      new Envelope({ encrypt: wrong }).encrypt(SECRET_TEXT, { context }),
      "ENVELOPE_BAD_CONFIG",
      hsm,
    );
  });
});

describe("the bearer challenge and the token endpoint", () => {
  it("sends the first request without token or body, gets the 401 challenge, fetches one token for https://vault.azure.net/.default, and reuses it", async () => {
    const { keyId, name } = newKey();
    const p = provider(keyId, { localWrap: false });
    const envelope = new Envelope({ encrypt: p, cache: false });
    const tokensBefore = kv.tokenRequests;
    const before = kv.log.length;
    const sealed = await envelope.encrypt(SECRET_TEXT, { context });
    for (let i = 0; i < 3; i++)
      expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
    const mine = kv.log.slice(before);
    const vault = mine.filter((r) => r.path.startsWith(`/keys/${name}`));
    // Each SDK client challenges once: the KeyClient (get) and the CryptographyClient (wrap/unwrap).
    const challenged = vault.filter((r) => r.status === 401);
    expect(challenged.length).toBeGreaterThanOrEqual(1);
    expect(challenged.length).toBeLessThanOrEqual(2);
    for (const r of challenged) {
      expect(r.authorized).toBe(false);
      expect(r.body).toBe(""); // the SDK withholds the body (the data key) until the challenge is validated
    }
    expect(vault[0]!.status).toBe(401);
    expect(vault.filter((r) => r.op === "unwrapkey" && r.status === 200)).toHaveLength(3);
    expect(kv.tokenRequests - tokensBefore).toBe(1);
    const token = mine.find((r) => r.op === "token")!;
    expect(token.path).toBe(`/${kv.tenantId}/oauth2/v2.0/token`);
    expect([...kv.tokens.values()].at(-1)!.audience).toBe("https://vault.azure.net");
  });

  it("a cold start under load asks Entra for one token, not one per concurrent request", async () => {
    const { keyId } = newKey();
    const writer = new Envelope({ encrypt: provider(keyId) });
    const sealed = await Promise.all(
      Array.from({ length: 20 }, () => writer.encrypt(SECRET_TEXT, { context })),
    );
    const reader = new Envelope({ encrypt: provider(keyId), cache: false });
    const tokens = kv.tokenRequests;
    const opened = await Promise.all(sealed.map((v) => reader.decrypt(v, { context, as: "text" })));
    expect(opened.every((t) => t === SECRET_TEXT)).toBe(true);
    expect(kv.tokenRequests - tokens).toBe(1);
  });

  it("accepts the scope= form of the challenge", async () => {
    const scoped = await new IndependentKeyVault({ challenge: "scope" }).start();
    try {
      scoped.createKey("k");
      const dir = mkdtempSync(join(tmpdir(), "envelope-azure-scope-"));
      writeFileSync(join(dir, "ca.pem"), scoped.cert.certPem);
      const p = azureKeyVaultProvider({
        keyId: `${scoped.url}/keys/k`,
        credential: entraCredential(scoped),
        caFile: join(dir, "ca.pem"),
        disableChallengeResourceVerification: true,
      });
      const envelope = new Envelope({ encrypt: p });
      const sealed = await envelope.encrypt(SECRET_TEXT, { context });
      expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
      expect(scoped.count("get", { status: 401 })).toBe(1);
    } finally {
      await scoped.stop();
    }
  });

  describe("at a *.vault.azure.net name (resolved to 127.0.0.1 by the test's agent), with challenge verification on", () => {
    const lookup = (_host: string, options: unknown, cb: (...args: unknown[]) => void) => {
      if (typeof options === "object" && options !== null && (options as { all?: boolean }).all)
        cb(null, [{ address: "127.0.0.1", family: 4 }]);
      else cb(null, "127.0.0.1", 4);
    };
    const pinned = (server: IndependentKeyVault) =>
      new Agent({ ca: server.cert.certPem, lookup: lookup as never });

    it("works without disableChallengeResourceVerification when the challenge names https://vault.azure.net", async () => {
      const { name } = newKey();
      const p = azureKeyVaultProvider({
        keyId: `https://independent.vault.azure.net:${kv.port}/keys/${name}`,
        credential: credential(),
        clientOptions: { agent: pinned(kv) },
      });
      const envelope = new Envelope({ encrypt: p });
      const sealed = await envelope.encrypt(SECRET_TEXT, { context });
      expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
      expect(p.keyRef).toMatch(
        new RegExp(
          `^https://independent\\.vault\\.azure\\.net:${kv.port}/keys/${name}/[0-9a-f]{32}$`,
        ),
      );
    });

    it("refuses a challenge that names another resource: no token is fetched or sent", async () => {
      const rogue = await new IndependentKeyVault({
        challengeResource: "https://attacker.example",
      }).start();
      try {
        rogue.createKey("k");
        const p = azureKeyVaultProvider({
          keyId: `https://independent.vault.azure.net:${rogue.port}/keys/k`,
          credential: entraCredential(rogue, rogue.clientSecret, pinned(rogue)),
          clientOptions: { agent: pinned(rogue) },
          retry: FAST,
        });
        const e = await typed(
          new Envelope({ encrypt: p }).encrypt(SECRET_TEXT, { context }),
          "ENVELOPE_KMS_ERROR",
          rogue,
        );
        expect(e.message).toMatch(/challenge/i);
        expect(rogue.tokenRequests).toBe(0);
        expect(rogue.log.filter((r) => r.authorized)).toHaveLength(0);
      } finally {
        await rogue.stop();
      }
    });

    it("refuses localhost (outside *.vault.azure.net) unless disableChallengeResourceVerification is set", async () => {
      const { keyId } = newKey();
      const tokens = kv.tokenRequests;
      const p = azureKeyVaultProvider({ keyId, credential: credential(), caFile, retry: FAST });
      const e = await typed(
        new Envelope({ encrypt: p }).encrypt(SECRET_TEXT, { context }),
        "ENVELOPE_KMS_ERROR",
      );
      expect(e.message).toMatch(/challenge/i);
      expect(kv.tokenRequests).toBe(tokens);
    });
  });

  it("a vault in another tenant than the credential's is ENVELOPE_KMS_ACCESS_DENIED naming the tenant problem; no token is requested", async () => {
    const foreign = await new IndependentKeyVault({
      challengeTenant: "72f988bf-86f1-41af-91ab-2d7cd011db47",
    }).start();
    try {
      foreign.createKey("k");
      const dir = mkdtempSync(join(tmpdir(), "envelope-azure-tenant-"));
      writeFileSync(join(dir, "ca.pem"), foreign.cert.certPem);
      const p = azureKeyVaultProvider({
        keyId: `${foreign.url}/keys/k`,
        credential: entraCredential(foreign),
        caFile: join(dir, "ca.pem"),
        disableChallengeResourceVerification: true,
        retry: FAST,
      });
      const e = await typed(
        new Envelope({ encrypt: p }).encrypt(SECRET_TEXT, { context }),
        "ENVELOPE_KMS_ACCESS_DENIED",
        foreign,
      );
      expect(e.message).toMatch(/tenant/i);
      expect(foreign.tokenRequests).toBe(0);
    } finally {
      await foreign.stop();
    }
  });

  it("a wrong client secret (AADSTS7000215) is ENVELOPE_KMS_ACCESS_DENIED, not retried, and the secret appears nowhere", async () => {
    const { keyId } = newKey();
    const wrongSecret = `wrong-secret-${"x".repeat(20)}`;
    const p = azureKeyVaultProvider({
      keyId,
      credential: credential(wrongSecret),
      caFile,
      disableChallengeResourceVerification: true,
      retry: FAST,
    });
    const tokens = kv.tokenRequests;
    const e = await typed(
      new Envelope({ encrypt: p }).encrypt(SECRET_TEXT, { context }),
      "ENVELOPE_KMS_ACCESS_DENIED",
    );
    expect(renderings(e)).not.toContain(wrongSecret);
    expect(e.message).toMatch(/credential|token/i);
    expect(kv.tokenRequests - tokens).toBe(1);
  });

  it("a token the vault rejects (wrong audience) is ENVELOPE_KMS_ACCESS_DENIED", async () => {
    const { keyId } = newKey();
    const forged = kv.issueToken("https://storage.azure.com");
    const p = provider(keyId, {
      credential: {
        getToken: async () => ({ token: forged, expiresOnTimestamp: Date.now() + 3_600_000 }),
      },
      retry: FAST,
    });
    const e = await typed(
      new Envelope({ encrypt: p }).encrypt(SECRET_TEXT, { context }),
      "ENVELOPE_KMS_ACCESS_DENIED",
    );
    expect(e.message).toContain("401");
  });
});

describe("Key Vault errors map to typed errors", () => {
  async function sealedUnder(extra: Partial<Parameters<typeof azureKeyVaultProvider>[0]> = {}) {
    const key = newKey();
    const p = provider(key.keyId, { retry: FAST, ...extra });
    const envelope = new Envelope({ encrypt: p, cache: false });
    const sealed = await envelope.encrypt(SECRET_TEXT, { context });
    return { ...key, p, envelope, sealed };
  }

  it.each([
    [
      "403 RBAC on unwrap",
      "ENVELOPE_KMS_ACCESS_DENIED",
      1,
      {
        kind: "status",
        status: 403,
        code: "Forbidden",
        message: "Caller is not authorized to perform action on resource.",
        inner: "ForbiddenByRbac",
      },
    ],
    [
      "404 KeyNotFound",
      "ENVELOPE_KEY_NOT_FOUND",
      1,
      {
        kind: "status",
        status: 404,
        code: "KeyNotFound",
        message: "A key with (name/id) x was not found in this key vault.",
      },
    ],
    [
      // The vault asks for 30 s, more than retry.maxDelayMs: given up at once (an earlier
      // retry would only be refused), the wait named in the error.
      "429 with Retry-After: 30",
      "ENVELOPE_KMS_THROTTLED",
      1,
      {
        kind: "status",
        status: 429,
        code: "Throttled",
        message: "Request was not processed because too many requests were received.",
        retryAfter: "30",
      },
    ],
    [
      "500",
      "ENVELOPE_KMS_UNAVAILABLE",
      3,
      {
        kind: "status",
        status: 500,
        code: "InternalServerError",
        message: "Internal server error.",
      },
    ],
    [
      "503",
      "ENVELOPE_KMS_UNAVAILABLE",
      3,
      {
        kind: "status",
        status: 503,
        code: "ServiceUnavailable",
        message: "The service is unavailable.",
      },
    ],
    ["a dropped connection", "ENVELOPE_KMS_UNAVAILABLE", 3, { kind: "drop" }],
  ] as const)(
    "%s → %s after %i request(s), quickly and without leaking",
    async (_label, code, requests, fault) => {
      const { envelope, sealed, name, version } = await sealedUnder();
      kv.fail("unwrapkey", fault as never, 10);
      const before = kv.log.length;
      const started = Date.now();
      const e = await typed(envelope.decrypt(sealed, { context }), code);
      kv.faults.length = 0;
      // Bounded: at most attempts requests reach the vault, and a Retry-After longer than
      // maxDelayMs (30 s) is not waited for.
      expect(Date.now() - started).toBeLessThan(5000);
      const sent = kv.log.slice(before).filter((r) => r.op === "unwrapkey" && r.authorized);
      expect(sent).toHaveLength(requests);
      expect(e.message).toContain(`/keys/${name}/${version}`);
      expect(e.message).toMatch(/azure-kv/);
      // The value still opens once the vault recovers.
      expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
    },
  );

  it("a hanging vault is ENVELOPE_KMS_TIMEOUT after attempts × timeoutMs", async () => {
    const { envelope, sealed } = await sealedUnder({
      retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10, timeoutMs: 300 },
    });
    kv.fail("unwrapkey", { kind: "hang" }, 2);
    const started = Date.now();
    await typed(envelope.decrypt(sealed, { context }), "ENVELOPE_KMS_TIMEOUT");
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("one transient 503 / 429 is retried and the call succeeds, after the 429's Retry-After", async () => {
    // maxDelayMs above the vault's Retry-After (1 s), so that the wait is taken.
    const { envelope, sealed } = await sealedUnder({ retry: { ...FAST, maxDelayMs: 1500 } });
    kv.fail("unwrapkey", {
      kind: "status",
      status: 429,
      code: "Throttled",
      message: "slow down",
      retryAfter: "1",
    });
    kv.fail("unwrapkey", {
      kind: "status",
      status: 503,
      code: "ServiceUnavailable",
      message: "busy",
    });
    const before = kv.log.length;
    const started = Date.now();
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(kv.log.slice(before).filter((r) => r.op === "unwrapkey" && r.authorized)).toHaveLength(
      3,
    );
  });

  it("a disabled key version refuses unwrap: ENVELOPE_KEY_DISABLED, and re-enabling it restores access", async () => {
    const { envelope, sealed, name, version } = await sealedUnder();
    kv.update(name, version, { enabled: false });
    const e = await typed(envelope.decrypt(sealed, { context }), "ENVELOPE_KEY_DISABLED");
    expect(e.message).toMatch(/enable/i);
    kv.update(name, version, { enabled: true });
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
  });

  it("key_ops without unwrapKey: Key Vault's 403 KeyOperationForbidden is ENVELOPE_KMS_ACCESS_DENIED naming the permitted operations", async () => {
    const { envelope, sealed, name, version } = await sealedUnder();
    kv.update(name, version, { keyOps: ["wrapKey", "encrypt"] });
    const e = await typed(envelope.decrypt(sealed, { context }), "ENVELOPE_KMS_ACCESS_DENIED");
    expect(e.message).toMatch(/permitted operations|key_ops/i);
  });

  it("a deleted key is ENVELOPE_KEY_NOT_FOUND on decrypt and on encrypt", async () => {
    const { envelope, sealed, name } = await sealedUnder();
    kv.deleteKey(name);
    await typed(envelope.decrypt(sealed, { context }), "ENVELOPE_KEY_NOT_FOUND");
    const fresh = new Envelope({ encrypt: provider(`${kv.url}/keys/${name}`, { retry: FAST }) });
    await typed(fresh.encrypt(SECRET_TEXT, { context }), "ENVELOPE_KEY_NOT_FOUND");
  });

  it("a corrupted wrapped key that Key Vault cannot unwrap (400) is a typed failure, not a crash or wrong plaintext", async () => {
    const { envelope, sealed } = await sealedUnder();
    const parts = decodeEnvelope(sealed);
    const wrapped = Buffer.from(parts.entries[0]!.wrapped);
    wrapped[wrapped.length - 1]! ^= 0x01;
    const tampered = encodeEnvelope({ ...parts, entries: [{ ...parts.entries[0]!, wrapped }] });
    const error = await envelope.decrypt(tampered, { context }).catch((e: unknown) => e);
    expect(EnvelopeError.isInstance(error)).toBe(true);
    expect(["ENVELOPE_UNWRAP_FAILED", "ENVELOPE_DECRYPT_FAILED"]).toContain(
      (error as EnvelopeError).code,
    );
    for (const s of secrets()) expect(renderings(error)).not.toContain(s);
  });

  it("every encrypt-side refusal leaves nothing written: encrypt rejects and no value comes back", async () => {
    // key_ops allowing neither wrapKey nor encrypt: no local wrap; Key Vault's wrapKey refuses.
    const { keyId, name } = newKey({ keyOps: ["unwrapKey", "decrypt"] });
    const p = provider(keyId, { retry: FAST });
    const e = await typed(
      new Envelope({ encrypt: p }).encrypt(SECRET_TEXT, { context }),
      "ENVELOPE_KMS_ACCESS_DENIED",
    );
    expect(e.message).toContain(name);
    expect(
      kv.log.filter((r) => r.op === "wrapkey" && r.path.includes(`/keys/${name}/`) && r.authorized),
    ).toHaveLength(1);
  });
});

describe("key validity (nbf / exp) and disabled versions on encrypt", () => {
  const now = () => Math.floor(Date.now() / 1000);

  it("an expired key still opens old data (Key Vault does not crypto-lock unwrap)", async () => {
    const { keyId, name, version } = newKey();
    const envelope = new Envelope({ encrypt: provider(keyId), cache: false });
    const sealed = await envelope.encrypt(SECRET_TEXT, { context });
    kv.update(name, version, { exp: now() - 60 });
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
  });

  it.each([
    ["expired (exp in the past)", () => ({ exp: now() - 60 }), /expire/i],
    [
      "not yet valid (nbf in the future)",
      () => ({ nbf: now() + 3600 }),
      /not (yet )?valid|before|nbf|activation/i,
    ],
  ])(
    "a key version that is %s refuses new wraps with a typed error that says so",
    async (_label, attrs, says) => {
      const { keyId, name, version } = newKey();
      kv.update(name, version, attrs());
      const p = provider(keyId, { retry: FAST });
      const e = await typed(
        new Envelope({ encrypt: p }).encrypt(SECRET_TEXT, { context }),
        "ENVELOPE_KEY_DISABLED",
      );
      expect(e.message).toMatch(says);
      expect(e.message).not.toMatch(/Grant the caller/);
    },
  );

  it("a disabled latest version: encrypt refuses with ENVELOPE_KEY_DISABLED and nothing is wrapped under it", async () => {
    const { keyId, name, version } = newKey();
    kv.update(name, version, { enabled: false });
    const p = provider(keyId, { localWrap: false, retry: FAST });
    const e = await typed(
      new Envelope({ encrypt: p }).encrypt(SECRET_TEXT, { context }),
      "ENVELOPE_KEY_DISABLED",
    );
    expect(e.message).toContain(version);
    expect(
      kv.log.filter((r) => r.op === "wrapkey" && r.path.includes(`/keys/${name}/`)),
    ).toHaveLength(0);
  });
});

describe("key_ops", () => {
  it.each([
    ["encrypt/decrypt only (no wrapKey/unwrapKey)", ["encrypt", "decrypt", "sign", "verify"], true],
    ["wrapKey only (no unwrapKey)", ["wrapKey"], true],
    ["wrapKey only (no unwrapKey), remote wrap", ["wrapKey"], false],
  ])(
    "a key whose key_ops are %s is refused on encrypt: Key Vault would refuse unwrapKey, so the value could never be read",
    async (_label, keyOps, localWrap) => {
      const { keyId, name } = newKey({ keyOps });
      const envelope = new Envelope({
        encrypt: provider(keyId, { localWrap, retry: FAST }),
        cache: false,
      });
      const result = await envelope.encrypt(SECRET_TEXT, { context }).then(
        async (sealed) => {
          // What the code before did: the value is written, and reading it back fails.
          const read = await envelope.decrypt(sealed, { context }).catch((e: unknown) => e);
          return `encrypt succeeded; decrypt then gave ${(read as EnvelopeError).code ?? "plaintext"}`;
        },
        (e: unknown) => e,
      );
      expect(EnvelopeError.isInstance(result), String(result)).toBe(true);
      const e = await typed(Promise.reject(result), "ENVELOPE_BAD_KEY");
      expect(e.message).toContain(name);
      expect(e.message).toMatch(/unwrapKey/);
      expect(
        kv.log.filter(
          (r) => r.op === "wrapkey" && r.path.includes(`/keys/${name}/`) && r.authorized,
        ),
      ).toHaveLength(0);
    },
  );
});

describe("rotation to a new key version", () => {
  it("unversioned keyId: keeps the cached version until refreshKeys(), then wraps under the new one; old data opens; rewrap moves it with the body unchanged", async () => {
    const { keyId, name, version: v1 } = newKey();
    const p = provider(keyId);
    const envelope = new Envelope({ encrypt: p, cache: false });
    const old = await envelope.encrypt(SECRET_TEXT, { context });
    expect(p.keyRef).toBe(`${kv.url}/keys/${name}/${v1}`);

    const v2 = kv.rotate(name);
    const stillOld = await envelope.encrypt(SECRET_TEXT, { context });
    expect(decodeEnvelope(stillOld).entries[0]!.keyRef).toBe(`${kv.url}/keys/${name}/${v1}`);

    await envelope.refreshKeys();
    expect(p.keyRef).toBe(`${kv.url}/keys/${name}/${v2}`);
    const fresh = await envelope.encrypt(SECRET_TEXT, { context });
    expect(decodeEnvelope(fresh).entries[0]!.keyRef).toBe(`${kv.url}/keys/${name}/${v2}`);

    // Old data opens with one unwrapkey on exactly its own version.
    const before = kv.log.length;
    expect(await envelope.decrypt(old, { context, as: "text" })).toBe(SECRET_TEXT);
    const unwraps = kv.log.slice(before).filter((r) => r.op === "unwrapkey" && r.status === 200);
    expect(unwraps.map((r) => r.path)).toEqual([`/keys/${name}/${v1}/unwrapkey`]);

    // Rewrap: new version, same ciphertext body.
    const moved = await envelope.rewrap(old, { context });
    const a = decodeEnvelope(old);
    const b = decodeEnvelope(moved);
    expect(b.entries.map((e) => e.keyRef)).toEqual([`${kv.url}/keys/${name}/${v2}`]);
    expect(Buffer.from(b.body).equals(Buffer.from(a.body))).toBe(true);
    expect(await envelope.decrypt(moved, { context, as: "text" })).toBe(SECRET_TEXT);

    // Rewrap of a value already on the current version changes nothing and calls nothing.
    const calls = kv.log.length;
    const same = await envelope.rewrap(moved, { context });
    expect(Buffer.from(same).equals(Buffer.from(moved))).toBe(true);
    expect(kv.log.length).toBe(calls);

    // After every value is moved, disabling v1 only affects what was not moved.
    kv.update(name, v1, { enabled: false });
    expect(await envelope.decrypt(moved, { context, as: "text" })).toBe(SECRET_TEXT);
    await typed(envelope.decrypt(stillOld, { context }), "ENVELOPE_KEY_DISABLED");
  });

  it("keyRefreshMs: 0 picks a rotation up on the next encrypt", async () => {
    const { keyId, name } = newKey();
    const p = provider(keyId, { keyRefreshMs: 0 });
    const envelope = new Envelope({ encrypt: p });
    await envelope.encrypt(SECRET_TEXT, { context });
    const v2 = kv.rotate(name);
    const sealed = await envelope.encrypt(SECRET_TEXT, { context });
    expect(decodeEnvelope(sealed).entries[0]!.keyRef).toBe(`${kv.url}/keys/${name}/${v2}`);
  });

  it("a pinned version keeps wrapping under that version after a rotation and a refresh", async () => {
    const { name, version: v1 } = newKey();
    const p = provider(`${kv.url}/keys/${name}/${v1}`);
    const envelope = new Envelope({ encrypt: p });
    kv.rotate(name);
    await envelope.refreshKeys();
    const sealed = await envelope.encrypt(SECRET_TEXT, { context });
    expect(decodeEnvelope(sealed).entries[0]!.keyRef).toBe(`${kv.url}/keys/${name}/${v1}`);
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
    const before = kv.log.length;
    await envelope.decrypt(await envelope.encrypt(SECRET_TEXT, { context }), { context });
    // Pinned: the key is read at /keys/<name>/<v1>, never the latest.
    for (const r of kv.log.slice(before).filter((x) => x.op === "get"))
      expect(r.path).toBe(`/keys/${name}/${v1}`);
  });

  it("refreshKeys() rejects with the typed error while the vault cannot be read; the periodic re-read keeps the last good version", async () => {
    const { keyId, name, version } = newKey();
    const p = provider(keyId, { keyRefreshMs: 0, retry: FAST });
    const envelope = new Envelope({ encrypt: p });
    await envelope.encrypt(SECRET_TEXT, { context });
    kv.fail("get", { kind: "status", status: 503, code: "ServiceUnavailable", message: "busy" }, 6);
    const sealed = await envelope.encrypt(SECRET_TEXT, { context });
    expect(decodeEnvelope(sealed).entries[0]!.keyRef).toBe(`${kv.url}/keys/${name}/${version}`);
    kv.faults.length = 0;
    kv.fail("get", { kind: "status", status: 503, code: "ServiceUnavailable", message: "busy" }, 3);
    await typed(envelope.refreshKeys(), "ENVELOPE_KMS_UNAVAILABLE");
    kv.faults.length = 0;
  });

  it("moves data to another key name with decryptKeys; an entry naming a host or key not configured is refused before any request", async () => {
    const oldKey = newKey();
    const newer = newKey();
    const before = new Envelope({ encrypt: provider(oldKey.keyId) });
    const sealed = await before.encrypt(SECRET_TEXT, { context });
    const after = new Envelope({
      encrypt: provider(newer.keyId, { decryptKeys: [oldKey.keyId] }),
      cache: false,
    });
    expect(await after.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
    const moved = await after.rewrap(sealed, { context });
    expect(decodeEnvelope(moved).entries[0]!.keyRef).toBe(
      `${kv.url}/keys/${newer.name}/${newer.version}`,
    );

    // Not configured: no token or request goes to the host the stored entry names.
    const stranger = new Envelope({
      encrypt: provider(newer.keyId, { retry: FAST }),
      cache: false,
    });
    const requests = kv.log.length;
    const e = await stranger.decrypt(sealed, { context }).catch((x: unknown) => x);
    expect(EnvelopeError.isInstance(e)).toBe(true);
    expect(
      kv.log.slice(requests).filter((r) => r.path.includes(`/keys/${oldKey.name}/`)),
    ).toHaveLength(0);
  });
});

describe("readiness: envelope.check()", () => {
  it("reports ok after wrapping and unwrapping a canary with the vault", async () => {
    const { keyId, name } = newKey();
    const envelope = new Envelope({ encrypt: provider(keyId) });
    const before = kv.log.length;
    const report = await envelope.check();
    expect(report.ok).toBe(true);
    expect(report.providers).toHaveLength(1);
    expect(report.providers[0]!.status).toBe("ok");
    expect(report.providers[0]!.keyRef).toContain(`/keys/${name}`);
    expect(
      kv.log.slice(before).filter((r) => r.op === "unwrapkey" && r.status === 200),
    ).toHaveLength(1);
  });

  it.each([
    [
      "RBAC denies unwrap",
      (_n: string) =>
        kv.fail("unwrapkey", {
          kind: "status",
          status: 403,
          code: "Forbidden",
          message: "Caller is not authorized to perform action on resource.",
          inner: "ForbiddenByRbac",
        }),
      "ENVELOPE_KMS_ACCESS_DENIED",
      void 0,
    ],
    [
      "the vault is down",
      () =>
        kv.fail(
          "get",
          { kind: "status", status: 503, code: "ServiceUnavailable", message: "busy" },
          3,
        ),
      "ENVELOPE_KMS_UNAVAILABLE",
      void 0,
    ],
    ["the key is gone", (n: string) => kv.deleteKey(n), "ENVELOPE_KEY_NOT_FOUND", void 0],
  ])(
    "reports failed when %s, with the stable code and no secret",
    async (_label, breakIt, code) => {
      const { keyId, name } = newKey();
      const envelope = new Envelope({ encrypt: provider(keyId, { retry: FAST }) });
      breakIt(name);
      const report = await envelope.check({ timeoutMs: 5000 });
      kv.faults.length = 0;
      expect(report.ok).toBe(false);
      expect(report.providers[0]!.status).toBe("failed");
      expect(report.providers[0]!.error?.code).toBe(code);
      const text = JSON.stringify(report);
      for (const s of secrets()) expect(text).not.toContain(s);
    },
  );
});

describe("the Entra token endpoint failing", () => {
  it.each([
    [503, "temporarily_unavailable"],
    [429, "temporarily_unavailable"],
  ])(
    "Entra answering %i is a transient, retried failure (%s), not 'access denied'",
    async (status, aadError) => {
      const { keyId } = newKey();
      // The credential's own HTTP retries off, so each provider attempt is one token request.
      const fresh = entraCredential(kv, kv.clientSecret, agent, {
        retryOptions: { maxRetries: 0 },
      });
      const p = provider(keyId, { credential: fresh, retry: FAST });
      kv.fail(
        "token",
        {
          kind: "status",
          status,
          code: aadError,
          message: "The service is temporarily unavailable.",
        },
        10,
      );
      const tokens = kv.tokenRequests;
      const e = await new Envelope({ encrypt: p }).encrypt(SECRET_TEXT, { context }).then(
        () => {
          throw new Error("encrypt succeeded while Entra failed");
        },
        (x: unknown) => x as ProviderError,
      );
      // Transient either way: the first attempt sees Entra's answer; later ones may see MSAL's
      // hold-back (it keeps requests back for Retry-After, 60 s by default, after a 429/5xx).
      expect(["ENVELOPE_KMS_UNAVAILABLE", "ENVELOPE_KMS_THROTTLED"]).toContain(e.code);
      await typed(Promise.reject(e), e.code);
      expect(e.message).toMatch(/Entra/);
      kv.faults.length = 0;
      // Retried by the provider, within its bound (MSAL itself holds later requests back
      // for the Retry-After period, so fewer may reach Entra).
      expect(kv.tokenRequests - tokens).toBeGreaterThanOrEqual(1);
      expect(kv.tokenRequests - tokens).toBeLessThanOrEqual(FAST.attempts);
      expect(e.message).not.toMatch(/Configure a credential/);
    },
  );
});

describe("nothing half-written, nothing logged", () => {
  it("multi-wrap: when one of two keys cannot wrap, encrypt rejects whole; a failed rewrap leaves the value as it was", async () => {
    const a = newKey();
    const b = newKey();
    const pa = provider(a.keyId, { retry: FAST });
    const pb = provider(b.keyId, { retry: FAST });
    const both = new Envelope({ encrypt: [pa, pb], cache: false });
    const sealed = await both.encrypt(SECRET_TEXT, { context });
    expect(decodeEnvelope(sealed).entries).toHaveLength(2);

    kv.deleteKey(b.name);
    const fresh = new Envelope({ encrypt: [pa, provider(b.keyId, { retry: FAST })], cache: false });
    await typed(fresh.encrypt(SECRET_TEXT, { context }), "ENVELOPE_KEY_NOT_FOUND");

    // Rewrap onto a new version of a whose wrap fails: rejected, and the input still opens.
    const copy = Buffer.from(sealed);
    kv.rotate(a.name);
    kv.update(a.name, undefined, { enabled: false });
    await pa.refresh();
    await typed(both.rewrap(sealed, { context, to: pa }), "ENVELOPE_KEY_DISABLED");
    expect(Buffer.from(sealed).equals(copy)).toBe(true);
    expect(await both.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
  });

  it("with the Azure SDK's verbose logging on, no token, secret, data key or plaintext reaches its log", async () => {
    // The SDK's own @azure/logger (the ESM build it loads), found beside @azure/keyvault-keys.
    const sdk = realpathSync(
      fileURLToPath(
        new URL(
          "../../../packages/azure-keyvault/node_modules/@azure/keyvault-keys",
          import.meta.url,
        ),
      ),
    );
    const logger = (await import(
      pathToFileURL(join(sdk, "..", "logger", "dist", "esm", "index.js")).href
    )) as {
      AzureLogger: { log: (...args: unknown[]) => void };
      setLogLevel(level?: string): void;
    };
    const lines: string[] = [];
    const original = logger.AzureLogger.log;
    logger.AzureLogger.log = (...args: unknown[]) => {
      lines.push(format(...args));
    };
    logger.setLogLevel("verbose");
    try {
      const { keyId, name, version } = newKey();
      const envelope = new Envelope({
        encrypt: provider(keyId, { localWrap: false, retry: FAST }),
        cache: false,
      });
      const sealed = await envelope.encrypt(SECRET_TEXT, { context });
      expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(SECRET_TEXT);
      kv.fail(
        "unwrapkey",
        { kind: "status", status: 503, code: "ServiceUnavailable", message: "busy" },
        3,
      );
      await typed(envelope.decrypt(sealed, { context }), "ENVELOPE_KMS_UNAVAILABLE");
      kv.update(name, version, { enabled: false });
      await typed(envelope.decrypt(sealed, { context }), "ENVELOPE_KEY_DISABLED");
      await typed(
        new Envelope({
          encrypt: provider(keyId, {
            credential: credential("not-the-secret-0123456789"),
            retry: FAST,
          }),
        }).encrypt(SECRET_TEXT, { context }),
        "ENVELOPE_KMS_ACCESS_DENIED",
      );
    } finally {
      logger.setLogLevel();
      logger.AzureLogger.log = original;
    }
    expect(lines.length).toBeGreaterThan(0); // the capture works: the SDK did log
    const text = lines.join("\n");
    for (const s of [...secrets(), "not-the-secret-0123456789"]) expect(text).not.toContain(s);
    expect(text).not.toMatch(/Bearer (?!authorization=)[A-Za-z0-9._-]{8,}/);
  });
});

describe("trust nothing the vault returns", () => {
  it.each([
    ["a 31-byte data key", Buffer.alloc(31, 7)],
    ["a different 32-byte data key", Buffer.alloc(32, 7)],
    ["an empty value", Buffer.alloc(0)],
  ])("unwrapkey answering %s is a typed error, never a wrong plaintext", async (_label, bogus) => {
    const { keyId, name, version } = newKey();
    const envelope = new Envelope({ encrypt: provider(keyId, { retry: FAST }), cache: false });
    const sealed = await envelope.encrypt(SECRET_TEXT, { context });
    kv.fail("unwrapkey", {
      kind: "json",
      status: 200,
      body: { kid: `${kv.url}/keys/${name}/${version}`, value: bogus.toString("base64url") },
    });
    const e = await envelope.decrypt(sealed, { context }).catch((x: unknown) => x);
    expect(EnvelopeError.isInstance(e), String(e)).toBe(true);
    expect([
      "ENVELOPE_PROVIDER_CONTRACT",
      "ENVELOPE_COMMITMENT_MISMATCH",
      "ENVELOPE_DECRYPT_FAILED",
      "ENVELOPE_UNWRAP_FAILED",
    ]).toContain((e as EnvelopeError).code);
    if (bogus.length > 0) expect(renderings(e)).not.toContain(bogus.toString("hex"));
  });

  it("a get-key answer for another key is refused (ENVELOPE_PROVIDER_CONTRACT) and nothing is wrapped", async () => {
    const { keyId, name } = newKey();
    const other = newKey();
    const otherBundle = kv.version(other.name);
    kv.fail("get", {
      kind: "json",
      status: 200,
      body: {
        key: {
          kid: `${kv.url}/keys/${other.name}/${other.version}`,
          kty: "RSA",
          key_ops: ["wrapKey", "unwrapKey"],
          ...(otherBundle.publicKey!.export({ format: "jwk" }) as object),
        },
        attributes: { enabled: true, created: 1, updated: 1 },
      },
    });
    const e = await typed(
      new Envelope({ encrypt: provider(keyId, { retry: FAST }) }).encrypt(SECRET_TEXT, { context }),
      "ENVELOPE_PROVIDER_CONTRACT",
    );
    expect(e.message).toContain(name);
  });

  it("serviceVersion is the api-version on the wire; one the vault does not know is a typed error naming it", async () => {
    const { keyId } = newKey();
    const before = kv.log.length;
    const ok = new Envelope({ encrypt: provider(keyId, { serviceVersion: "7.5" }) });
    await ok.decrypt(await ok.encrypt(SECRET_TEXT, { context }), { context });
    for (const r of kv.log.slice(before).filter((x) => x.path.startsWith("/keys/"))) {
      expect(r.apiVersion).toBe("7.5");
    }
    const bad = new Envelope({ encrypt: provider(keyId, { serviceVersion: "7.99", retry: FAST }) });
    const e = await typed(bad.encrypt(SECRET_TEXT, { context }), "ENVELOPE_KMS_ERROR");
    expect(e.message).toMatch(/7\.99|serviceVersion/);
  });
});
