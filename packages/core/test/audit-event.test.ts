import { describe, expect, it } from "vitest";
import { auditEvent } from "../src/audit.js";
import { ProviderError } from "../src/errors.js";

describe("auditEvent", () => {
  it("carries every optional field it is given, and an error's code only", () => {
    const started = performance.now();
    const ok = auditEvent("decrypt", "local-aes", "abc", started, {
      cacheHit: true,
      dataKeyReused: false,
      native: true,
    });
    expect(ok).toStrictEqual({
      operation: "decrypt",
      provider: "local-aes",
      keyRef: "abc",
      durationMs: expect.any(Number),
      outcome: "success",
      cacheHit: true,
      dataKeyReused: false,
      native: true,
    });
    const error = new ProviderError("ENVELOPE_KMS_THROTTLED", "slow down");
    expect(auditEvent("wrap", "aws-kms", "k\n", started, {}, error)).toStrictEqual({
      operation: "wrap",
      provider: "aws-kms",
      keyRef: "k\\x0a",
      durationMs: expect.any(Number),
      outcome: "failure",
      errorCode: "ENVELOPE_KMS_THROTTLED",
    });
    expect(auditEvent("unwrap", "x", "y", started, {}, new Error("raw")).errorCode).toBe(
      "ENVELOPE_KMS_ERROR",
    );
  });
});
