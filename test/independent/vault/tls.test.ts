// The README's HTTPS examples, literally, against the independent Vault server over TLS with a
// throwaway CA made by the openssl CLI (skipped when openssl is missing).
//
// Run: pnpm exec vitest run test/independent/vault/tls.test.ts
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnvelope, Envelope, EnvelopeError } from "@envelope/core";
import { vaultTransitProvider } from "@envelope/vault";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type IndependentVault, readmePolicy, startIndependentVault } from "./server.js";

const hasOpenssl = (() => {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const CONTEXT = { table: "users", column: "email", id: "42" };
let dir: string;
let vault: IndependentVault;
let caPath: string;
let port: string;

function openssl(...args: string[]) {
  execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
}

beforeAll(async () => {
  if (!hasOpenssl) return;
  dir = mkdtempSync(join(tmpdir(), "vault-tls-"));
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=test CA",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  );
  openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
  );
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    "san.ext",
    "-out",
    "server.pem",
  );
  caPath = join(dir, "ca.pem");
  vault = await startIndependentVault({
    key: readFileSync(join(dir, "server.key")),
    cert: readFileSync(join(dir, "server.pem")),
  });
  port = new URL(vault.address).port;
  vault.createKey("pii");
  vault.writePolicy("envelope-pii", readmePolicy("transit", "pii"));
});

afterAll(async () => {
  await vault?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!hasOpenssl)("README over HTTPS", () => {
  it("minimal example: vault-transit://host:port/transit/keys/pii is HTTPS; VAULT_CACERT names the CA", async () => {
    const envelope = await createEnvelope(
      { encrypt: `vault-transit://127.0.0.1:${port}/transit/keys/pii` },
      { VAULT_TOKEN: vault.createToken({ policies: ["envelope-pii"] }), VAULT_CACERT: caPath },
    );
    const sealed = await envelope.encrypt("alice@example.com", {
      context: CONTEXT,
      output: "text",
    });
    expect(await envelope.decrypt(sealed, { context: CONTEXT, as: "text" })).toBe(
      "alice@example.com",
    );
  });

  it("building the provider yourself: AppRole + tls.ca", async () => {
    vault.addAppRole({
      roleName: "envelope-pii",
      roleId: "role-tls",
      secretId: "secret-tls",
      policies: ["envelope-pii"],
    });
    const provider = vaultTransitProvider({
      address: vault.address,
      mount: "transit",
      keyName: "pii",
      auth: { approle: { roleId: "role-tls", secretId: "secret-tls" } },
      tls: { ca: readFileSync(caPath) },
    });
    await provider.init();
    const envelope = new Envelope({ encrypt: provider });
    const sealed = await envelope.encrypt("x", { context: CONTEXT });
    expect((await envelope.decrypt(sealed, { context: CONTEXT })).toString()).toBe("x");
  });

  it("without the CA: ENVELOPE_KMS_ERROR about tls.ca, not retried; VAULT_SKIP_VERIFY is not honoured", async () => {
    const before = process.env.VAULT_SKIP_VERIFY;
    process.env.VAULT_SKIP_VERIFY = "true";
    try {
      const provider = vaultTransitProvider({
        address: vault.address,
        keyName: "pii",
        auth: { token: vault.rootToken, renew: false },
        retry: { attempts: 3, baseDelayMs: 1, timeoutMs: 2000 },
      });
      vault.requests.length = 0;
      const started = Date.now();
      const error = await provider.init().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(EnvelopeError.isInstance(error)).toBe(true);
      expect((error as EnvelopeError).code).toBe("ENVELOPE_KMS_ERROR");
      expect((error as EnvelopeError).message).toMatch(/tls\.ca|VAULT_CACERT/);
      expect((error as EnvelopeError).message).not.toContain(vault.rootToken);
      expect(vault.requests).toHaveLength(0);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      if (before === undefined) delete process.env.VAULT_SKIP_VERIFY;
      else process.env.VAULT_SKIP_VERIFY = before;
    }
  });
});
