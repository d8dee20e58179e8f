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

  it("a bad timeoutMs is ENVELOPE_BAD_CONFIG, a timer too long for Node too", async () => {
    const envelope = new Envelope({ encrypt: bent() });
    // Node fires a timer of more than 2^31 - 1 ms after 1 ms: every check would time out.
    for (const timeoutMs of [Number.NaN, 0, 1.5, 2 ** 31]) {
      await expect(envelope.check({ timeoutMs })).rejects.toMatchObject({
        code: "ENVELOPE_BAD_CONFIG",
      });
    }
    expect((await envelope.check({ timeoutMs: 2 ** 31 - 1 })).ok).toBe(true);
  });

  it("checks each encrypt key with the call encrypt makes: GenerateDataKey for the first, wrap for the rest", async () => {
    // Each key allows one of the two calls only, as a KMS key policy can.
    const generateOnly = () => {
      const aes = localAesProvider({ keys: randomBytes(32) });
      return bent({
        keyRef: aes.keyRef,
        handles: (e) => aes.handles(e),
        unwrap: (e, r) => aes.unwrap(e, r),
        wrap: async () => {
          throw denied("wrap");
        },
        generateDataKey: async (r) => {
          const dataKey = randomBytes(32);
          return { dataKey, entry: await aes.wrap(dataKey, r) };
        },
      });
    };
    const wrapOnly = () =>
      bent({
        generateDataKey: async () => {
          throw denied("generateDataKey");
        },
      });
    const works = [generateOnly(), wrapOnly()];
    const envelope = new Envelope({ encrypt: works });
    expect(String(await envelope.decrypt(await envelope.encrypt("x")))).toBe("x");
    expect((await envelope.check()).providers.map((p) => p.status)).toEqual(["ok", "ok"]);
    // The second key may generate but not wrap: encrypt fails, and so does the check.
    const broken = new Envelope({ encrypt: [generateOnly(), generateOnly()] });
    await expect(broken.encrypt("x")).rejects.toMatchObject({ code: "ENVELOPE_KMS_ACCESS_DENIED" });
    const report = await broken.check();
    expect(report.ok).toBe(false);
    expect(report.providers[1]).toMatchObject({
      status: "failed",
      error: { code: "ENVELOPE_KMS_ACCESS_DENIED", step: "wrap" },
    });
  });

  it("a readinessTargets() that throws fails that key's row; the check still reports", async () => {
    const thrower: KeyProvider = {
      ...bent(),
      readinessTargets: () => {
        throw denied("connect");
      },
    };
    const report = await new Envelope({ encrypt: bent(), decrypt: [thrower] }).check();
    expect(report.providers.map((p) => p.status)).toEqual(["ok", "failed"]);
    expect(report.providers[1]!.error).toMatchObject({
      code: "ENVELOPE_KMS_ACCESS_DENIED",
      step: "probe",
    });
  });

  it("zeroes a data key of the wrong length that GenerateDataKey returned", async () => {
    const short = Buffer.alloc(16, 0xab);
    const report = await new Envelope({
      encrypt: bent({ generateDataKey: async () => ({ dataKey: short, entry: {} as never }) }),
    }).check();
    expect(report.providers[0]!.error?.code).toBe("ENVELOPE_PROVIDER_CONTRACT");
    expect(short.equals(Buffer.alloc(16))).toBe(true);
  });

  it("a provider that delegates is checked through its master, after its probe, never by its own calls", async () => {
    const master = bent();
    const older = bent();
    const probes: string[] = [];
    const own = async () => {
      throw new Error("a readiness check must not call the delegating provider itself");
    };
    const delegating = (probe: () => Promise<unknown>): KeyProvider => ({
      id: "delegating",
      keyRef: "k1",
      handles: () => false,
      wrap: own,
      unwrap: own,
      generateDataKey: own,
      readinessTargets: () => ({ master, decrypt: [older], probe }),
    });
    const ok = await new Envelope({
      encrypt: delegating(async () => probes.push("probe")),
    }).check();
    expect(probes).toEqual(["probe"]);
    expect(ok.ok).toBe(true);
    expect(ok.providers.map((p) => [p.provider, p.keyRef, p.role, p.status])).toEqual([
      ["delegating", "k1", "encrypt", "ok"],
      [older.id, older.keyRef, "decrypt", "ok"],
    ]);
    expect(ok.providers[0]!.via).toEqual({ provider: master.id, keyRef: master.keyRef });
    const failed = await new Envelope({
      encrypt: delegating(async () => {
        throw denied("read");
      }),
    }).check();
    expect(failed.providers[0]).toMatchObject({
      status: "failed",
      error: { code: "ENVELOPE_KMS_ACCESS_DENIED", step: "probe" },
    });
    expect(failed.providers[0]!.latencyMs.wrap).toBeUndefined();
  });
});
