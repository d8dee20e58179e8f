import { Envelope } from "@envelope/core";
import { failure } from "@envelope/core/testing";
import { providerFactory, type VaultTransitProvider } from "@envelope/vault";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forwardingProxy, type Harness, harness } from "./helpers.js";

let h: Harness;
let proxy: Awaited<ReturnType<typeof forwardingProxy>>;
let proxyUrl: string;

beforeAll(async () => {
  h = await harness();
  await h.admin.write("transit/keys/pii", {});
  // A proxy in front of Vault that forwards only transit paths (anything else: 404).
  proxy = await forwardingProxy(h.vault.url, (req, res) => {
    if (req.url?.startsWith("/v1/transit/")) return false;
    res.writeHead(404, { "content-type": "application/json" }).end('{"errors":[]}');
    return true;
  });
  proxyUrl = proxy.url;
});
afterAll(async () => {
  await proxy.close();
  await h.close();
});

const hostOf = (url: string) => new URL(url).host;

describe("vault rough edges (issue 14 item 8)", () => {
  it("vault-transit:///<mount>/keys/<name> takes the address from VAULT_ADDR", async () => {
    const provider = (await providerFactory.fromUri("vault-transit:///transit/keys/pii", {
      VAULT_ADDR: h.vault.url,
      VAULT_TOKEN: h.vault.rootToken,
    })) as VaultTransitProvider;
    const envelope = new Envelope({ encrypt: provider, cache: false });
    expect((await envelope.decrypt(await envelope.encrypt("via VAULT_ADDR"))).toString()).toBe(
      "via VAULT_ADDR",
    );
    const error = await failure(providerFactory.fromUri("vault-transit:///transit/keys/pii", {}));
    expect(error.message).toContain("VAULT_ADDR is not set");
  });

  it("a token lookup refused by a transit-only proxy is reported as a token lookup failure", async () => {
    const error = await failure(
      providerFactory.fromUri(`vault-transit://${hostOf(proxyUrl)}/transit/keys/pii?tls=false`, {
        VAULT_TOKEN: h.vault.rootToken,
      }),
    );
    expect(error.message).toContain("token lookup (auth/token/lookup-self)");
    expect(error.message).toContain("renew=false");
    expect(error.message).not.toContain("no such key or transit mount");
    expect(error.details.operation).toBe("token lookup");
  });

  it.each([
    ["?tls=false&renew=false", {}],
    ["?tls=false", { ENVELOPE_VAULT_TOKEN_RENEW: "false" }],
  ])(
    "renew=false by URI or env (%s %j) skips the lookup, so the proxy works",
    async (query, extra) => {
      h.vault.resetCalls();
      const provider = await providerFactory.fromUri(
        `vault-transit://${hostOf(proxyUrl)}/transit/keys/pii${query}`,
        { VAULT_TOKEN: h.vault.rootToken, ...extra },
      );
      const envelope = new Envelope({ encrypt: provider, cache: false });
      expect((await envelope.decrypt(await envelope.encrypt("proxied"))).toString()).toBe(
        "proxied",
      );
      expect(h.vault.calls["auth.token.lookup-self"]).toBeUndefined();
    },
  );

  it("a bad ENVELOPE_VAULT_TOKEN_RENEW is a config error", async () => {
    const error = await failure(
      providerFactory.fromUri(`vault-transit://${hostOf(h.vault.url)}/transit/keys/pii?tls=false`, {
        VAULT_TOKEN: "t",
        ENVELOPE_VAULT_TOKEN_RENEW: "nope",
      }),
    );
    expect(error.code).toBe("ENVELOPE_BAD_CONFIG");
  });
});
