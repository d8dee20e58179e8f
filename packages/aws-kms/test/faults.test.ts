import { awsKmsProvider } from "@envelope/aws-kms";
import { decodeEnvelope, Envelope, encodeEnvelope, ProviderError } from "@envelope/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CONTEXT, failure, type Harness, harness } from "./helpers.js";

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

/** A key, an envelope sealed under it, and a fresh reader (empty cache) for it. */
async function sealed(options: { attempts?: number; timeoutMs?: number } = {}) {
  const key = h.kms.createKey();
  const value = await new Envelope({ encrypt: h.provider({ keyId: key.arn }) }).encrypt("v", {
    output: "binary",
    context: CONTEXT,
  });
  const provider = h.provider({
    keyId: key.arn,
    retry: {
      attempts: options.attempts ?? 3,
      baseDelayMs: 5,
      maxDelayMs: 20,
      timeoutMs: options.timeoutMs ?? 5000,
    },
  });
  h.kms.resetCalls();
  return { key, value, provider, reader: new Envelope({ encrypt: provider }) };
}

describe("transient faults: retried with backoff, bounded, then typed", () => {
  it("throttling on every call: exactly `attempts` requests, then ENVELOPE_KMS_THROTTLED naming provider, key and cause", async () => {
    const { key, value, reader } = await sealed({ attempts: 3 });
    h.kms.faults.throttleEvery = 1;
    const error = await failure(reader.decrypt(value, { context: CONTEXT }));
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.code).toBe("ENVELOPE_KMS_THROTTLED");
    expect(error.message).toContain("aws-kms Decrypt");
    expect(error.message).toContain(key.arn);
    expect(error.message).toContain("ThrottlingException");
    expect(error.message).toContain("Gave up after 3 attempt(s)");
    expect(error.details).toMatchObject({ provider: "aws-kms", keyRef: key.arn, attempts: 3 });
    expect(h.kms.calls.Decrypt).toBe(3); // the SDK's own retries are off: 3 is the total
  });

  it("a throttled Decrypt succeeds on the retry (every 2nd request throttled)", async () => {
    const { key, value, reader } = await sealed();
    const second = await new Envelope({ encrypt: h.provider({ keyId: key.arn }) }).encrypt("w", {
      output: "binary",
      context: CONTEXT,
    });
    h.kms.resetCalls();
    h.kms.faults.throttleEvery = 2;
    expect((await reader.decrypt(value, { context: CONTEXT })).toString()).toBe("v"); // request 1
    expect((await reader.decrypt(second, { context: CONTEXT })).toString()).toBe("w"); // 2 throttled, 3 ok
    expect(h.kms.calls.Decrypt).toBe(3);
  });

  it("every 2nd request throttled: encrypt succeeds with exactly 2 requests", async () => {
    const key = h.kms.createKey();
    const envelope = new Envelope({ encrypt: h.provider({ keyId: key.arn }) });
    h.kms.faults.throttleEvery = 2;
    await envelope.encrypt("a"); // request 1: ok
    await envelope.encrypt("b"); // request 2: throttled, request 3: ok
    expect(h.kms.calls.GenerateDataKey).toBe(3);
  });

  it("5xx on every call: ENVELOPE_KMS_UNAVAILABLE after the configured number of attempts", async () => {
    const { key, value, reader } = await sealed({ attempts: 4 });
    h.kms.faults.failEvery = 1;
    const error = await failure(reader.decrypt(value, { context: CONTEXT }));
    expect(error.code).toBe("ENVELOPE_KMS_UNAVAILABLE");
    expect(error.message).toContain("KMSInternalException, HTTP 500");
    expect(error.message).toContain(key.arn);
    expect(error.details).toMatchObject({ attempts: 4 });
    expect(h.kms.calls.Decrypt).toBe(4);
  });

  it("a hung server hits ENVELOPE_KMS_TIMEOUT within the configured timeout", async () => {
    const { key, value, reader } = await sealed({ attempts: 2, timeoutMs: 150 });
    h.kms.faults.hang = true;
    const started = performance.now();
    const error = await failure(reader.decrypt(value, { context: CONTEXT }));
    const elapsed = performance.now() - started;
    expect(error.code).toBe("ENVELOPE_KMS_TIMEOUT");
    expect(error.message).toContain(key.arn);
    expect(h.kms.calls.Decrypt).toBe(2);
    expect(elapsed).toBeGreaterThanOrEqual(200); // more than one 150 ms timeout (loop-clock slack)
    expect(elapsed).toBeLessThan(2000); // 2 × 150 ms plus backoff, far below the SDK's defaults
  });

  it("dropped connections are retried, and fail as ENVELOPE_KMS_UNAVAILABLE when they persist", async () => {
    const { value, reader } = await sealed({ attempts: 3 });
    h.kms.faults.dropEvery = 1;
    const error = await failure(reader.decrypt(value, { context: CONTEXT }));
    expect(error.code).toBe("ENVELOPE_KMS_UNAVAILABLE");
    expect(h.kms.calls.Decrypt).toBe(3);
    h.kms.resetCalls();
    h.kms.faults = { dropEvery: 2 };
    const envelope = new Envelope({ encrypt: h.provider({ keyId: h.kms.createKey().arn }) });
    await envelope.encrypt("a");
    await envelope.encrypt("b"); // request 2 dropped, request 3 answers
    expect(h.kms.calls.GenerateDataKey).toBe(3);
  });
});

