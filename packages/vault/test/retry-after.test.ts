import { Envelope, ProviderError } from "@envelope/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { forwardingProxy, type Harness, harness } from "./helpers.js";

// A Vault rate-limit quota answers 429 with Retry-After (whole seconds, when the quota
// config sets enable_rate_limit_response_headers). A tiny proxy in front of the Vault test
// server answers the first `throttle` transit decrypts that way and forwards everything
// else; the provider talks to it through its real node-vault client.

let h: Harness;
let proxy: Awaited<ReturnType<typeof forwardingProxy>>;
let proxyUrl: string;
let throttle = 0;
let decrypts: number[] = [];

beforeEach(async () => {
  h = await harness();
  await h.admin.write("transit/keys/pii", {});
  throttle = 0;
  decrypts = [];
  proxy = await forwardingProxy(h.vault.url, (req, res) => {
    if (req.url?.startsWith("/v1/transit/decrypt/")) {
      decrypts.push(performance.now());
      if (throttle > 0) {
        throttle--;
        req.resume();
        res.writeHead(429, { "content-type": "application/json", "retry-after": "1" });
        res.end(
          JSON.stringify({
            errors: ['request path "transit/decrypt/pii": rate limit quota exceeded'],
          }),
        );
        return true;
      }
    }
    return false;
  });
  proxyUrl = proxy.url;
});
afterEach(async () => {
  await proxy.close();
  await h.close();
});

const through = (maxDelayMs: number) =>
  h.provider({
    address: proxyUrl,
    auth: { token: h.vault.rootToken, renew: false },
    derived: false,
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs, timeoutMs: 5000 },
  });

describe("vault-transit honours Vault's Retry-After", () => {
  it("429 with Retry-After: 1, then 200: the retry waits the second Vault asked for, and succeeds", async () => {
    const envelope = new Envelope({ encrypt: through(2000), cache: false });
    const sealed = await envelope.encrypt("x");
    throttle = 1;
    expect((await envelope.decrypt(sealed)).toString()).toBe("x");
    expect(decrypts).toHaveLength(2);
    expect(decrypts[1]! - decrypts[0]!).toBeGreaterThanOrEqual(995);
  });

  it("Retry-After longer than maxDelayMs: ENVELOPE_KMS_THROTTLED at once after one request, saying how long Vault asked", async () => {
    const envelope = new Envelope({ encrypt: through(300), cache: false });
    const sealed = await envelope.encrypt("x");
    throttle = 10;
    const error = await envelope.decrypt(sealed).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(ProviderError.isInstance(error)).toBe(true);
    const e = error as ProviderError;
    expect(e.code).toBe("ENVELOPE_KMS_THROTTLED");
    expect(e.details).toMatchObject({ retryAfterMs: 1000, attempts: 1 });
    expect(e.message).toContain("rate limit quota exceeded");
    expect(e.message).toContain("asked to wait 1 s (Retry-After)");
    expect(decrypts).toHaveLength(1);
  });
});
