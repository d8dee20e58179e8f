// The Vault test server itself, driven by the real node-vault client: the protocol
// details the provider tests do not reach (batch_input, errors, upsert, derived keys).
import nodeVault from "node-vault";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  startVaultTransitServer,
  type VaultTransitServer,
} from "../../../test/servers/vault-transit.js";

let vault: VaultTransitServer;
let client: ReturnType<typeof nodeVault>;
const b64 = (s: string) => Buffer.from(s).toString("base64");

beforeEach(async () => {
  vault = await startVaultTransitServer();
  client = nodeVault({ endpoint: vault.url, token: vault.rootToken, debug: () => {} });
  await client.write("transit/keys/k", { type: "aes256-gcm96" });
});
afterEach(() => vault.close());

async function vaultError(promise: Promise<unknown>): Promise<{ status: number; body: unknown }> {
  const error = (await promise.then(
    () => {
      throw new Error("expected a Vault error");
    },
    (e: unknown) => e,
  )) as { response?: { statusCode: number; body: unknown } };
  if (!error.response) throw error;
  return { status: error.response.statusCode, body: error.response.body };
}

describe("Vault transit test server", () => {
  it("reads a key the way Vault answers GET <mount>/keys/:name", async () => {
    await client.write("transit/keys/k/rotate", {});
    const { data } = await client.read("transit/keys/k");
    expect(data).toMatchObject({
      name: "k",
      type: "aes256-gcm96",
      latest_version: 2,
      min_decryption_version: 1,
      derived: false,
      deletion_allowed: false,
    });
    expect(Object.keys(data.keys)).toEqual(["1", "2"]);
    expect(await vaultError(client.read("transit/keys/none"))).toEqual({
      status: 404,
      body: { errors: [] },
    });
    // node:http cannot parse the LIST verb; Vault's Go client sends GET ?list=true instead,
    // and so does node-vault with noCustomHTTPVerbs.
    const lister = nodeVault({
      endpoint: vault.url,
      token: vault.rootToken,
      noCustomHTTPVerbs: true,
      debug: () => {},
    });
    const listed = await lister.list("transit/keys");
    expect(listed.data.keys).toEqual(["k"]);
  });

  it("encrypts, decrypts and rewraps single values and batch_input", async () => {
    const { data: one } = await client.write("transit/encrypt/k", { plaintext: b64("hello") });
    expect(one.ciphertext).toMatch(/^vault:v1:/);
    expect(one.key_version).toBe(1);
    const { data: back } = await client.write("transit/decrypt/k", { ciphertext: one.ciphertext });
    expect(Buffer.from(back.plaintext, "base64").toString()).toBe("hello");

    const { data: batch } = await client.write("transit/encrypt/k", {
      batch_input: [
        { plaintext: b64("a"), reference: "r1" },
        { plaintext: b64("b"), reference: "r2" },
      ],
    });
    expect(batch.batch_results.map((r: { reference: string }) => r.reference)).toEqual([
      "r1",
      "r2",
    ]);
    await client.write("transit/keys/k/rotate", {});
    const { data: rewrapped } = await client.write("transit/rewrap/k", {
      batch_input: batch.batch_results.map((r: { ciphertext: string }) => ({
        ciphertext: r.ciphertext,
      })),
    });
    expect(
      rewrapped.batch_results.every((r: { ciphertext: string }) =>
        r.ciphertext.startsWith("vault:v2:"),
      ),
    ).toBe(true);
    const { data: opened } = await client.write("transit/decrypt/k", {
      batch_input: rewrapped.batch_results.map((r: { ciphertext: string }) => ({
        ciphertext: r.ciphertext,
      })),
    });
    expect(
      opened.batch_results.map((r: { plaintext: string }) =>
        Buffer.from(r.plaintext, "base64").toString(),
      ),
    ).toEqual(["a", "b"]);

    // One bad item: HTTP 400 with per-item errors, as Vault does (no top-level errors).
    const partial = await vaultError(
      client.write("transit/decrypt/k", {
        batch_input: [
          { ciphertext: rewrapped.batch_results[0].ciphertext },
          { ciphertext: "nope" },
        ],
      }),
    );
    expect(partial.status).toBe(400);
    expect(
      (partial.body as { data: { batch_results: { error?: string }[] } }).data.batch_results[1]
        ?.error,
    ).toBe("invalid ciphertext: no prefix");
  });

  it("datakey/plaintext returns the key and its wrap; datakey/wrapped only the wrap", async () => {
    const { data } = await client.write("transit/datakey/plaintext/k", {});
    expect(Buffer.from(data.plaintext, "base64")).toHaveLength(32);
    const { data: opened } = await client.write("transit/decrypt/k", {
      ciphertext: data.ciphertext,
    });
    expect(opened.plaintext).toBe(data.plaintext);
    const { data: wrapped } = await client.write("transit/datakey/wrapped/k", { bits: 512 });
    expect(wrapped.plaintext).toBeUndefined();
    expect(await vaultError(client.write("transit/datakey/plaintext/none", {}))).toEqual({
      status: 400,
      body: { errors: ["encryption key not found"] },
    });
  });

  it("derived keys require a context and bind it; other keys ignore it", async () => {
    await client.write("transit/keys/d", { derived: true });
    const missing = await vaultError(client.write("transit/encrypt/d", { plaintext: b64("x") }));
    expect(missing.status).toBe(400);
    expect(JSON.stringify(missing.body)).toContain("missing 'context' for key derivation");
    const { data } = await client.write("transit/encrypt/d", {
      plaintext: b64("x"),
      context: b64("ctx-1"),
    });
    const wrong = await vaultError(
      client.write("transit/decrypt/d", { ciphertext: data.ciphertext, context: b64("ctx-2") }),
    );
    expect(wrong.body).toEqual({ errors: ["cipher: message authentication failed"] });

    const { data: plain } = await client.write("transit/encrypt/k", {
      plaintext: b64("x"),
      context: b64("a"),
    });
    const { data: opened } = await client.write("transit/decrypt/k", {
      ciphertext: plain.ciphertext,
      context: b64("b"),
    });
    expect(Buffer.from(opened.plaintext, "base64").toString()).toBe("x");
  });

  it("config: min_decryption_version, deletion_allowed; errors as Vault words them", async () => {
    const { data } = await client.write("transit/encrypt/k", { plaintext: b64("x") });
    await client.write("transit/keys/k/rotate", {});
    await client.write("transit/keys/k/config", { min_decryption_version: 2 });
    expect(
      await vaultError(client.write("transit/decrypt/k", { ciphertext: data.ciphertext })),
    ).toEqual({
      status: 400,
      body: { errors: ["ciphertext or signature version is disallowed by policy (too old)"] },
    });
    expect(
      (await vaultError(client.write("transit/keys/k/config", { min_decryption_version: 9 })))
        .status,
    ).toBe(400);
    expect((await vaultError(client.delete("transit/keys/k"))).body).toEqual({
      errors: ["error deleting policy k: deletion is not allowed for this key"],
    });
    await client.write("transit/keys/k/config", { deletion_allowed: true });
    await client.delete("transit/keys/k");
    expect((await vaultError(client.read("transit/keys/k"))).status).toBe(404);
  });

  it("encrypt under a missing key creates it (upsert) only with the create capability", async () => {
    await client.write("transit/encrypt/fresh", { plaintext: b64("x") });
    expect(vault.keyVersions("fresh")).toBe(1);
    await vault.close();
    vault = await startVaultTransitServer({
      policies: { app: { "transit/encrypt/*": ["update"] } },
    });
    const token = vault.createToken({ policies: ["app"] });
    const limited = nodeVault({ endpoint: vault.url, token, debug: () => {} });
    expect(
      await vaultError(limited.write("transit/encrypt/other", { plaintext: b64("x") })),
    ).toEqual({
      status: 403,
      body: { errors: ["permission denied"] },
    });
  });

  it("auth: unknown token 403, AppRole login, lookup-self, renew-self; faults and counts", async () => {
    const stranger = nodeVault({ endpoint: vault.url, token: "hvs.unknown", debug: () => {} });
    expect(await vaultError(stranger.read("transit/keys/k"))).toEqual({
      status: 403,
      body: { errors: ["permission denied"] },
    });

    const { roleId, secretId } = vault.addAppRole({ policies: ["p"], tokenTtl: 60 });
    const app = nodeVault({ endpoint: vault.url, debug: () => {} });
    const login = await app.approleLogin({ role_id: roleId, secret_id: secretId });
    expect(login.auth).toMatchObject({
      lease_duration: 60,
      renewable: true,
      policies: ["default", "p"],
    });
    expect((await app.tokenLookupSelf()).data).toMatchObject({ ttl: 60, renewable: true });
    expect((await app.tokenRenewSelf({ increment: 120 })).auth.lease_duration).toBe(120);
    expect(await vaultError(app.approleLogin({ role_id: roleId, secret_id: "bad" }))).toEqual({
      status: 400,
      body: { errors: ["invalid role or secret ID"] },
    });

    vault.resetCalls();
    vault.faults.throttleEvery = 1;
    const throttled = await vaultError(client.write("transit/encrypt/k", { plaintext: b64("x") }));
    expect(throttled).toEqual({
      status: 429,
      body: { errors: ['request path "transit/encrypt/k": rate limit quota exceeded'] },
    });
    vault.faults.throttleEvery = 0;
    vault.sealed = true;
    expect(await vaultError(client.read("transit/keys/k"))).toEqual({
      status: 503,
      body: { errors: ["Vault is sealed"] },
    });
    expect(vault.calls).toEqual({ encrypt: 1, "keys.read": 1 });
  });
});
