import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type KeyProvider, localAesProvider, ProviderError } from "../src/index.js";
import {
  type ConformanceSubject,
  type ConformanceTestApi,
  runProviderConformance,
} from "../src/testing/index.js";

/** Runs the suite outside vitest and returns, per check, its failure message or "ok". */
async function outcomes(subject: ConformanceSubject): Promise<Record<string, string>> {
  const tests: [string, () => Promise<void>][] = [];
  const api: ConformanceTestApi = {
    describe: (_name, fn) => fn(),
    it: (name, fn) => tests.push([name, fn]),
  };
  runProviderConformance(api, subject);
  const out: Record<string, string> = {};
  for (const [name, fn] of tests) {
    out[name.split(":")[0]!] = await fn().then(
      () => "ok",
      (e: Error) => e.message,
    );
  }
  return out;
}

const good = () => localAesProvider({ keys: randomBytes(32) });

describe("the conformance suite fails providers that break the contract", () => {
  it("passes a correct provider", async () => {
    const result = await outcomes({ name: "good", provider: good, otherKey: good });
    expect(Object.values(result).every((r) => r === "ok")).toBe(true);
  });

  it("an unwrap that returns another key fails the round trip", async () => {
    const broken = (): KeyProvider => {
      const inner = good();
      return { ...inner, keyRef: inner.keyRef, unwrap: async () => randomBytes(32) };
    };
    const result = await outcomes({ name: "broken", provider: broken, otherKey: good });
    expect(result["round trip"]).not.toBe("ok");
  });

  it("a fault that leaks a secret, or has the wrong code, fails", async () => {
    const leakyKey = randomBytes(32);
    let failing = false;
    const leaky = (): KeyProvider => {
      const inner = localAesProvider({ keys: leakyKey });
      return {
        ...inner,
        keyRef: inner.keyRef,
        unwrap: async (entry, request) => {
          if (!failing) return inner.unwrap(entry, request);
          throw new ProviderError("ENVELOPE_KMS_THROTTLED", "local-aes throttled token=CANARY-1");
        },
      };
    };
    const inject = () => {
      failing = true;
      return () => {
        failing = false;
      };
    };
    const result = await outcomes({
      name: "leaky",
      provider: leaky,
      otherKey: good,
      secrets: ["CANARY-1"],
      faults: { throttle: inject, denied: inject },
    });
    expect(result["fault throttle"]).toMatch(/secret/);
    expect(result["fault denied"]).toMatch(/ENVELOPE_KMS_ACCESS_DENIED/);
  });

  it("a declared native rewrap that the provider does not offer fails", async () => {
    const result = await outcomes({
      name: "claims",
      provider: good,
      otherKey: good,
      nativeRewrap: true,
    });
    expect(result["native rewrap"]).toMatch(/nativeRewrap/);
  });
});
