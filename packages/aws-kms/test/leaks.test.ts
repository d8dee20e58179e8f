import { type AwsKmsProvider, AwsKmsServiceError, awsKmsProvider } from "@envelope/aws-kms";
import { Envelope, EnvelopeError } from "@envelope/core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AwsKmsTestServer, startAwsKmsServer } from "../../../test/servers/aws-kms.js";
import { findCanaries, surfaces } from "../../../test/support/secret-surfaces.js";

// Role credentials (ECS task role, EC2 instance profile, IRSA) always carry a session
// token; the SDK sends it as x-amz-security-token and keeps the request on `$response`.
const ACCESS_KEY_ID = "ASIACANARY7KEYID0001";
const SECRET = "CANARYsecret/wJalrXUtnFEMI/K7MDENG/bPxRfiCY";
const SESSION_TOKEN =
  "IQoJb3JpZ2luX2VjCANARYsessionTOKEN//////////wEaCXVzLWVhc3QtMSJHMEUCIQD6canary0token0body";
const CANARIES = [ACCESS_KEY_ID, SECRET, SESSION_TOKEN, "CANARY"];
const CONTEXT = { table: "users", column: "ssn", id: "7" };

let kms: AwsKmsTestServer;
const made: AwsKmsProvider[] = [];
beforeAll(async () => {
  kms = await startAwsKmsServer({
    accessKeys: { [ACCESS_KEY_ID]: SECRET, AKIAOTHERKEY00000001: "other-secret" },
  });
});
afterAll(async () => {
  for (const p of made) p.destroy();
  await kms.close();
});
beforeEach(() => {
  kms.faults = {};
  kms.allowAll();
});

function provider(
  keyId: string,
  options: { secret?: string; accessKeyId?: string; timeoutMs?: number } = {},
): AwsKmsProvider {
  const p = awsKmsProvider({
    keyId,
    endpoint: kms.url,
    credentials: {
      accessKeyId: options.accessKeyId ?? ACCESS_KEY_ID,
      secretAccessKey: options.secret ?? SECRET,
      sessionToken: SESSION_TOKEN,
    },
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2, timeoutMs: options.timeoutMs ?? 5000 },
  });
  made.push(p);
  return p;
}

async function rejection(promise: Promise<unknown>): Promise<EnvelopeError> {
  const error = await promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
  if (!EnvelopeError.isInstance(error)) throw error;
  return error;
}

/** A fresh key and a value sealed under it (with the canary credentials, no fault). */
async function sealed() {
  const key = kms.createKey();
  const value = await new Envelope({ encrypt: provider(key.arn) }).encrypt("123-45-6789", {
    context: CONTEXT,
  });
  return { key, value };
}

const reader = (arn: string, options?: Parameters<typeof provider>[1]) =>
  new Envelope({ encrypt: provider(arn, options), cache: false });

