// @envelope/aws-kms (public API only, as its README shows it) against ./server.ts, an AWS
// KMS test server written from the AWS KMS API reference apart from test/servers/aws-kms.ts.
//
// Run: pnpm exec vitest run test/independent/aws-kms
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import { AwsKmsServiceError, awsKmsProvider } from "@envelope/aws-kms";
import {
  createEnvelope,
  decodeEnvelope,
  Envelope,
  EnvelopeError,
  inspectEnvelope,
  type KeyProvider,
  ProviderError,
} from "@envelope/core";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { sdk } from "./sdk.js";
import { ACCOUNT, type KmsTestServer, type PolicyStatement, startKmsServer } from "./server.js";

const { DecryptCommand, DescribeKeyCommand, EncryptCommand, GenerateDataKeyCommand, KMSClient } =
  sdk;

const REGION = "eu-west-1";
const PLAINTEXT = "alice@example.com";
const context = { table: "users", column: "email", id: "42" };
const SESSION = {
  accessKeyId: "ASIAINDEPENDENTCANARY",
  secretAccessKey: "CanarySecretKey0000000000000000000000000x",
  sessionToken: "CanarySessionToken".repeat(8),
};

let kms: KmsTestServer;
let keyA: ReturnType<KmsTestServer["createKey"]>;
let keyB: ReturnType<KmsTestServer["createKey"]>;
const providers: { destroy(): void }[] = [];

beforeAll(async () => {
  kms = await startKmsServer({ credentials: SESSION });
  keyA = kms.createKey(REGION);
  keyB = kms.createKey(REGION);
  kms.createAlias("alias/pii", keyA);
});
afterAll(async () => {
  for (const p of providers) p.destroy();
  await kms.close();
});
afterEach(() => kms.clearFaults());

const aliasArn = `arn:aws:kms:${REGION}:${ACCOUNT}:alias/pii`;

function provider(options: Partial<Parameters<typeof awsKmsProvider>[0]> & { keyId: string }) {
  const p = awsKmsProvider({
    endpoint: kms.url,
    credentials: SESSION,
    ...options,
  });
  providers.push(p);
  return p;
}

/** The requests made by `fn`. */
async function during<T>(fn: () => Promise<T>) {
  const from = kms.requests.length;
  let result: T | undefined;
  let error: unknown;
  try {
    result = await fn();
  } catch (e) {
    error = e;
  }
  return { result, error, requests: kms.requests.slice(from) };
}

/** Everything an error can show a log: message, stack, JSON, inspect (hidden too), the causes. */
function everythingShown(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let i = 0; e && i < 10; i++) {
    const err = e as Error & { details?: unknown };
    parts.push(
      String(err.message),
      String(err.stack),
      JSON.stringify(err),
      JSON.stringify(err.details ?? {}),
    );
    e = err.cause;
  }
  parts.push(inspect(error, { showHidden: true, depth: Number.POSITIVE_INFINITY }));
  return parts.join("\n");
}

/** Credentials, the plaintext, and every data key KMS handed out or was handed in `requests`. */
function secretsOf(requests: KmsTestServer["requests"]): string[] {
  const out = [SESSION.secretAccessKey, SESSION.sessionToken, SESSION.accessKeyId, PLAINTEXT];
  for (const r of requests) {
    const v = r.response?.Plaintext ?? r.body.Plaintext;
    if (typeof v === "string" && v.length >= 16) {
      out.push(v, Buffer.from(v, "base64").toString("hex"));
    }
  }
  return out;
}

function expectNoSecrets(error: unknown, requests: KmsTestServer["requests"]) {
  const shown = everythingShown(error);
  for (const s of secretsOf(requests)) expect(shown).not.toContain(s);
}

describe("the independent server speaks AWS KMS to the official SDK", () => {
  const client = () =>
    new KMSClient({ region: REGION, endpoint: kms.url, credentials: SESSION, maxAttempts: 1 });

  it("Decrypt without KeyId finds the key from the ciphertext; EncryptionContext must match exactly", async () => {
    const c = client();
    const ec = { a: "1", b: "2" };
    const enc = await c.send(
      new EncryptCommand({
        KeyId: "alias/pii",
        Plaintext: Buffer.from("x"),
        EncryptionContext: ec,
      }),
    );
    expect(enc.KeyId).toBe(keyA.arn);
    const dec = await c.send(
      new DecryptCommand({
        CiphertextBlob: enc.CiphertextBlob,
        EncryptionContext: { b: "2", a: "1" },
      }),
    );
    expect(dec.KeyId).toBe(keyA.arn);
    expect(Buffer.from(dec.Plaintext!).toString()).toBe("x");
    const bads: (Record<string, string> | undefined)[] = [
      { a: "1" },
      { a: "1", b: "2", c: "3" },
      { a: "1", b: "3" },
      undefined,
    ];
    for (const bad of bads) {
      await expect(
        c.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: bad })),
      ).rejects.toMatchObject({
        name: "InvalidCiphertextException",
        $metadata: { httpStatusCode: 400 },
      });
    }
    await expect(
      c.send(
        new DecryptCommand({
          CiphertextBlob: enc.CiphertextBlob,
          EncryptionContext: ec,
          KeyId: keyB.arn,
        }),
      ),
    ).rejects.toMatchObject({ name: "IncorrectKeyException" });
    const gdk = await c.send(new GenerateDataKeyCommand({ KeyId: keyA.id, KeySpec: "AES_256" }));
    expect(gdk.Plaintext).toHaveLength(32);
    const meta = await c.send(new DescribeKeyCommand({ KeyId: aliasArn }));
    expect(meta.KeyMetadata?.Arn).toBe(keyA.arn);
    await expect(c.send(new DescribeKeyCommand({ KeyId: "alias/nope" }))).rejects.toMatchObject({
      name: "NotFoundException",
    });
    const bad = new KMSClient({
      region: REGION,
      endpoint: kms.url,
      credentials: { ...SESSION, secretAccessKey: "wrong" },
      maxAttempts: 1,
    });
    await expect(bad.send(new DescribeKeyCommand({ KeyId: keyA.id }))).rejects.toMatchObject({
      name: "InvalidSignatureException",
    });
    const other = new KMSClient({
      region: "us-east-1",
      endpoint: kms.url,
      credentials: SESSION,
      maxAttempts: 1,
    });
    await expect(other.send(new DescribeKeyCommand({ KeyId: keyA.arn }))).rejects.toMatchObject({
      name: "NotFoundException",
    });
    for (const x of [c, bad, other]) x.destroy();
  });
});

