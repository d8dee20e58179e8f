import { Envelope } from "@envelope/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Harness, harness } from "./helpers.js";

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(() => h.close());

describe("Envelope.check() against the KMS test server", () => {
  it("uses GenerateDataKey then Decrypt with the readiness context; ok", async () => {
    const key = h.kms.createKey();
    const envelope = new Envelope({ encrypt: h.provider({ keyId: key.arn }) });
    const report = await envelope.check();
    expect(report.ok).toBe(true);
    expect(report.providers[0]).toMatchObject({
      provider: "aws-kms",
      keyRef: key.arn,
      status: "ok",
    });
    const ops = h.kms.requests.map((r) => r.operation);
    expect(ops).toEqual(["GenerateDataKey", "Decrypt"]);
  });

  it("a role without kms:GenerateDataKey fails the check with ENVELOPE_KMS_ACCESS_DENIED", async () => {
    const key = h.kms.createKey();
    h.kms.deny("GenerateDataKey");
    const report = await new Envelope({ encrypt: h.provider({ keyId: key.arn }) }).check();
    expect(report.ok).toBe(false);
    expect(report.providers[0]?.error).toMatchObject({
      code: "ENVELOPE_KMS_ACCESS_DENIED",
      step: "wrap",
    });
  });

  it("a disabled key fails with ENVELOPE_KEY_DISABLED", async () => {
    const key = h.kms.createKey();
    h.kms.disableKey(key.arn);
    const report = await new Envelope({ encrypt: h.provider({ keyId: key.arn }) }).check();
    expect(report.providers[0]?.error?.code).toBe("ENVELOPE_KEY_DISABLED");
  });

  it("a decrypt-only key whose role may not Encrypt is degraded, not failed", async () => {
    const current = h.kms.createKey();
    const old = h.kms.createKey();
    h.kms.deny("Encrypt", old.arn);
    const envelope = new Envelope({
      encrypt: h.provider({ keyId: current.arn }),
      decrypt: [h.provider({ keyId: old.arn })],
    });
    const report = await envelope.check();
    expect(report.ok).toBe(true);
    expect(report.providers.map((p) => p.status)).toEqual(["ok", "degraded"]);
  });
});
