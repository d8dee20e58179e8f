import { AwsKmsServiceError, classifyAwsError, parseKeyId } from "@envelope/aws-kms";
import { describe, expect, it } from "vitest";

const target = {
  provider: "aws-kms",
  keyRef: "arn:aws:kms:us-east-1:111122223333:key/k",
  operation: "Decrypt",
};
const awsError = (name: string, status?: number, code?: string) =>
  Object.assign(new Error(`${name} message`), {
    name,
    ...(code ? { code } : {}),
    $metadata: status === undefined ? {} : { httpStatusCode: status },
  });

describe("classifyAwsError", () => {
  it.each([
    [awsError("ThrottlingException", 400), "ENVELOPE_KMS_THROTTLED"],
    [awsError("KMSInternalException", 500), "ENVELOPE_KMS_UNAVAILABLE"],
    [awsError("SomethingNew", 503), "ENVELOPE_KMS_UNAVAILABLE"],
    [awsError("TimeoutError", undefined, "ECONNRESET"), "ENVELOPE_KMS_UNAVAILABLE"],
    [awsError("TimeoutError", undefined, "ETIMEDOUT"), "ENVELOPE_KMS_TIMEOUT"],
    [awsError("TimeoutError"), "ENVELOPE_KMS_TIMEOUT"],
    [awsError("CredentialsProviderError"), "ENVELOPE_KMS_ACCESS_DENIED"],
    [awsError("ExpiredTokenException", 400), "ENVELOPE_KMS_ACCESS_DENIED"],
    [awsError("KMSInvalidStateException", 400), "ENVELOPE_KEY_DISABLED"],
    [awsError("ValidationException", 400), "ENVELOPE_KMS_ERROR"],
    [new Error("socket hang up"), "ENVELOPE_KMS_UNAVAILABLE"],
    ["not even an error", "ENVELOPE_KMS_ERROR"],
  ])("%s -> %s", (error, code) => {
    const typed = classifyAwsError(error, target);
    expect(typed.code).toBe(code);
    expect(typed.message).toContain(target.keyRef);
    expect(typed.message).toContain("aws-kms Decrypt");
    // Never the SDK error itself: a cause rebuilt from its safe fields.
    expect(typed.cause).not.toBe(error);
    expect(typed.cause).toBeInstanceOf(AwsKmsServiceError);
    expect((typed.cause as AwsKmsServiceError).awsError).toBe(
      error instanceof Error ? error.name : "Error",
    );
  });

  it("the cause drops $response and the request, and redacts key ids and long secrets in AWS's message", () => {
    const sdkError = Object.assign(
      new Error(
        "The security token AKIAIOSFODNN7EXAMPLE with secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY is invalid\n for arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
      ),
      {
        name: "UnrecognizedClientException",
        $fault: "client",
        $metadata: { httpStatusCode: 400, requestId: "5e1f-req" },
      },
    );
    Object.defineProperty(sdkError, "$response", {
      enumerable: false,
      value: { headers: { "x-amz-security-token": "SESSION-TOKEN-CANARY" } },
    });
    const cause = classifyAwsError(sdkError, target).cause as AwsKmsServiceError;
    expect(cause).toMatchObject({
      awsError: "UnrecognizedClientException",
      fault: "client",
      httpStatusCode: 400,
      requestId: "5e1f-req",
    });
    expect(cause.message).toBe(
      "UnrecognizedClientException (HTTP 400): The security token [redacted] with secret [redacted] is invalid for arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    );
    expect(Reflect.ownKeys(cause)).not.toContain("$response");
  });
});

describe("parseKeyId", () => {
  it.each([
    [
      "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
      "key-arn",
      "eu-west-1",
      false,
    ],
    [
      "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
      "key-arn",
      "us-gov-west-1",
      true,
    ],
    ["arn:aws:kms:eu-west-1:111122223333:alias/pii", "alias-arn", "eu-west-1", false],
    ["alias/pii", "alias-name", undefined, false],
    ["mrk-0123456789abcdef0123456789abcdef", "key-id", undefined, true],
    ["1234abcd-12ab-34cd-56ef-1234567890ab", "key-id", undefined, false],
  ])("%s", (value, kind, region, multiRegion) => {
    const parsed = parseKeyId(value);
    expect(parsed).toMatchObject({ kind, multiRegion, raw: value });
    expect(parsed?.region).toBe(region);
  });

  it.each(["", "pii", "arn:aws:s3:::bucket", "arn:aws:kms:eu-west-1:1111:key/x", "alias/"])(
    "rejects %j",
    (value) => {
      expect(parseKeyId(value)).toBeUndefined();
    },
  );
});