describe("round trips, as the README shows them", () => {
  it("new Envelope({ encrypt: awsKmsProvider({ keyId: <alias ARN> }) }): GenerateDataKey, then Decrypt by key ARN, context sent both times", async () => {
    const envelope = new Envelope({ encrypt: provider({ keyId: aliasArn }), cache: false });
    const { result: sealed, requests: w } = await during(() =>
      envelope.encrypt(PLAINTEXT, { context }),
    );
    expect(w.map((r) => r.operation)).toEqual(["GenerateDataKey"]);
    expect(w[0]!.headers["x-amz-target"]).toBe("TrentService.GenerateDataKey");
    expect(w[0]!.headers["content-type"]).toBe("application/x-amz-json-1.1");
    expect(w[0]!.body).toMatchObject({
      KeyId: aliasArn,
      KeySpec: "AES_256",
      EncryptionContext: context,
    });
    expect(inspectEnvelope(sealed!).entries.map((e) => e.keyRef)).toEqual([keyA.arn]);

    const { result, requests: r } = await during(() =>
      envelope.decrypt(sealed!, { context, as: "text" }),
    );
    expect(result).toBe(PLAINTEXT);
    expect(r.map((q) => q.operation)).toEqual(["Decrypt"]);
    expect(r[0]!.body).toMatchObject({
      KeyId: keyA.arn,
      EncryptionContext: context,
      EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
    });
    // "Never sent: the plaintext you encrypt, the envelope body"
    const sent = JSON.stringify([...w, ...r].map((q) => q.body));
    expect(sent).not.toContain(PLAINTEXT);
    expect(sent).not.toContain(Buffer.from(PLAINTEXT).toString("base64"));
    expect(sent).not.toContain(
      Buffer.from(decodeEnvelope(sealed!).body).toString("base64").slice(0, 16),
    );
  });

  it("a context in any key order, with Unicode and ':' in keys, opens; KMS sees it as given", async () => {
    const envelope = new Envelope({ encrypt: provider({ keyId: keyA.arn }), cache: false });
    const unicode = { "tenant:id": "çà-日本", "a b": "x\u00e9", z: "1" };
    const sealed = await envelope.encrypt(PLAINTEXT, { context: unicode });
    const reordered = { z: "1", "a b": "x\u00e9", "tenant:id": "çà-日本" };
    const { result, requests } = await during(() =>
      envelope.decrypt(sealed, { context: reordered, as: "text" }),
    );
    expect(result).toBe(PLAINTEXT);
    expect(requests[0]!.body.EncryptionContext).toEqual(unicode);
  });

  it("createEnvelope({ encrypt: 'aws-kms://<alias ARN>?endpoint=…' }, env) opens what the code-built client sealed", async () => {
    const fromCode = new Envelope({ encrypt: provider({ keyId: aliasArn }) });
    const sealed = await fromCode.encrypt(PLAINTEXT, { context });
    const env = {
      AWS_ACCESS_KEY_ID: SESSION.accessKeyId,
      AWS_SECRET_ACCESS_KEY: SESSION.secretAccessKey,
      AWS_SESSION_TOKEN: SESSION.sessionToken,
    };
    const fromConfig = await createEnvelope(
      { encrypt: `aws-kms://${aliasArn}?endpoint=${encodeURIComponent(kms.url)}` },
      env,
    );
    expect(await fromConfig.decrypt(sealed, { context, as: "text" })).toBe(PLAINTEXT);
    const again = await fromConfig.encrypt(PLAINTEXT, { context });
    expect(await fromCode.decrypt(again, { context, as: "text" })).toBe(PLAINTEXT);
    // { provider: "aws-kms", …options } in config, as the Options heading says
    const fromObject = await createEnvelope({
      encrypt: { provider: "aws-kms", keyId: keyA.arn, endpoint: kms.url, credentials: SESSION },
    } as never);
    expect(await fromObject.decrypt(sealed, { context, as: "text" })).toBe(PLAINTEXT);
  });

  it.each([
    ["key id", () => ({ keyId: keyA.id, region: REGION })],
    ["key ARN", () => ({ keyId: keyA.arn })],
    ["alias name", () => ({ keyId: "alias/pii", region: REGION })],
    ["alias ARN", () => ({ keyId: aliasArn })],
  ])(
    "keyId as %s: entries record the key ARN and open with any other form",
    async (_name, opts) => {
      const envelope = new Envelope({ encrypt: provider(opts()), cache: false });
      const sealed = await envelope.encrypt(PLAINTEXT, { context });
      expect(inspectEnvelope(sealed).entries[0]!.keyRef).toBe(keyA.arn);
      for (const other of [
        { keyId: keyA.arn },
        { keyId: "alias/pii", region: REGION },
        { keyId: keyA.id, region: REGION },
      ]) {
        const reader = new Envelope({ encrypt: provider(other), cache: false });
        expect(await reader.decrypt(sealed, { context, as: "text" })).toBe(PLAINTEXT);
      }
    },
  );

  it("multi-wrap: Encrypt under a second key, either key alone opens the value", async () => {
    const envelope = new Envelope({
      encrypt: [provider({ keyId: keyA.arn }), provider({ keyId: keyB.arn })],
    });
    const { result: sealed, requests } = await during(() =>
      envelope.encrypt(PLAINTEXT, { context }),
    );
    expect(requests.map((r) => r.operation).sort()).toEqual(["Encrypt", "GenerateDataKey"]);
    const enc = requests.find((r) => r.operation === "Encrypt")!;
    expect(enc.body).toMatchObject({ KeyId: keyB.arn, EncryptionContext: context });
    for (const k of [keyA, keyB]) {
      const only = new Envelope({ encrypt: provider({ keyId: k.arn }), cache: false });
      expect(await only.decrypt(sealed!, { context, as: "text" })).toBe(PLAINTEXT);
    }
  });
});

