import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  Envelope,
  type KeyProvider,
  localAesProvider,
  ProviderError,
  READINESS_CONTEXT,
  type WrappedKey,
} from "../src/index.js";

/** A provider around local-aes whose behaviour each test bends. */
function bent(overrides: Partial<KeyProvider> & { id?: string } = {}): KeyProvider {
  const aes = localAesProvider({ keys: randomBytes(32) });
  return {
    id: aes.id,
    keyRef: aes.keyRef,
    handles: (e) => aes.handles(e),
    wrap: (k, r) => aes.wrap(k, r),
    unwrap: (e, r) => aes.unwrap(e, r),
    ...overrides,
  };
}

const denied = (operation: string) =>
  new ProviderError("ENVELOPE_KMS_ACCESS_DENIED", `test-kms ${operation}: access denied`, {
    details: { provider: "local-aes", operation },
  });

describe("Envelope.check()", () => {
  it("reports ok with latencies for a working encrypt key and a decrypt-only key", async () => {
    const envelope = new Envelope({
      encrypt: localAesProvider({ keys: randomBytes(32) }),
      decrypt: [localAesProvider({ keys: randomBytes(32) })],
    });
    const report = await envelope.check();
    expect(report.ok).toBe(true);
    expect(report.providers.map((p) => [p.role, p.status])).toEqual([
      ["encrypt", "ok"],
      ["decrypt", "ok"],
    ]);
    for (const p of report.providers) {
      expect(p.latencyMs.wrap).toBeGreaterThanOrEqual(0);
      expect(p.latencyMs.unwrap).toBeGreaterThanOrEqual(0);
      expect(p.error).toBeUndefined();
    }
    expect(Date.parse(report.checkedAt)).not.toBeNaN();
  });

  it("wraps the canary under the readiness context and zeroes it afterwards", async () => {
    const seen: { key: Uint8Array; context: unknown }[] = [];
    const provider = bent();
    const spy = bent({
      keyRef: provider.keyRef,
      wrap: (key, request) => {
        seen.push({ key, context: request.context });
        return provider.wrap(key, request);
      },
      unwrap: (e, r) => provider.unwrap(e, r),
      handles: (e) => provider.handles(e),
    });
    const report = await new Envelope({ encrypt: spy }).check();
    expect(report.ok).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.context).toEqual(READINESS_CONTEXT);
    expect(Buffer.from(seen[0]!.key).equals(Buffer.alloc(32))).toBe(true);
  });

  it("a failing encrypt key fails the check with its typed error and step", async () => {
    const envelope = new Envelope({
      encrypt: bent({
        wrap: async () => {
          throw denied("wrap");
        },
      }),
    });
    const report = await envelope.check();
    expect(report.ok).toBe(false);
    expect(report.providers[0]).toMatchObject({
      role: "encrypt",
      status: "failed",
      error: { code: "ENVELOPE_KMS_ACCESS_DENIED", step: "wrap" },
    });
  });

  it("an encrypt key that wraps but cannot unwrap fails (traffic could not read back)", async () => {
    const envelope = new Envelope({
      encrypt: bent({
        unwrap: async () => {
          throw denied("unwrap");
        },
      }),
    });
    const report = await envelope.check();
    expect(report.ok).toBe(false);
    expect(report.providers[0]?.error).toMatchObject({
      code: "ENVELOPE_KMS_ACCESS_DENIED",
      step: "unwrap",
    });
  });

  it("an encrypt-only key (public key only) is degraded, not failed", async () => {
    const envelope = new Envelope({
      encrypt: bent({
        unwrap: async () => {
          throw new ProviderError("ENVELOPE_ENCRYPT_ONLY", "public key only: cannot decrypt");
        },
      }),
    });
    const report = await envelope.check();
    expect(report.ok).toBe(true);
    expect(report.providers[0]).toMatchObject({
      status: "degraded",
      error: { code: "ENVELOPE_ENCRYPT_ONLY" },
    });
  });

  it("a decrypt-only key whose KMS refuses to wrap is degraded (its unwrap was not tried)", async () => {
    const envelope = new Envelope({
      encrypt: localAesProvider({ keys: randomBytes(32) }),
      decrypt: [
        bent({
          wrap: async () => {
            throw denied("wrap");
          },
        }),
      ],
    });
    const report = await envelope.check();
    expect(report.ok).toBe(true);
    expect(report.providers[1]).toMatchObject({ role: "decrypt", status: "degraded" });
  });

  it("a provider that unwraps to a different key fails with ENVELOPE_PROVIDER_CONTRACT", async () => {
    const envelope = new Envelope({ encrypt: bent({ unwrap: async () => randomBytes(32) }) });
    const report = await envelope.check();
    expect(report.providers[0]?.error?.code).toBe("ENVELOPE_PROVIDER_CONTRACT");
  });

  it("a provider that hangs fails with ENVELOPE_KMS_TIMEOUT after timeoutMs", async () => {
    const envelope = new Envelope({
      encrypt: bent({ wrap: () => new Promise<WrappedKey>(() => {}) }),
    });
    const report = await envelope.check({ timeoutMs: 50 });
    expect(report.providers[0]).toMatchObject({
      status: "failed",
      error: { code: "ENVELOPE_KMS_TIMEOUT", step: "wrap" },
    });
  });

  it("an untyped provider error is reported without its message (it could hold a secret)", async () => {
    const envelope = new Envelope({
      encrypt: bent({
        wrap: async () => {
          throw new Error("token hvs.SECRET-CANARY leaked");
        },
      }),
    });
    const report = await envelope.check();
    expect(report.providers[0]?.error?.code).toBe("ENVELOPE_KMS_ERROR");
    expect(JSON.stringify(report)).not.toContain("SECRET-CANARY");
  });

  it("a bad timeoutMs is ENVELOPE_BAD_CONFIG", async () => {
    const envelope = new Envelope({ encrypt: bent() });
    await expect(envelope.check({ timeoutMs: Number.NaN })).rejects.toMatchObject({
      code: "ENVELOPE_BAD_CONFIG",
    });
  });
});
