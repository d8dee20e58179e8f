/**
 * Live tests against real AWS KMS. They run only when credentials (the SDK's default
 * chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a role…) and a test key are
 * configured:
 *
 *   ENVELOPE_TEST_AWS_KMS_KEY_ARN=arn:aws:kms:eu-west-1:111122223333:key/… \
 *   AWS_PROFILE=sandbox pnpm exec vitest run packages/aws-kms/test/live.test.ts
 *
 * The key needs the permissions in the README's key policy. Optional:
 * ENVELOPE_TEST_AWS_KMS_SECOND_KEY_ARN (same region) to test rewrap between two keys.
 */
import { awsKmsProvider } from "@envelope/aws-kms";
import { decodeEnvelope, Envelope } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { CONTEXT, failure } from "./helpers.js";

const keyArn = process.env.ENVELOPE_TEST_AWS_KMS_KEY_ARN;
const secondArn = process.env.ENVELOPE_TEST_AWS_KMS_SECOND_KEY_ARN;
const hasCredentials = Boolean(
  process.env.AWS_ACCESS_KEY_ID ||
    process.env.AWS_PROFILE ||
    process.env.AWS_WEB_IDENTITY_TOKEN_FILE ||
    process.env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI,
);

describe.skipIf(!keyArn || !hasCredentials)("aws-kms live (real AWS KMS)", () => {
  it("round-trips and records the key ARN", async () => {
    const provider = awsKmsProvider({ keyId: keyArn! });
    const envelope = new Envelope({ encrypt: provider });
    const sealed = await envelope.encrypt("live", { context: CONTEXT, output: "binary" });
    expect(decodeEnvelope(sealed).entries[0]!.keyRef).toBe(keyArn);
    expect(await envelope.decrypt(sealed, { context: CONTEXT, as: "text" })).toBe("live");
    provider.destroy();
  });

  it("KMS rejects a wrong encryption context", async () => {
    const provider = awsKmsProvider({ keyId: keyArn! });
    const envelope = new Envelope({ encrypt: provider, cache: false });
    const sealed = await envelope.encrypt("live", { context: CONTEXT });
    const error = await failure(envelope.decrypt(sealed, { context: { ...CONTEXT, id: "other" } }));
    expect(error.code).toBe("ENVELOPE_KMS_CONTEXT_MISMATCH");
    provider.destroy();
  });

  it("ReEncrypt rewraps an entry without Decrypt", async () => {
    const provider = awsKmsProvider({ keyId: keyArn! });
    const envelope = new Envelope({ encrypt: provider });
    const sealed = await envelope.encrypt("live", { context: CONTEXT, output: "binary" });
    const entry = decodeEnvelope(sealed).entries[0]!;
    const moved = await provider.rewrap!(entry, { context: CONTEXT });
    expect(moved.keyRef).toBe(keyArn);
    expect(Buffer.from(moved.wrapped).equals(Buffer.from(entry.wrapped))).toBe(false);
    provider.destroy();
  });

  it.skipIf(!secondArn)("rewraps to a second key natively and opens with it", async () => {
    const first = awsKmsProvider({ keyId: keyArn! });
    const second = awsKmsProvider({ keyId: secondArn!, decryptKeys: [keyArn!] });
    const sealed = await new Envelope({ encrypt: first }).encrypt("live", {
      context: CONTEXT,
      output: "binary",
    });
    const moved = await new Envelope({ encrypt: second }).rewrap(sealed, {
      to: second,
      context: CONTEXT,
    });
    expect(decodeEnvelope(moved).entries[0]!.keyRef).toBe(secondArn);
    const reader = new Envelope({ encrypt: awsKmsProvider({ keyId: secondArn! }) });
    expect(await reader.decrypt(moved, { context: CONTEXT, as: "text" })).toBe("live");
    first.destroy();
    second.destroy();
  });
});
