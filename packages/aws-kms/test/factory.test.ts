import { providerFactory } from "@envelope/aws-kms";
import { createEnvelope, decodeEnvelope, registerProvider } from "@envelope/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CONTEXT, failure, type Harness, harness } from "./helpers.js";

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

const env = () => ({
  AWS_ACCESS_KEY_ID: h.kms.credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: h.kms.credentials.secretAccessKey,
});

describe("aws-kms providerFactory", () => {
  it("builds from aws-kms://<key ARN>?endpoint=…, taking the region from the ARN", async () => {
    const key = h.kms.createKey({ region: "eu-west-1" });
    const uri = `aws-kms://${key.arn}?endpoint=${encodeURIComponent(h.kms.url)}`;
    const provider = await providerFactory.fromUri(uri, env());
    expect(provider.keyRef).toBe(key.arn);
    const entry = (await provider.generateDataKey!({ context: CONTEXT })).entry;
    expect(entry.keyRef).toBe(key.arn);
    expect(h.kms.requests[0]).toMatchObject({ operation: "GenerateDataKey", region: "eu-west-1" });
  });

  it("reads kmsContext, grantTokens, decryptKeys, attempts and timeoutMs from the query", async () => {
    const key = h.kms.createKey();
    const { aliasArn } = h.kms.createAlias("alias/pii", key.arn);
    const other = h.kms.createKey();
    const uri = `aws-kms://${aliasArn}?endpoint=${h.kms.url}&kmsContext=table,column&grantTokens=g1,g2&decryptKeys=${other.arn}&attempts=2&timeoutMs=3000`;
    const provider = await providerFactory.fromUri(uri, env());
    expect(JSON.parse(JSON.stringify(provider))).toMatchObject({
      keyRef: aliasArn,
      kmsContext: ["table", "column"],
      decryptKeys: [other.arn],
    });
    await provider.generateDataKey!({ context: CONTEXT });
    expect(h.kms.requests[0]).toMatchObject({
      encryptionContext: { table: "users", column: "email" },
      grantTokens: ["g1", "g2"],
    });
    h.kms.faults.throttleEvery = 1;
    expect((await failure(provider.generateDataKey!({ context: CONTEXT }))).details).toMatchObject({
      attempts: 2,
    });
    expect(h.kms.calls.GenerateDataKey).toBe(3);
  });

  it.each([
    "aws-kms://alias/pii",
    "aws-kms://1234abcd-12ab-34cd-56ef-1234567890ab",
    "aws-kms://arn:aws:s3:::bucket",
    "aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab?region=eu-west-1",
    "aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab?attempts=0",
    "aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab?kmsContext=",
  ])("rejects %s with a ConfigError", async (uri) => {
    const error = await failure(providerFactory.fromUri(uri, {}));
    expect(error.code).toBe("ENVELOPE_BAD_CONFIG");
  });

  it("fromConfig accepts the provider options and rejects unknown fields", async () => {
    const key = h.kms.createKey();
    const provider = await providerFactory.fromConfig({
      provider: "aws-kms",
      keyId: key.arn,
      endpoint: h.kms.url,
      credentials: h.kms.credentials,
    });
    expect(provider.keyRef).toBe(key.arn);
    const error = await failure(
      providerFactory.fromConfig({ provider: "aws-kms", keyId: key.arn, keyArn: "x" }),
    );
    expect(error).toMatchObject({ code: "ENVELOPE_BAD_CONFIG", details: { field: "keyArn" } });
  });

  it("config alone selects AWS KMS through createEnvelope", async () => {
    registerProvider("aws-kms", async () => providerFactory, { override: true });
    const key = h.kms.createKey();
    const envelope = await createEnvelope(
      { encrypt: `aws-kms://${key.arn}?endpoint=${h.kms.url}` },
      { ...env() },
    );
    const sealed = await envelope.encrypt("from config", { context: CONTEXT, output: "binary" });
    expect(decodeEnvelope(sealed).entries[0]).toMatchObject({
      providerId: "aws-kms",
      keyRef: key.arn,
    });
    expect(await envelope.decrypt(sealed, { context: CONTEXT, as: "text" })).toBe("from config");
    const byObject = await createEnvelope({
      encrypt: {
        provider: "aws-kms",
        keyId: key.arn,
        endpoint: h.kms.url,
        credentials: h.kms.credentials,
      },
    });
    expect(await byObject.decrypt(sealed, { context: CONTEXT, as: "text" })).toBe("from config");
  });
});
