import { classifyAwsError, parseKeyId } from "@envelope/aws-kms";
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
    expect(typed.cause).toBe(error);
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