describe("aws-kms: no credential on any surface of an error (canary credentials, real KMSClient)", () => {
  const cases: [string, string, () => Promise<EnvelopeError>][] = [
    [
      "AccessDeniedException on GenerateDataKey (encrypt)",
      "ENVELOPE_KMS_ACCESS_DENIED",
      async () => {
        const key = kms.createKey();
        kms.deny("GenerateDataKey");
        return rejection(reader(key.arn).encrypt("x", { context: CONTEXT }));
      },
    ],
    [
      "AccessDeniedException on Decrypt",
      "ENVELOPE_KMS_ACCESS_DENIED",
      async () => {
        const { key, value } = await sealed();
        kms.deny("Decrypt");
        return rejection(reader(key.arn).decrypt(value, { context: CONTEXT }));
      },
    ],
    [
      "AccessDeniedException on ReEncrypt (rewrap)",
      "ENVELOPE_KMS_ACCESS_DENIED",
      async () => {
        const { key, value } = await sealed();
        kms.deny("ReEncrypt");
        return rejection(reader(key.arn).rewrap(value, { context: CONTEXT, force: true }));
      },
    ],
    [
      "ThrottlingException on every request",
      "ENVELOPE_KMS_THROTTLED",
      async () => {
        const { key, value } = await sealed();
        kms.faults = { throttleEvery: 1 };
        return rejection(reader(key.arn).decrypt(value, { context: CONTEXT }));
      },
    ],
    [
      "HTTP 500 on every request",
      "ENVELOPE_KMS_UNAVAILABLE",
      async () => {
        const key = kms.createKey();
        kms.faults = { failEvery: 1 };
        return rejection(reader(key.arn).encrypt("x", { context: CONTEXT }));
      },
    ],
    [
      "connection dropped on every request",
      "ENVELOPE_KMS_UNAVAILABLE",
      async () => {
        const { key, value } = await sealed();
        kms.faults = { dropEvery: 1 };
        return rejection(reader(key.arn).decrypt(value, { context: CONTEXT }));
      },
    ],
    [
      "no answer (timeout)",
      "ENVELOPE_KMS_TIMEOUT",
      async () => {
        const key = kms.createKey();
        kms.faults = { hang: true };
        return rejection(reader(key.arn, { timeoutMs: 150 }).encrypt("x", { context: CONTEXT }));
      },
    ],
    [
      "wrong secret key (InvalidSignatureException)",
      "ENVELOPE_KMS_ACCESS_DENIED",
      async () => {
        const key = kms.createKey();
        return rejection(
          reader(key.arn, { secret: `${SECRET}-rotated-CANARY` }).encrypt("x", {
            context: CONTEXT,
          }),
        );
      },
    ],
    [
      "unknown access key (UnrecognizedClientException)",
      "ENVELOPE_KMS_ACCESS_DENIED",
      async () => {
        const key = kms.createKey();
        return rejection(
          reader(key.arn, { accessKeyId: "ASIACANARYUNKNOWN001" }).encrypt("x", {
            context: CONTEXT,
          }),
        );
      },
    ],
    [
      "disabled key",
      "ENVELOPE_KEY_DISABLED",
      async () => {
        const { key, value } = await sealed();
        kms.disableKey(key.arn);
        return rejection(reader(key.arn).decrypt(value, { context: CONTEXT }));
      },
    ],
    [
      "wrong context (InvalidCiphertextException)",
      "ENVELOPE_KMS_CONTEXT_MISMATCH",
      async () => {
        const { key, value } = await sealed();
        return rejection(reader(key.arn).decrypt(value, { context: { ...CONTEXT, id: "8" } }));
      },
    ],
  ];

  it.each(cases)("%s: %s, and no canary on any surface", async (_name, code, provoke) => {
    const error = await provoke();
    // The code may sit on the error itself or on a ProviderError in its cause chain.
    const codes: string[] = [];
    for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
      if (EnvelopeError.isInstance(e)) codes.push(e.code);
    }
    expect(codes).toContain(code);
    expect(findCanaries(error, CANARIES)).toEqual([]);
  });

  it("the cause is an AwsKmsServiceError with the safe fields (name, fault, status, request id)", async () => {
    const key = kms.createKey();
    kms.deny("GenerateDataKey");
    const error = await rejection(reader(key.arn).encrypt("x", { context: CONTEXT }));
    const cause = error.cause as AwsKmsServiceError;
    expect(cause).toBeInstanceOf(AwsKmsServiceError);
    expect(cause).toMatchObject({
      name: "AwsKmsServiceError",
      awsError: "AccessDeniedException",
      fault: "client",
      httpStatusCode: 400,
    });
    expect(cause.message).toContain("AccessDeniedException (HTTP 400): User: arn:aws:iam::");
    expect(cause.message).toContain("kms:GenerateDataKey");
    expect(Object.getOwnPropertyNames(cause)).not.toContain("$response");
    expect(cause.cause).toBeUndefined();
    // The surfaces were really rendered: the request id and the AWS name are there.
    const all = surfaces(error)
      .map(([, text]) => text)
      .join("\n");
    expect(all).toContain("AccessDeniedException");
  });
});
