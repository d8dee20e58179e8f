import { Envelope } from "@envelope/core";
import { generate } from "selfsigned";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testCertificate } from "../../../test/servers/tls.js";
import { failure, type Harness, harness } from "./helpers.js";

let ca: { key: string; cert: string };
let mtlsCa: { key: string; cert: string };
let client: { key: string; cert: string };
beforeAll(async () => {
  const server = await testCertificate(); // self-signed cert for 127.0.0.1, shared by test servers
  ca = { key: server.key, cert: server.cert };
  // OpenSSL rejects a client certificate whose CA lists extKeyUsage without clientAuth, so
  // mTLS gets its own CA (also the server certificate) that allows both.
  const authority = await generate([{ name: "commonName", value: "localhost" }], {
    keySize: 2048,
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, keyCertSign: true },
      { name: "extKeyUsage", serverAuth: true, clientAuth: true },
      { name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] },
    ],
  });
  mtlsCa = { key: authority.private, cert: authority.cert };
  const pems = await generate([{ name: "commonName", value: "envelope-client" }], {
    keySize: 2048,
    algorithm: "sha256",
    ca: mtlsCa,
    extensions: [{ name: "extKeyUsage", clientAuth: true }],
  });
  client = { key: pems.private, cert: pems.cert };
}, 60_000);

describe("TLS", () => {
  let h: Harness;
  afterAll(() => h?.close());

  it("verifies Vault's certificate against tls.ca, and refuses without it", async () => {
    h = await harness({ tls: { key: ca.key, cert: ca.cert } }, { ca: ca.cert });
    await h.admin.write("transit/keys/pii", {});
    expect(h.vault.url).toMatch(/^https:/);
    const trusted = new Envelope({ encrypt: h.provider({ tls: { ca: ca.cert }, derived: false }) });
    expect((await trusted.decrypt(await trusted.encrypt("x"))).toString()).toBe("x");

    h.vault.resetCalls();
    const untrusted = h.provider({ derived: false });
    const error = await failure(new Envelope({ encrypt: untrusted }).encrypt("x"));
    expect(error.code).toBe("ENVELOPE_KMS_ERROR"); // not retried: a config problem
    expect(error.message).toContain("tls.ca");
    expect(h.vault.calls.datakey).toBeUndefined(); // nothing reached Vault
    await h.close();
  });

  it("rejectUnauthorized: false (tests only) skips verification", async () => {
    h = await harness({ tls: { key: ca.key, cert: ca.cert } }, { ca: ca.cert });
    await h.admin.write("transit/keys/pii", {});
    const insecure = h.provider({ tls: { rejectUnauthorized: false }, derived: false });
    const envelope = new Envelope({ encrypt: insecure });
    expect((await envelope.decrypt(await envelope.encrypt("x"))).toString()).toBe("x");
    await h.close();
  });

  it("mTLS: presents tls.cert / tls.key; without them the handshake fails", async () => {
    h = await harness(
      { tls: { key: mtlsCa.key, cert: mtlsCa.cert, ca: mtlsCa.cert, requestCert: true } },
      { ca: mtlsCa.cert, ...client },
    );
    await h.admin.write("transit/keys/pii", {});
    const withCert = h.provider({ tls: { ca: mtlsCa.cert, ...client }, derived: false });
    const envelope = new Envelope({ encrypt: withCert });
    expect((await envelope.decrypt(await envelope.encrypt("x"))).toString()).toBe("x");

    h.vault.resetCalls();
    const noCert = h.provider({ tls: { ca: mtlsCa.cert }, derived: false, retry: { attempts: 1 } });
    const error = await failure(new Envelope({ encrypt: noCert }).encrypt("x"));
    // TLS 1.3 alert "certificate required": a configuration problem, not retried.
    expect(error.code).toBe("ENVELOPE_KMS_ERROR");
    expect(error.message).toContain("tls.cert/tls.key");
    expect(h.vault.calls.datakey).toBeUndefined();
  });
});