describe("the encryption context reaches KMS", () => {
  it("a different, extra or missing context key is refused by KMS (InvalidCiphertextException) as a typed error", async () => {
    const envelope = new Envelope({ encrypt: provider({ keyId: keyA.arn }), cache: false });
    const sealed = await envelope.encrypt(PLAINTEXT, { context });
    for (const wrong of [
      { ...context, id: "43" },
      { ...context, extra: "x" },
      { table: "users", column: "email" },
    ]) {
      const { error, requests } = await during(() => envelope.decrypt(sealed, { context: wrong }));
      expect(requests.map((r) => [r.operation, r.errorType])).toEqual([
        ["Decrypt", "InvalidCiphertextException"],
      ]);
      expect(requests[0]!.body.EncryptionContext).toEqual(wrong);
      expect(error).toBeInstanceOf(EnvelopeError);
      expect((error as EnvelopeError).code).toBe("ENVELOPE_KMS_CONTEXT_MISMATCH");
      expect((error as Error).message).toMatch(/context/);
      expectNoSecrets(error, requests);
    }
  });

  it("kmsContext: ['table', 'column'] sends only those keys; the whole context is still bound", async () => {
    const envelope = new Envelope({
      encrypt: provider({ keyId: keyA.arn, kmsContext: ["table", "column"] }),
      cache: false,
    });
    const { result: sealed, requests } = await during(() =>
      envelope.encrypt(PLAINTEXT, { context }),
    );
    expect(requests[0]!.body.EncryptionContext).toEqual({ table: "users", column: "email" });
    const { error, requests: r } = await during(() =>
      envelope.decrypt(sealed!, { context: { ...context, id: "43" } }),
    );
    expect(r[0]!.body.EncryptionContext).toEqual({ table: "users", column: "email" });
    expect(error).toBeInstanceOf(EnvelopeError); // Envelope's own AAD
  });

  it("the unwrap cache never answers a context KMS would refuse", async () => {
    const envelope = new Envelope({ encrypt: provider({ keyId: keyA.arn }) });
    const sealed = await envelope.encrypt(PLAINTEXT, { context });
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(PLAINTEXT);
    const { error, requests } = await during(() =>
      envelope.decrypt(sealed, { context: { ...context, id: "7" } }),
    );
    expect(requests.map((r) => r.errorType)).toEqual(["InvalidCiphertextException"]);
    expect((error as EnvelopeError).code).toBe("ENVELOPE_KMS_CONTEXT_MISMATCH");
  });
});

