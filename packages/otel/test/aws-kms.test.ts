import { awsKmsProvider } from "@envelope/aws-kms";
import { Envelope } from "@envelope/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AwsKmsTestServer, startAwsKmsServer } from "../../../test/servers/aws-kms.js";
import { findCanaries } from "../../../test/support/secret-surfaces.js";
import { ATTR, METRICS, SPANS } from "../src/index.js";
import { otelHarness } from "./harness.js";

const CONTEXT_VALUE = "CANARY-CTX-aws-3e9f";
const context = { table: "users", id: CONTEXT_VALUE };
let kms: AwsKmsTestServer;
const made: { destroy(): void }[] = [];

beforeEach(async () => {
  kms = await startAwsKmsServer();
});
afterEach(async () => {
  for (const p of made.splice(0)) p.destroy();
  await kms.close();
});

/** The real @envelope/aws-kms provider (real AWS SDK client) against the KMS test server. */
function provider(keyId: string) {
  const p = awsKmsProvider({
    keyId,
    endpoint: kms.url,
    credentials: kms.credentials,
    retry: { baseDelayMs: 1, maxDelayMs: 5, timeoutMs: 5000 },
  });
  made.push(p);
  return p;
}

describe("AWS KMS through the real SDK and the KMS test server", () => {
  it("traces GenerateDataKey and Decrypt; counts throttling and denials by code; no secret leaks", async () => {
    const otel = otelHarness();
    const key = kms.createKey();
    const envelope = new Envelope(otel.telemetry.instrument({ encrypt: provider(key.arn) }));
    otel.telemetry.observe(envelope);
    const sealed = await envelope.encrypt("CANARY-PLAINTEXT-aws", { context });
    envelope.clearCaches();
    await envelope.decrypt(sealed, { context });

    kms.faults = { throttleEvery: 1 };
    envelope.clearCaches();
    await expect(envelope.decrypt(sealed, { context })).rejects.toMatchObject({
      code: "ENVELOPE_KMS_THROTTLED",
    });
    kms.faults = {};
    kms.deny("Decrypt");
    await expect(envelope.decrypt(sealed, { context })).rejects.toMatchObject({
      code: "ENVELOPE_KMS_ACCESS_DENIED",
    });

    expect(kms.requests.map((r) => r.operation).slice(0, 2)).toEqual([
      "GenerateDataKey",
      "Decrypt",
    ]);
    const spans = otel.spans();
    expect(spans.map((s) => [s.name, s.attributes[ATTR.errorType]])).toEqual([
      [SPANS.generate_data_key, undefined],
      [SPANS.unwrap, undefined],
      [SPANS.unwrap, "ENVELOPE_KMS_THROTTLED"], // one span per call, its retries inside
      [SPANS.unwrap, "ENVELOPE_KMS_ACCESS_DENIED"],
    ]);
    expect(spans.every((s) => s.attributes[ATTR.keyRef] === key.arn)).toBe(true);
    for (const code of ["ENVELOPE_KMS_THROTTLED", "ENVELOPE_KMS_ACCESS_DENIED"]) {
      expect(
        await otel.value(METRICS.kmsErrors, { [ATTR.provider]: "aws-kms", [ATTR.errorType]: code }),
      ).toBe(1);
    }
    expect(await otel.value(METRICS.cacheMisses)).toBe(3);

    const canaries = [kms.credentials.secretAccessKey, CONTEXT_VALUE, "CANARY-PLAINTEXT-aws"];
    const metrics = await otel.resourceMetrics();
    expect([
      ...spans.flatMap((s) => findCanaries(s, canaries)),
      ...metrics.flatMap((m) => findCanaries(m, canaries)),
    ]).toEqual([]);
  });
});