describe("permanent failures: one request, each its own code", () => {
  it.each([
    [
      "an unknown access key",
      { accessKeyId: "AKIAUNKNOWN000000000", secretAccessKey: "x" },
      "UnrecognizedClientException",
    ],
    ["a wrong secret key", undefined, "InvalidSignatureException"],
  ])("%s -> ENVELOPE_KMS_ACCESS_DENIED", async (_label, credentials, awsError) => {
    const key = h.kms.createKey();
    const provider = h.provider({
      keyId: key.arn,
      credentials: credentials ?? { ...h.kms.credentials, secretAccessKey: "wrong-secret" },
    });
    const error = await failure(
      new Envelope({ encrypt: provider }).encrypt("v", { context: CONTEXT, output: "binary" }),
    );
    expect(error.code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    expect(error.details).toMatchObject({ awsError, keyRef: key.arn, provider: "aws-kms" });
    expect(h.kms.calls.GenerateDataKey).toBe(1);
  });

  it("a policy denial (AccessDeniedException) -> ENVELOPE_KMS_ACCESS_DENIED", async () => {
    const { value, reader, key } = await sealed();
    h.kms.deny("Decrypt", key.arn);
    const error = await failure(reader.decrypt(value, { context: CONTEXT }));
    expect(error.code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    expect(error.details).toMatchObject({ awsError: "AccessDeniedException" });
    expect(h.kms.calls.Decrypt).toBe(1);
  });

  it("a disabled key -> ENVELOPE_KEY_DISABLED on encrypt and decrypt", async () => {
    const { key, value, reader } = await sealed();
    h.kms.disableKey(key.arn);
    for (const attempt of [
      reader.decrypt(value, { context: CONTEXT }),
      reader.encrypt("w", { context: CONTEXT, output: "binary" }),
    ]) {
      const error = await failure(attempt);
      expect(error.code).toBe("ENVELOPE_KEY_DISABLED");
      expect(error.details).toMatchObject({ awsError: "DisabledException" });
      expect(error.message).toContain("Enable the key");
    }
    expect(h.kms.calls).toEqual({ Decrypt: 1, GenerateDataKey: 1 });
  });

  it("a key pending deletion -> ENVELOPE_KEY_DISABLED (KMSInvalidStateException), a deleted key -> ENVELOPE_KEY_NOT_FOUND", async () => {
    const { key, value, reader } = await sealed();
    h.kms.scheduleKeyDeletion(key.arn);
    const pending = await failure(reader.decrypt(value, { context: CONTEXT }));
    expect(pending.code).toBe("ENVELOPE_KEY_DISABLED");
    expect(pending.details).toMatchObject({ awsError: "KMSInvalidStateException" });
    expect(pending.message).toContain("cancel-key-deletion");
    h.kms.deleteKeyNow(key.arn);
    const gone = await failure(reader.decrypt(value, { context: CONTEXT }));
    expect(gone.code).toBe("ENVELOPE_KEY_NOT_FOUND");
    expect(gone.details).toMatchObject({ awsError: "NotFoundException" });
  });

  it("an alias that does not exist -> ENVELOPE_KEY_NOT_FOUND", async () => {
    const provider = h.provider({ keyId: "alias/missing", region: "us-east-1" });
    const error = await failure(new Envelope({ encrypt: provider }).encrypt("v"));
    expect(error.code).toBe("ENVELOPE_KEY_NOT_FOUND");
    expect(error.message).toContain("alias/missing");
  });

  it("a wrong context -> ENVELOPE_KMS_CONTEXT_MISMATCH, not retried", async () => {
    const { value, reader } = await sealed();
    const error = await failure(
      reader.decrypt(value, { context: { ...CONTEXT, column: "phone" } }),
    );
    expect(error.code).toBe("ENVELOPE_KMS_CONTEXT_MISMATCH");
    expect(error.message).toContain("context");
    expect(h.kms.calls.Decrypt).toBe(1);
  });

  it("an entry relabelled with another key's ARN -> IncorrectKeyException -> ENVELOPE_UNWRAP_FAILED", async () => {
    const { value } = await sealed();
    const other = h.kms.createKey();
    const parts = decodeEnvelope(value);
    const forged = encodeEnvelope({
      ...parts,
      entries: [{ ...parts.entries[0]!, keyRef: other.arn }],
    });
    const reader = new Envelope({ encrypt: h.provider({ keyId: other.arn }) });
    const error = await failure(reader.decrypt(forged, { context: CONTEXT }));
    expect(error.code).toBe("ENVELOPE_UNWRAP_FAILED");
    expect(error.details).toMatchObject({ awsError: "IncorrectKeyException", keyRef: other.arn });
  });

  it("nothing is half-written: a failed rewrap leaves the original envelope usable", async () => {
    const { key, value, reader } = await sealed();
    const target = h.kms.createKey();
    h.kms.disableKey(target.arn);
    const to = h.provider({ keyId: target.arn, decryptKeys: [key.arn] });
    const error = await failure(reader.rewrap(value, { to, context: CONTEXT }));
    expect(error.code).toBe("ENVELOPE_KEY_DISABLED");
    expect((await reader.decrypt(value, { context: CONTEXT })).toString()).toBe("v");
  });

  it("an endpoint answering for another key is a contract error, not a plaintext", async () => {
    const arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const liar = {
      send: async () => ({
        KeyId: arn.replace("1234abcd", "99999999"),
        Plaintext: new Uint8Array(32),
        $metadata: {},
      }),
    };
    const provider = awsKmsProvider({ keyId: arn, client: liar as never });
    const error = await failure(
      provider.unwrap(
        { providerId: "aws-kms", keyRef: arn, wrapped: new Uint8Array(10) },
        { context: {} },
      ),
    );
    expect(error.code).toBe("ENVELOPE_PROVIDER_CONTRACT");
  });

  it("GenerateDataKey, Encrypt or ReEncrypt answering for another key than the configured one is a contract error, nothing sealed", async () => {
    // Found by a KMS server written apart from ours: the answer's KeyId was recorded as the
    // entry's key although the blob was wrapped under the configured key, so the value could
    // never be opened (NO_MATCHING_KEY / IncorrectKeyException).
    const arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const other = arn.replace("1234abcd", "99999999");
    const answering = (keyId: string) => ({
      send: async () => ({
        KeyId: keyId,
        Plaintext: new Uint8Array(32).fill(7),
        CiphertextBlob: new Uint8Array(48).fill(1),
        $metadata: {},
      }),
    });
    for (const configured of [arn, "1234abcd-12ab-34cd-56ef-1234567890ab"]) {
      const liar = awsKmsProvider({
        keyId: configured,
        region: "us-east-1",
        client: answering(other) as never,
      });
      const encrypt = await failure(
        new Envelope({ encrypt: liar }).encrypt("v", { context: CONTEXT }),
      );
      expect(encrypt.code).toBe("ENVELOPE_PROVIDER_CONTRACT");
      expect(encrypt.message).toContain("another key");
      const wrap = await failure(liar.wrap(new Uint8Array(32), { context: CONTEXT }));
      expect(wrap.code).toBe("ENVELOPE_PROVIDER_CONTRACT");
      // The honest answer is accepted, by key ARN and by key id in the configured region.
      const honest = awsKmsProvider({
        keyId: configured,
        region: "us-east-1",
        client: answering(arn) as never,
      });
      expect((await honest.wrap(new Uint8Array(32), { context: CONTEXT })).keyRef).toBe(arn);
    }
    // An alias may point at any key: its answer is recorded as given.
    const alias = "arn:aws:kms:us-east-1:111122223333:alias/pii";
    const viaAlias = awsKmsProvider({ keyId: alias, client: answering(other) as never });
    expect((await viaAlias.wrap(new Uint8Array(32), { context: CONTEXT })).keyRef).toBe(other);
  });
});