describe("AWS errors become typed errors", () => {
  const fast = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, timeoutMs: 2000 };

  const cases: [string, Parameters<KmsTestServer["inject"]>[1], string, boolean][] = [
    [
      "AccessDeniedException (400)",
      { kind: "error", name: "AccessDeniedException" },
      "ENVELOPE_KMS_ACCESS_DENIED",
      false,
    ],
    [
      "AccessDeniedException (403)",
      { kind: "error", name: "AccessDeniedException", status: 403 },
      "ENVELOPE_KMS_ACCESS_DENIED",
      false,
    ],
    [
      "ThrottlingException",
      { kind: "error", name: "ThrottlingException", message: "Rate exceeded" },
      "ENVELOPE_KMS_THROTTLED",
      true,
    ],
    [
      "KMSInternalException (500)",
      { kind: "error", name: "KMSInternalException" },
      "ENVELOPE_KMS_UNAVAILABLE",
      true,
    ],
    [
      "DependencyTimeoutException (503)",
      { kind: "error", name: "DependencyTimeoutException", status: 503 },
      "ENVELOPE_KMS_UNAVAILABLE",
      true,
    ],
    [
      "KeyUnavailableException",
      { kind: "error", name: "KeyUnavailableException" },
      "ENVELOPE_KMS_UNAVAILABLE",
      true,
    ],
    ["a load balancer's HTML 503", { kind: "html", status: 503 }, "ENVELOPE_KMS_UNAVAILABLE", true],
    ["a dropped connection", { kind: "drop" }, "ENVELOPE_KMS_UNAVAILABLE", true],
    [
      "NotFoundException (404, the Smithy model's status)",
      { kind: "error", name: "NotFoundException", status: 404 },
      "ENVELOPE_KEY_NOT_FOUND",
      false,
    ],
    [
      "DisabledException (409)",
      { kind: "error", name: "DisabledException", status: 409 },
      "ENVELOPE_KEY_DISABLED",
      false,
    ],
    [
      "KMSInvalidStateException (409)",
      { kind: "error", name: "KMSInvalidStateException", status: 409 },
      "ENVELOPE_KEY_DISABLED",
      false,
    ],
    [
      "ValidationException",
      { kind: "error", name: "ValidationException" },
      "ENVELOPE_KMS_ERROR",
      false,
    ],
    [
      "ExpiredTokenException",
      {
        kind: "error",
        name: "ExpiredTokenException",
        message: "The security token included in the request is expired",
      },
      "ENVELOPE_KMS_ACCESS_DENIED",
      false,
    ],
  ];

  for (const operation of ["GenerateDataKey", "Decrypt"] as const) {
    it.each(cases)(`${operation}: %s`, async (_name, fault, code, retried) => {
      const envelope = new Envelope({
        encrypt: provider({ keyId: keyA.arn, retry: fast }),
        cache: false,
      });
      const sealed =
        operation === "Decrypt" ? await envelope.encrypt(PLAINTEXT, { context }) : undefined;
      kms.inject(operation, fault, 10);
      const from = kms.requests.length;
      const { error, requests } = await during(() =>
        sealed ? envelope.decrypt(sealed, { context }) : envelope.encrypt(PLAINTEXT, { context }),
      );
      const all = kms.requests.slice(from - (sealed ? 1 : 0));
      expect(requests).toHaveLength(retried ? 3 : 1);
      expect(error).toBeInstanceOf(ProviderError);
      const e = error as ProviderError;
      expect(e.code).toBe(code);
      expect(e.message).toContain(keyA.arn);
      expect(e.message).toContain(operation);
      expect(e.details).toMatchObject({ provider: "aws-kms", operation });
      expectNoSecrets(error, all);
    });
  }

  it("a throttled request is retried and then succeeds; a per-attempt hang times out (bounded)", async () => {
    const envelope = new Envelope({
      encrypt: provider({ keyId: keyA.arn, retry: fast }),
      cache: false,
    });
    kms.inject("GenerateDataKey", { kind: "error", name: "ThrottlingException" }, 2);
    const ok = await during(() => envelope.encrypt(PLAINTEXT, { context }));
    expect(ok.error).toBeUndefined();
    expect(ok.requests.map((r) => r.status)).toEqual([400, 400, 200]);

    const slow = new Envelope({
      encrypt: provider({ keyId: keyA.arn, retry: { ...fast, timeoutMs: 200 } }),
      cache: false,
    });
    kms.inject("GenerateDataKey", { kind: "hang" }, 10);
    const started = Date.now();
    const { error, requests } = await during(() => slow.encrypt(PLAINTEXT, { context }));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(requests).toHaveLength(3);
    expect((error as ProviderError).code).toBe("ENVELOPE_KMS_TIMEOUT");
  });

  it("real key states: disabled, pending deletion, unknown alias, deleted key", async () => {
    const k = kms.createKey(REGION);
    const p = provider({ keyId: k.arn, retry: fast });
    const envelope = new Envelope({ encrypt: p, cache: false });
    const sealed = await envelope.encrypt(PLAINTEXT, { context });
    kms.disableKey(k);
    for (const op of [
      () => envelope.encrypt(PLAINTEXT, { context }),
      () => envelope.decrypt(sealed, { context }),
    ]) {
      const { error, requests } = await during(op);
      expect(requests.map((r) => r.errorType)).toEqual(["DisabledException"]);
      expect((error as ProviderError).code).toBe("ENVELOPE_KEY_DISABLED");
      expect((error as Error).message).toMatch(/enable/i);
    }
    kms.scheduleKeyDeletion(k);
    const pending = await during(() => envelope.decrypt(sealed, { context }));
    expect(pending.requests.map((r) => r.errorType)).toEqual(["KMSInvalidStateException"]);
    expect((pending.error as ProviderError).code).toBe("ENVELOPE_KEY_DISABLED");
    expect((pending.error as Error).message).toMatch(/cancel-key-deletion/);
    kms.deleteKeyNow(k);
    const gone = await during(() => envelope.decrypt(sealed, { context }));
    expect(gone.requests.map((r) => r.errorType)).toEqual(["NotFoundException"]);
    expect((gone.error as ProviderError).code).toBe("ENVELOPE_KEY_NOT_FOUND");

    const noAlias = new Envelope({
      encrypt: provider({ keyId: `arn:aws:kms:${REGION}:${ACCOUNT}:alias/missing`, retry: fast }),
    });
    const na = await during(() => noAlias.encrypt(PLAINTEXT, { context }));
    expect(na.requests.map((r) => r.errorType)).toEqual(["NotFoundException"]);
    expect((na.error as ProviderError).code).toBe("ENVELOPE_KEY_NOT_FOUND");
  });

  it("a corrupted wrapped key is InvalidCiphertextException; another key's ARN on the entry is IncorrectKeyException", async () => {
    const p = provider({ keyId: keyA.arn, decryptKeys: [keyB.arn], retry: fast });
    const generated = await p.generateDataKey!({ context });
    const entry = generated.entry;
    const corrupt = { ...entry, wrapped: Uint8Array.from(entry.wrapped) };
    corrupt.wrapped[corrupt.wrapped.length - 1]! ^= 1;
    const c = await during(() => p.unwrap(corrupt, { context }));
    expect(c.requests.map((r) => r.errorType)).toEqual(["InvalidCiphertextException"]);
    expect((c.error as ProviderError).code).toBe("ENVELOPE_KMS_CONTEXT_MISMATCH");
    const relabelled = { ...entry, keyRef: keyB.arn };
    const i = await during(() => p.unwrap(relabelled, { context }));
    expect(i.requests.map((r) => r.errorType)).toEqual(["IncorrectKeyException"]);
    expect((i.error as ProviderError).code).toBe("ENVELOPE_UNWRAP_FAILED");
    expectNoSecrets(i.error, i.requests);
    generated.dataKey.fill(0);
  });

  it("credentials KMS rejects: wrong secret (InvalidSignatureException), unknown key id (UnrecognizedClientException); not retried, nothing leaked", async () => {
    for (const [credentials, type] of [
      [
        { ...SESSION, secretAccessKey: "WrongSecret000000000000000000000000000000x" },
        "InvalidSignatureException",
      ],
      [{ ...SESSION, accessKeyId: "ASIAUNKNOWNUNKNOWN00" }, "UnrecognizedClientException"],
    ] as const) {
      const envelope = new Envelope({
        encrypt: provider({ keyId: keyA.arn, credentials, retry: fast }),
      });
      const { error, requests } = await during(() => envelope.encrypt(PLAINTEXT, { context }));
      expect(requests.map((r) => r.errorType)).toEqual([type]);
      expect((error as ProviderError).code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
      expect((error as Error).cause).toBeInstanceOf(AwsKmsServiceError);
      expectNoSecrets(error, requests);
      expect(everythingShown(error)).not.toContain(credentials.secretAccessKey);
    }
  });

  it("a key policy that denies Decrypt: AccessDeniedException once, typed, audit events carry no secret", async () => {
    const k = kms.createKey(REGION);
    const events: unknown[] = [];
    const envelope = new Envelope({
      encrypt: provider({ keyId: k.arn, retry: fast }),
      cache: false,
      onAudit: (e) => events.push(e),
    });
    const sealed = await envelope.encrypt(PLAINTEXT, { context });
    kms.deny(k, "Decrypt");
    const { error, requests } = await during(() => envelope.decrypt(sealed, { context }));
    expect(requests.map((r) => r.errorType)).toEqual(["AccessDeniedException"]);
    expect((error as ProviderError).code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    expect((error as Error).message).toMatch(/kms:Decrypt/);
    expectNoSecrets(error, requests);
    const audit = inspect(events, { depth: 10, showHidden: true });
    for (const s of secretsOf(requests)) expect(audit).not.toContain(s);
  });
});

describe("more AWS answers, as other front ends write them", () => {
  const fast = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, timeoutMs: 2000 };
  const json = { "content-type": "application/x-amz-json-1.1" };

  it.each([
    [
      "namespaced __type",
      {
        status: 400,
        headers: json,
        body: JSON.stringify({
          __type: "com.amazonaws.kms#NotFoundException",
          message: "Alias is not found.",
        }),
      },
      "ENVELOPE_KEY_NOT_FOUND",
      1,
    ],
    [
      "x-amzn-ErrorType with a coral suffix and an empty body",
      {
        status: 400,
        headers: {
          ...json,
          "x-amzn-errortype":
            "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/",
        },
        body: "",
      },
      "ENVELOPE_KMS_ACCESS_DENIED",
      1,
    ],
    [
      "capitalised Message",
      {
        status: 400,
        headers: json,
        body: JSON.stringify({ __type: "DisabledException", Message: "key is disabled" }),
      },
      "ENVELOPE_KEY_DISABLED",
      1,
    ],
    [
      "coral UnrecognizedClientException",
      {
        status: 400,
        headers: json,
        body: JSON.stringify({
          __type: "com.amazon.coral.service#UnrecognizedClientException",
          message: "The security token included in the request is invalid.",
        }),
      },
      "ENVELOPE_KMS_ACCESS_DENIED",
      1,
    ],
    ["HTTP 500 with an empty body", { status: 500, body: "" }, "ENVELOPE_KMS_UNAVAILABLE", 3],
    [
      "HTTP 502 from a proxy",
      { status: 502, headers: { "content-type": "text/plain" }, body: "Bad Gateway" },
      "ENVELOPE_KMS_UNAVAILABLE",
      3,
    ],
    [
      "HTTP 429 ThrottlingException",
      {
        status: 429,
        headers: json,
        body: JSON.stringify({ __type: "ThrottlingException", message: "Rate exceeded" }),
      },
      "ENVELOPE_KMS_THROTTLED",
      3,
    ],
  ] as const)("%s", async (_name, raw, code, count) => {
    const envelope = new Envelope({
      encrypt: provider({ keyId: keyA.arn, retry: fast }),
      cache: false,
    });
    const sealed = await envelope.encrypt(PLAINTEXT, { context });
    kms.inject("Decrypt", { kind: "raw", ...raw }, 10);
    const { error, requests } = await during(() => envelope.decrypt(sealed, { context }));
    expect(requests).toHaveLength(count);
    expect((error as ProviderError).code).toBe(code);
    expect((error as Error).message).toContain(keyA.arn);
  });

  it.each([
    [
      "a bare HTTP 429 from a proxy or gateway",
      { status: 429, headers: { "content-type": "text/plain" }, body: "Too Many Requests" },
      "ENVELOPE_KMS_THROTTLED",
    ],
    [
      "HTTP 408 RequestTimeoutException (AWS common error: reading the request timed out)",
      {
        status: 408,
        headers: json,
        body: JSON.stringify({ __type: "RequestTimeoutException", message: "Request timed out" }),
      },
      "ENVELOPE_KMS_UNAVAILABLE",
    ],
  ] as const)(
    "%s is retried, as the SDK's retries the provider switched off would",
    async (_name, raw, code) => {
      const envelope = new Envelope({
        encrypt: provider({ keyId: keyA.arn, retry: fast }),
        cache: false,
      });
      kms.inject("GenerateDataKey", { kind: "raw", ...raw }, 2);
      const ok = await during(() => envelope.encrypt(PLAINTEXT, { context }));
      expect(ok.error).toBeUndefined();
      expect(ok.requests.map((r) => r.status)).toEqual([raw.status, raw.status, 200]);
      kms.inject("GenerateDataKey", { kind: "raw", ...raw }, 10);
      const { error, requests } = await during(() => envelope.encrypt(PLAINTEXT, { context }));
      expect(requests).toHaveLength(3);
      expect((error as ProviderError).code).toBe(code);
    },
  );

  it("an endpoint that answers for another key, or without the data key, is a contract error and nothing is returned", async () => {
    const envelope = new Envelope({
      encrypt: provider({ keyId: keyA.arn, retry: fast }),
      cache: false,
    });
    kms.inject("GenerateDataKey", { kind: "answer", patch: (r) => ({ ...r, KeyId: keyB.arn }) });
    const a = await during(() => envelope.encrypt(PLAINTEXT, { context }));
    expect(a.result).toBeUndefined();
    expect((a.error as ProviderError).code).toBe("ENVELOPE_PROVIDER_CONTRACT");
    kms.inject("GenerateDataKey", { kind: "answer", patch: ({ Plaintext: _p, ...r }) => r });
    const b = await during(() => envelope.encrypt(PLAINTEXT, { context }));
    expect((b.error as ProviderError).code).toBe("ENVELOPE_PROVIDER_CONTRACT");
    const sealed = await envelope.encrypt(PLAINTEXT, { context });
    kms.inject("Decrypt", { kind: "answer", patch: (r) => ({ ...r, KeyId: keyB.arn }) });
    const c = await during(() => envelope.decrypt(sealed, { context }));
    expect((c.error as ProviderError).code).toBe("ENVELOPE_PROVIDER_CONTRACT");
    expectNoSecrets(c.error, c.requests);
  });

  it("HTTP 200 with a body that is not KMS's JSON (a truncating proxy): a contract error, not 'KMS rejected the request'; the data key in it is not shown", async () => {
    const envelope = new Envelope({
      encrypt: provider({ keyId: keyA.arn, retry: fast }),
      cache: false,
    });
    const dataKey = randomBytes(32).toString("base64");
    for (const body of [
      `{"CiphertextBlob":"AQID","KeyId":"${keyA.arn}","Plaintext":"${dataKey}"`,
      `x{"Plaintext":"${dataKey}"}`,
    ]) {
      kms.inject("GenerateDataKey", { kind: "raw", status: 200, headers: json, body });
      const { result, error, requests } = await during(() =>
        envelope.encrypt(PLAINTEXT, { context }),
      );
      expect(result).toBeUndefined();
      expect(requests).toHaveLength(1);
      expect((error as ProviderError).code).toBe("ENVELOPE_PROVIDER_CONTRACT");
      expect((error as Error).message).toMatch(/HTTP 200/);
      expect((error as Error).message).not.toMatch(/rejected/);
      const shown = everythingShown(error);
      expect(shown).not.toContain(dataKey);
      expect(shown).not.toContain(dataKey.slice(0, 12));
    }
  });

  it("URI options: kmsContext and grantTokens reach KMS; an unencoded endpoint works too", async () => {
    const env = {
      AWS_ACCESS_KEY_ID: SESSION.accessKeyId,
      AWS_SECRET_ACCESS_KEY: SESSION.secretAccessKey,
      AWS_SESSION_TOKEN: SESSION.sessionToken,
    };
    const envelope = await createEnvelope(
      {
        encrypt: `aws-kms://${keyA.arn}?endpoint=${kms.url}&kmsContext=table,column&grantTokens=tokenA,tokenB`,
      },
      env,
    );
    const { result: sealed, requests } = await during(() =>
      envelope.encrypt(PLAINTEXT, { context }),
    );
    expect(requests[0]!.body).toMatchObject({
      KeyId: keyA.arn,
      EncryptionContext: { table: "users", column: "email" },
      GrantTokens: ["tokenA", "tokenB"],
    });
    const r = await during(() => envelope.decrypt(sealed!, { context, as: "text" }));
    expect(r.result).toBe(PLAINTEXT);
    expect(r.requests[0]!.body).toMatchObject({
      GrantTokens: ["tokenA", "tokenB"],
      EncryptionContext: { table: "users", column: "email" },
    });
  });

  it("a key in another region (decryptKeys): Decrypt is signed for that region; rewrap to the home key decrypts there and encrypts here", async () => {
    const east = kms.createKey("us-east-1");
    const eastApp = new Envelope({ encrypt: provider({ keyId: east.arn }), cache: false });
    const sealed = await eastApp.encrypt(PLAINTEXT, { context });
    const west = provider({ keyId: keyA.arn, decryptKeys: [east.arn] });
    const westApp = new Envelope({ encrypt: west, cache: false });
    const { result, requests } = await during(() =>
      westApp.decrypt(sealed, { context, as: "text" }),
    );
    expect(result).toBe(PLAINTEXT);
    expect(requests.map((q) => [q.operation, q.region])).toEqual([["Decrypt", "us-east-1"]]);
    const moved = await during(() => westApp.rewrap(sealed, { context }));
    expect(moved.error).toBeUndefined();
    expect(moved.requests.map((q) => [q.operation, q.region]).slice(0, 2)).toEqual([
      ["Decrypt", "us-east-1"],
      ["Encrypt", REGION],
    ]);
    expect(inspectEnvelope(moved.result!).entries.map((e) => e.keyRef)).toEqual([keyA.arn]);
    expect(await westApp.decrypt(moved.result!, { context, as: "text" })).toBe(PLAINTEXT);
  });
});

