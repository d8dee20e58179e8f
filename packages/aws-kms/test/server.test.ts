/** The KMS test server itself, driven by the real SDK: shapes, states and HTTP codes. */
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  KMSClient,
  ReplicateKeyCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AwsKmsTestServer, startAwsKmsServer } from "../../../test/servers/aws-kms.js";

let kms: AwsKmsTestServer;
let client: KMSClient;
beforeAll(async () => {
  kms = await startAwsKmsServer();
  client = new KMSClient({
    region: "us-east-1",
    endpoint: kms.url,
    credentials: kms.credentials,
    maxAttempts: 1,
  });
});
afterAll(async () => {
  client.destroy();
  await kms.close();
});

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: { name: string; $metadata: { httpStatusCode?: number } }) => ({
      name: e.name,
      status: e.$metadata.httpStatusCode,
    }),
  );

describe("AWS KMS test server over the real SDK", () => {
  it("creates, describes and aliases keys with KMS's KeyMetadata shape", async () => {
    const { KeyMetadata } = await client.send(new CreateKeyCommand({ Description: "pii" }));
    expect(KeyMetadata).toMatchObject({
      AWSAccountId: "111122223333",
      Arn: `arn:aws:kms:us-east-1:111122223333:key/${KeyMetadata!.KeyId}`,
      Enabled: true,
      KeyState: "Enabled",
      KeySpec: "SYMMETRIC_DEFAULT",
      KeyUsage: "ENCRYPT_DECRYPT",
      MultiRegion: false,
    });
    expect(KeyMetadata!.CreationDate).toBeInstanceOf(Date);
    await client.send(
      new CreateAliasCommand({ AliasName: "alias/described", TargetKeyId: KeyMetadata!.KeyId }),
    );
    const byAlias = await client.send(new DescribeKeyCommand({ KeyId: "alias/described" }));
    expect(byAlias.KeyMetadata!.Arn).toBe(KeyMetadata!.Arn);
    expect(
      await rejection(
        client.send(
          new CreateAliasCommand({ AliasName: "alias/described", TargetKeyId: KeyMetadata!.KeyId }),
        ),
      ),
    ).toEqual({ name: "AlreadyExistsException", status: 400 });
    expect(await rejection(client.send(new DescribeKeyCommand({ KeyId: "alias/none" })))).toEqual({
      name: "NotFoundException",
      status: 400,
    });
  });

  it("GenerateDataKeyWithoutPlaintext blobs decrypt without a KeyId (the blob names its key)", async () => {
    const { KeyMetadata } = await client.send(new CreateKeyCommand({}));
    const out = await client.send(
      new GenerateDataKeyWithoutPlaintextCommand({
        KeyId: KeyMetadata!.Arn,
        KeySpec: "AES_256",
        EncryptionContext: { a: "1" },
      }),
    );
    expect(out).not.toHaveProperty("Plaintext");
    const plain = await client.send(
      new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, EncryptionContext: { a: "1" } }),
    );
    expect(plain.KeyId).toBe(KeyMetadata!.Arn);
    expect(plain.Plaintext).toHaveLength(32);
    expect(
      await rejection(client.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob }))),
    ).toEqual({
      name: "InvalidCiphertextException",
      status: 400,
    });
  });

  it("walks key states: DisableKey, EnableKey, ScheduleKeyDeletion, CancelKeyDeletion", async () => {
    const { KeyMetadata } = await client.send(new CreateKeyCommand({}));
    const KeyId = KeyMetadata!.KeyId!;
    const encrypt = () =>
      client.send(new EncryptCommand({ KeyId, Plaintext: new Uint8Array([1]) }));
    await client.send(new DisableKeyCommand({ KeyId }));
    expect(await rejection(encrypt())).toEqual({ name: "DisabledException", status: 400 });
    await client.send(new EnableKeyCommand({ KeyId }));
    await encrypt();
    const scheduled = await client.send(
      new ScheduleKeyDeletionCommand({ KeyId, PendingWindowInDays: 7 }),
    );
    expect(scheduled).toMatchObject({
      KeyId: KeyMetadata!.Arn,
      KeyState: "PendingDeletion",
      PendingWindowInDays: 7,
    });
    expect(scheduled.DeletionDate).toBeInstanceOf(Date);
    expect(await rejection(encrypt())).toEqual({ name: "KMSInvalidStateException", status: 400 });
    await client.send(new CancelKeyDeletionCommand({ KeyId }));
    const described = await client.send(new DescribeKeyCommand({ KeyId }));
    expect(described.KeyMetadata!.KeyState).toBe("Disabled");
  });

  it("RotateKeyOnDemand keeps old ciphertexts decryptable; ReplicateKey shares MRK material", async () => {
    const { KeyMetadata } = await client.send(new CreateKeyCommand({ MultiRegion: true }));
    const KeyId = KeyMetadata!.Arn!;
    const old = await client.send(new EncryptCommand({ KeyId, Plaintext: new Uint8Array([7]) }));
    await client.send(new RotateKeyOnDemandCommand({ KeyId }));
    const fresh = await client.send(new EncryptCommand({ KeyId, Plaintext: new Uint8Array([8]) }));
    expect(kms.inspectCiphertext(old.CiphertextBlob!).version).toBe(0);
    expect(kms.inspectCiphertext(fresh.CiphertextBlob!).version).toBe(1);
    expect(
      (await client.send(new DecryptCommand({ CiphertextBlob: old.CiphertextBlob }))).Plaintext,
    ).toEqual(new Uint8Array([7]));
    const { ReplicaKeyMetadata } = await client.send(
      new ReplicateKeyCommand({ KeyId, ReplicaRegion: "ap-south-1" }),
    );
    expect(ReplicaKeyMetadata!.MultiRegionConfiguration).toMatchObject({
      MultiRegionKeyType: "REPLICA",
      PrimaryKey: { Arn: KeyId, Region: "us-east-1" },
    });
    const mumbai = new KMSClient({
      region: "ap-south-1",
      endpoint: kms.url,
      credentials: kms.credentials,
      maxAttempts: 1,
    });
    const out = await mumbai.send(new DecryptCommand({ CiphertextBlob: fresh.CiphertextBlob }));
    expect(out.KeyId).toBe(ReplicaKeyMetadata!.Arn);
    mumbai.destroy();
  });

  it("answers 5xx as KMSInternalException and validates input as ValidationException", async () => {
    const { KeyMetadata } = await client.send(new CreateKeyCommand({}));
    kms.faults.failEvery = 1;
    expect(
      await rejection(client.send(new DescribeKeyCommand({ KeyId: KeyMetadata!.KeyId }))),
    ).toEqual({
      name: "KMSInternalException",
      status: 500,
    });
    kms.faults = {};
    expect(
      await rejection(
        client.send(
          new EncryptCommand({ KeyId: KeyMetadata!.KeyId, Plaintext: new Uint8Array(4097) }),
        ),
      ),
    ).toEqual({ name: "ValidationException", status: 400 });
  });
});