describe("credentials and regions from the SDK chain; an injected client", () => {
  const chainEnv = (vars: Record<string, string | undefined>) => {
    for (const name of [
      "AWS_ACCESS_KEY_ID",
      "AWS_SECRET_ACCESS_KEY",
      "AWS_SESSION_TOKEN",
      "AWS_PROFILE",
      "AWS_REGION",
      "AWS_DEFAULT_REGION",
      "AWS_WEB_IDENTITY_TOKEN_FILE",
      "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
      "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ]) {
      vi.stubEnv(name, undefined);
    }
    vi.stubEnv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials");
    vi.stubEnv("AWS_CONFIG_FILE", "/nonexistent/config");
    vi.stubEnv("AWS_EC2_METADATA_DISABLED", "true");
    for (const [k, v] of Object.entries(vars)) vi.stubEnv(k, v);
  };
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("alias name and key id with the region and credentials from the environment (SDK default chain)", async () => {
    chainEnv({
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: SESSION.accessKeyId,
      AWS_SECRET_ACCESS_KEY: SESSION.secretAccessKey,
      AWS_SESSION_TOKEN: SESSION.sessionToken,
    });
    for (const keyId of ["alias/pii", keyA.id]) {
      const p = awsKmsProvider({ keyId, endpoint: kms.url });
      providers.push(p);
      const envelope = new Envelope({ encrypt: p, cache: false });
      const { result: sealed, requests } = await during(() =>
        envelope.encrypt(PLAINTEXT, { context }),
      );
      expect(requests.map((r) => [r.region, r.status])).toEqual([[REGION, 200]]);
      expect(inspectEnvelope(sealed!).entries[0]!.keyRef).toBe(keyA.arn);
      expect(await envelope.decrypt(sealed!, { context, as: "text" })).toBe(PLAINTEXT);
    }
  });

  it("a host clock 20 minutes off (KMS allows 5): KMS answers 'Signature expired' with its Date, the SDK corrects its clock offset, and the call is sent again (as the SDK's own retry would) instead of failing as access denied", async () => {
    kms.setClockOffset(20 * 60_000);
    try {
      const envelope = new Envelope({ encrypt: provider({ keyId: keyA.arn }), cache: false });
      const {
        result: sealed,
        error,
        requests,
      } = await during(() => envelope.encrypt(PLAINTEXT, { context }));
      expect(error).toBeUndefined();
      expect(requests.map((r) => r.errorType ?? r.status)).toEqual([
        "InvalidSignatureException",
        200,
      ]);
      const again = await during(() => envelope.decrypt(sealed!, { context, as: "text" }));
      expect(again.result).toBe(PLAINTEXT);
      expect(again.requests).toHaveLength(1); // the corrected offset stays on the client
      // A signature that is simply wrong is still not retried.
      const wrong = new Envelope({
        encrypt: provider({
          keyId: keyA.arn,
          credentials: {
            ...SESSION,
            secretAccessKey: "WrongSecret000000000000000000000000000000x",
          },
        }),
      });
      const w = await during(() => wrong.encrypt(PLAINTEXT, { context }));
      expect((w.error as ProviderError).code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
      expect(w.requests.map((r) => r.errorType)).toEqual(
        ["InvalidSignatureException", "InvalidSignatureException"].slice(0, w.requests.length),
      );
      expect(w.requests.length).toBeLessThanOrEqual(2);
    } finally {
      kms.setClockOffset(0);
    }
  });

  it("no credentials anywhere: ENVELOPE_KMS_ACCESS_DENIED saying so, no request sent, not retried", async () => {
    chainEnv({});
    const p = awsKmsProvider({
      keyId: keyA.arn,
      endpoint: kms.url,
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
    });
    providers.push(p);
    const envelope = new Envelope({ encrypt: p });
    const started = Date.now();
    const { error, requests } = await during(() => envelope.encrypt(PLAINTEXT, { context }));
    expect(requests).toHaveLength(0);
    expect((error as ProviderError).code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    expect((error as Error).message).toMatch(/credentials/i);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("an injected KMSClient with the SDK's default retries: attempts x maxAttempts requests, as the README says", async () => {
    const client = new KMSClient({ region: REGION, endpoint: kms.url, credentials: SESSION });
    const p = awsKmsProvider({
      keyId: keyA.arn,
      client,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    });
    const envelope = new Envelope({ encrypt: p });
    kms.inject("GenerateDataKey", { kind: "error", name: "KMSInternalException" }, 100);
    const { error, requests } = await during(() => envelope.encrypt(PLAINTEXT, { context }));
    expect((error as ProviderError).code).toBe("ENVELOPE_KMS_UNAVAILABLE");
    expect(requests).toHaveLength(2 * 3);
    client.destroy();
  });
});

describe("multi-Region keys, as the README describes them", () => {
  it("a provider on the replica ARN decrypts the primary's envelopes locally, naming the replica; rewrap to it is a ReEncrypt in its region", async () => {
    const primary = kms.createKey("us-east-1", { multiRegion: true });
    const replica = kms.replicateKey(primary, REGION);
    const east = new Envelope({ encrypt: provider({ keyId: primary.arn }), cache: false });
    const sealed = await east.encrypt(PLAINTEXT, { context });
    const west = new Envelope({ encrypt: provider({ keyId: replica.arn }), cache: false });
    const read = await during(() => west.decrypt(sealed, { context, as: "text" }));
    expect(read.error).toBeUndefined();
    expect(read.result).toBe(PLAINTEXT);
    expect(read.requests.map((r) => [r.operation, r.region, r.body.KeyId])).toEqual([
      ["Decrypt", REGION, replica.arn],
    ]);

    const moved = await during(() => west.rewrap(sealed, { context, force: true }));
    expect(moved.error).toBeUndefined();
    expect(moved.requests.map((r) => [r.operation, r.region])).toEqual([
      ["ReEncrypt", REGION],
      ["Decrypt", REGION],
    ]);
    expect(moved.requests[0]!.body).toMatchObject({
      SourceKeyId: replica.arn,
      DestinationKeyId: replica.arn,
    });
    expect(inspectEnvelope(moved.result!).entries.map((e) => e.keyRef)).toEqual([replica.arn]);
    expect(await east.decrypt(moved.result!, { context, as: "text" })).toBe(PLAINTEXT);

    // mrkAware: false treats the replica as an unrelated key: it does not claim the entry.
    const strict = new Envelope({
      encrypt: provider({ keyId: replica.arn, mrkAware: false }),
      cache: false,
    });
    const refused = await during(() => strict.decrypt(sealed, { context }));
    expect(refused.requests).toHaveLength(0);
    expect(refused.error).toBeInstanceOf(EnvelopeError);
  });
});

describe("options KMS would refuse on every call are refused up front", () => {
  it("more than 10 grant tokens, or one over 8192 characters (KMS's GrantTokens limits): a ConfigError naming grantTokens, not a ValidationException on every call", async () => {
    const eleven = Array.from({ length: 11 }, (_, i) => `token${i}`);
    for (const grantTokens of [eleven, ["x".repeat(8193)]]) {
      let thrown: unknown;
      const { requests } = await during(async () => {
        try {
          const envelope = new Envelope({ encrypt: provider({ keyId: keyA.arn, grantTokens }) });
          await envelope.encrypt(PLAINTEXT, { context });
        } catch (error) {
          thrown = error;
        }
      });
      expect(requests.map((r) => r.errorType)).toEqual([]);
      expect(thrown).toBeInstanceOf(EnvelopeError);
      expect((thrown as EnvelopeError).code).toBe("ENVELOPE_BAD_CONFIG");
      expect((thrown as Error).message).toMatch(/grantTokens/);
    }
    await expect(
      createEnvelope({
        encrypt: `aws-kms://${keyA.arn}?endpoint=${encodeURIComponent(kms.url)}&grantTokens=${eleven.join(",")}`,
      }),
    ).rejects.toMatchObject({ code: "ENVELOPE_BAD_CONFIG" });
    // Ten are fine, and all ten reach KMS.
    const ten = eleven.slice(0, 10);
    const ok = await during(() =>
      new Envelope({ encrypt: provider({ keyId: keyA.arn, grantTokens: ten }) }).encrypt(
        PLAINTEXT,
        { context },
      ),
    );
    expect(ok.error).toBeUndefined();
    expect(ok.requests[0]!.body.GrantTokens).toEqual(ten);
  });
});

describe("rotation, rewrap and nothing half-written", () => {
  it("RotateKeyOnDemand: old values still open, new ones use the new material, same ARN", async () => {
    const k = kms.createKey(REGION);
    const envelope = new Envelope({ encrypt: provider({ keyId: k.arn }), cache: false });
    const before = await envelope.encrypt(PLAINTEXT, { context });
    kms.rotateKeyOnDemand(k);
    const after = await envelope.encrypt(PLAINTEXT, { context });
    expect(inspectEnvelope(after).entries[0]!.keyRef).toBe(k.arn);
    expect(await envelope.decrypt(before, { context, as: "text" })).toBe(PLAINTEXT);
    expect(await envelope.decrypt(after, { context, as: "text" })).toBe(PLAINTEXT);
    // force: true re-encrypts under the newest material (ReEncrypt), body unchanged
    const { result: forced, requests } = await during(() =>
      envelope.rewrap(before, { context, force: true }),
    );
    expect(requests.map((r) => r.operation)).toContain("ReEncrypt");
    expect(await envelope.decrypt(forced!, { context, as: "text" })).toBe(PLAINTEXT);
  });

  it("manual rotation by moving the alias: rewrap is ReEncrypt + Decrypt, body byte-identical, old key can then be disabled", async () => {
    const oldKey = kms.createKey(REGION);
    const newKey = kms.createKey(REGION);
    kms.createAlias("alias/rotating", oldKey);
    const alias = `arn:aws:kms:${REGION}:${ACCOUNT}:alias/rotating`;
    const app = new Envelope({ encrypt: provider({ keyId: alias }), cache: false });
    const sealed = await app.encrypt(PLAINTEXT, { context });
    kms.updateAlias("alias/rotating", newKey);
    const target = provider({ keyId: alias });
    const { result: rewrapped, requests } = await during(() =>
      app.rewrap(sealed, { to: target, context }),
    );
    expect(requests.map((r) => r.operation)).toEqual(["ReEncrypt", "Decrypt"]);
    expect(requests[0]!.body).toMatchObject({
      SourceKeyId: oldKey.arn,
      DestinationKeyId: alias,
      SourceEncryptionContext: context,
      DestinationEncryptionContext: context,
    });
    expect(inspectEnvelope(rewrapped!).entries.map((e) => e.keyRef)).toEqual([newKey.arn]);
    expect(
      Buffer.from(decodeEnvelope(rewrapped!).body).equals(Buffer.from(decodeEnvelope(sealed).body)),
    ).toBe(true);
    kms.disableKey(oldKey);
    const reader = new Envelope({ encrypt: provider({ keyId: newKey.arn }), cache: false });
    expect(await reader.decrypt(rewrapped!, { context, as: "text" })).toBe(PLAINTEXT);
  });

  it("a rewrap that fails (target key disabled, ReEncrypt throttled) throws typed and leaves the value as it was", async () => {
    const src = kms.createKey(REGION);
    const dst = kms.createKey(REGION);
    const app = new Envelope({ encrypt: provider({ keyId: src.arn }), cache: false });
    const sealed = await app.encrypt(PLAINTEXT, { context });
    const copy = Buffer.from(sealed);
    kms.disableKey(dst);
    const target = provider({
      keyId: dst.arn,
      decryptKeys: [src.arn],
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    });
    const r1 = await during(() => app.rewrap(sealed, { to: target, context }));
    expect((r1.error as EnvelopeError).code).toBe("ENVELOPE_KEY_DISABLED");
    kms.enableKey(dst);
    kms.inject("ReEncrypt", { kind: "error", name: "ThrottlingException" }, 5);
    const r2 = await during(() => app.rewrap(sealed, { to: target, context }));
    expect((r2.error as EnvelopeError).code).toBe("ENVELOPE_KMS_THROTTLED");
    expect(r2.requests.filter((r) => r.operation === "ReEncrypt")).toHaveLength(2);
    expect(Buffer.from(sealed).equals(copy)).toBe(true);
    expect(await app.decrypt(sealed, { context, as: "text" })).toBe(PLAINTEXT);
    kms.clearFaults();
    const done = await app.rewrap(sealed, { to: target, context });
    expect(inspectEnvelope(done).entries.map((e) => e.keyRef)).toEqual([dst.arn]);
  });

  it("ReEncrypt succeeds but the target may not Decrypt (README: it must): rewrap fails typed, the value is unchanged", async () => {
    const src = kms.createKey(REGION);
    const dst = kms.createKey(REGION);
    kms.deny(dst, "Decrypt");
    const app = new Envelope({ encrypt: provider({ keyId: src.arn }), cache: false });
    const sealed = await app.encrypt(PLAINTEXT, { context });
    const copy = Buffer.from(sealed);
    const target = provider({ keyId: dst.arn, decryptKeys: [src.arn] });
    const { result, error, requests } = await during(() =>
      app.rewrap(sealed, { to: target, context }),
    );
    expect(result).toBeUndefined();
    expect(requests.map((r) => [r.operation, r.errorType])).toEqual([
      ["ReEncrypt", undefined],
      ["Decrypt", "AccessDeniedException"],
    ]);
    expect((error as EnvelopeError).code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    expect(Buffer.from(sealed).equals(copy)).toBe(true);
  });

  it("multi-wrap where the second key is denied: encrypt fails typed, nothing is returned", async () => {
    const k = kms.createKey(REGION);
    kms.deny(k, "Encrypt");
    const envelope = new Envelope({
      encrypt: [provider({ keyId: keyA.arn }), provider({ keyId: k.arn })],
    });
    const { result, error } = await during(() => envelope.encrypt(PLAINTEXT, { context }));
    expect(result).toBeUndefined();
    expect((error as EnvelopeError).code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
  });
});

describe("the README's key policy, followed literally", () => {
  const readme = readFileSync(
    new URL("../../../packages/aws-kms/README.md", import.meta.url),
    "utf8",
  );
  const section = readme.slice(
    readme.indexOf("## Permissions"),
    readme.indexOf("\n## ", readme.indexOf("## Permissions") + 5),
  );
  const blocks = [...section.matchAll(/```json\n([\s\S]*?)```/g)].map(
    (m) => JSON.parse(m[1]!) as unknown,
  );
  const statements = (v: unknown): PolicyStatement[] =>
    Array.isArray(v)
      ? v
      : typeof v === "object" && v !== null && "Statement" in v
        ? (v as { Statement: PolicyStatement[] }).Statement
        : [v as PolicyStatement];
  // "To require a context, add a condition such as `"Condition": { … }`"
  const condition = JSON.parse(`{${/`("Condition": \{[^`]*\})`/.exec(section)![1]}}`)
    .Condition as PolicyStatement["Condition"];

  it("the application statement allows what traffic does (encrypt, decrypt, rewrap), and nothing else is needed", async () => {
    const k = kms.createKey(REGION);
    kms.setKeyPolicy(k, statements(blocks[0]));
    const envelope = new Envelope({ encrypt: provider({ keyId: k.arn }), cache: false });
    const sealed = await envelope.encrypt(PLAINTEXT, { context });
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(PLAINTEXT);
    expect(
      await envelope.decrypt(await envelope.rewrap(sealed, { context, force: true }), {
        context,
        as: "text",
      }),
    ).toBe(PLAINTEXT);
    expect((await envelope.check()).ok).toBe(true);
  });

  it("with the README's required-context condition: traffic for that table passes, another table is denied, and envelope.check() still passes", async () => {
    expect(condition).toEqual({ StringEquals: { "kms:EncryptionContext:table": "users" } });
    const k = kms.createKey(REGION);
    const [app, ...further] = blocks.flatMap(statements);
    kms.setKeyPolicy(k, [{ ...app!, Condition: condition }, ...further]);
    const envelope = new Envelope({ encrypt: provider({ keyId: k.arn }), cache: false });
    const sealed = await envelope.encrypt(PLAINTEXT, { context });
    expect(await envelope.decrypt(sealed, { context, as: "text" })).toBe(PLAINTEXT);
    const denied = await during(() =>
      envelope.encrypt(PLAINTEXT, { context: { ...context, table: "orders" } }),
    );
    expect((denied.error as ProviderError).code).toBe("ENVELOPE_KMS_ACCESS_DENIED");
    // The message must point at the condition, not only at the credentials.
    expect((denied.error as Error).message).toMatch(/kms:EncryptionContext/);
    // A readiness probe on this key must not report a key that serves traffic as failed.
    const report = await envelope.check();
    expect(report.providers[0]!.error).toBeUndefined();
    expect(report.ok).toBe(true);
  });
  it("with the README's kmsContext: ['table', 'column'] too, check() passes under the readiness statement (the canary's context reaches KMS)", async () => {
    const k = kms.createKey(REGION);
    const [app, ...further] = blocks.flatMap(statements);
    kms.setKeyPolicy(k, [{ ...app!, Condition: condition }, ...further]);
    const envelope = new Envelope({
      encrypt: provider({ keyId: k.arn, kmsContext: ["table", "column"] }),
      cache: false,
    });
    const { requests } = await during(() => envelope.encrypt(PLAINTEXT, { context }));
    expect(requests[0]!.body.EncryptionContext).toEqual({ table: "users", column: "email" });
    const { result: report, requests: probe } = await during(() => envelope.check());
    expect(probe[0]!.body.EncryptionContext).toEqual({ "envelope:check": "readiness" });
    expect(report!.providers[0]!.error).toBeUndefined();
    expect(report!.ok).toBe(true);
    // Only the canary's exact context passes whole: an application context that uses the
    // same key maps by the list as before (values sealed so must still decrypt).
    const appContext = { ...context, "envelope:check": "readiness" };
    const { requests: own } = await during(() =>
      envelope.encrypt(PLAINTEXT, { context: appContext }),
    );
    expect(own[0]!.body.EncryptionContext).toEqual({ table: "users", column: "email" });
  });

  it("a write-only service (GenerateDataKey + Encrypt) with the readiness statement: check() passes, yet application data still cannot be decrypted", async () => {
    const k = kms.createKey(REGION);
    const [app, ...further] = blocks.flatMap(statements);
    kms.setKeyPolicy(k, [{ ...app!, Action: ["kms:GenerateDataKey", "kms:Encrypt"] }, ...further]);
    const envelope = new Envelope({ encrypt: provider({ keyId: k.arn }), cache: false });
    const sealed = await envelope.encrypt(PLAINTEXT, { context });
    await expect(envelope.decrypt(sealed, { context })).rejects.toMatchObject({
      code: "ENVELOPE_KMS_ACCESS_DENIED",
    });
    // nor under the readiness context itself, which the value was not sealed under
    await expect(
      envelope.decrypt(sealed, { context: { "envelope:check": "readiness" } }),
    ).rejects.toBeInstanceOf(EnvelopeError);
    const report = await envelope.check();
    expect(report.providers[0]!.error).toBeUndefined();
    expect(report.ok).toBe(true);
  });
});

describe("envelope.check()", () => {
  it("ok against a usable key; failed with the typed code when the key is disabled; the canary context reaches KMS", async () => {
    const k = kms.createKey(REGION);
    const envelope = new Envelope({ encrypt: provider({ keyId: k.arn }) });
    const { result: report, requests } = await during(() => envelope.check());
    expect(report!.ok).toBe(true);
    expect(report!.providers[0]).toMatchObject({ provider: "aws-kms", status: "ok" });
    expect(requests.length).toBeGreaterThanOrEqual(2);
    for (const r of requests)
      expect(r.body.EncryptionContext).toEqual({ "envelope:check": "readiness" });
    kms.disableKey(k);
    const bad = await envelope.check();
    expect(bad.ok).toBe(false);
    expect(bad.providers[0]!.error?.code).toBe("ENVELOPE_KEY_DISABLED");
  });
});

void ({} as KeyProvider);
