/**
 * A protocol-faithful AWS KMS test server: the JSON 1.1 protocol (`POST /`,
 * `X-Amz-Target: TrentService.<Operation>`, `application/x-amz-json-1.1`) as driven by
 * the real `@aws-sdk/client-kms`. It verifies SigV4 signatures, binds the encryption
 * context to every ciphertext (AES-256-GCM AAD), writes self-describing ciphertext blobs
 * (key id + key material version), keeps old key material after rotation, supports
 * aliases, key ARNs and multi-Region keys, answers errors with AWS's `__type` shapes and
 * HTTP codes, counts calls per operation, and injects faults.
 *
 * Test-only: key material lives in memory and nothing here is hardened.
 *
 * @example
 * const kms = await startAwsKmsServer();
 * const { arn } = kms.createKey();
 * const client = new KMSClient({ region: "us-east-1", endpoint: kms.url, credentials: kms.credentials });
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  randomUUID,
  timingSafeEqual,
} from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { FaultOptions, TestServer } from "./types.js";

export type { FaultOptions, TestServer };

/** What the server logs per request: identifiers only, never plaintext or key material. */
export interface KmsRequestRecord {
  operation: string;
  region: string;
  accessKeyId: string;
  keyId?: string;
  encryptionContext?: Record<string, string>;
  grantTokens?: string[];
}

export interface KmsKeyInfo {
  keyId: string;
  arn: string;
  region: string;
}

export interface AwsKmsServerOptions {
  /** Account id in every ARN. Default 111122223333. */
  accountId?: string;
  /** Access keys the server accepts (id -> secret). Default: one pair, see `credentials`. */
  accessKeys?: Record<string, string>;
  faults?: FaultOptions;
}

export interface AwsKmsTestServer extends TestServer {
  readonly accountId: string;
  /** A pair the server accepts; pass as `credentials` to KMSClient. */
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /** One record per authenticated request, in order. */
  readonly requests: KmsRequestRecord[];
  /** Creates a symmetric encryption key (SYMMETRIC_DEFAULT). */
  createKey(options?: { region?: string; multiRegion?: boolean; description?: string }): KmsKeyInfo;
  /** Creates (or repoints, like UpdateAlias) `alias/<name>` in the key's region. */
  createAlias(aliasName: string, key: string): { aliasArn: string };
  /** A replica of a multi-Region key in another region, sharing its key material. */
  replicateKey(key: string, replicaRegion: string): KmsKeyInfo;
  disableKey(key: string): void;
  enableKey(key: string): void;
  /** Puts the key in PendingDeletion, as ScheduleKeyDeletion does. */
  scheduleKeyDeletion(key: string): void;
  /** Removes the key for good (what happens when the waiting period ends). */
  deleteKeyNow(key: string): void;
  /** New key material for the key (and its replicas); old ciphertexts still decrypt. Returns the new version. */
  rotateKey(key: string): number;
  /** Reads the key id and key material version out of a ciphertext blob (tests of rotation). */
  inspectCiphertext(blob: Uint8Array): { keyId: string; version: number };
  /** Makes the server answer AccessDeniedException for an operation (optionally one key ARN). */
  deny(operation: string, keyArn?: string): void;
  /** Clears denials. */
  allowAll(): void;
}

const PARTITION = "aws";
const DEFAULT_REGION = "us-east-1";
const BLOB_MAGIC = 0x4b; // "K"
const JSON_TYPE = "application/x-amz-json-1.1";

type KeyState = "Enabled" | "Disabled" | "PendingDeletion";

interface Key {
  keyId: string;
  region: string;
  arn: string;
  state: KeyState;
  description: string;
  created: number;
  deletionDate?: number;
  multiRegion: boolean;
  primaryRegion: string;
  /** Shared by a multi-Region key and its replicas, like real MRK key material. */
  material: { versions: Buffer[] };
}

/** An error answered with AWS's JSON 1.1 error shape. */
class KmsFault extends Error {
  constructor(
    readonly type: string,
    message: string | undefined,
    readonly status = 400,
  ) {
    super(message ?? type);
  }
  body(): string {
    return JSON.stringify(
      this.message === this.type
        ? { __type: this.type }
        : { __type: this.type, message: this.message },
    );
  }
}

type Body = Record<string, unknown>;

/**
 * Starts the server on 127.0.0.1 with a random port.
 *
 * @example
 * const kms = await startAwsKmsServer({ faults: { throttleEvery: 2 } });
 */
export async function startAwsKmsServer(
  options: AwsKmsServerOptions = {},
): Promise<AwsKmsTestServer> {
  const accountId = options.accountId ?? "111122223333";
  const credentials = {
    accessKeyId: "AKIAENVELOPETEST0001",
    secretAccessKey: "envelope-test-secret-key",
  };
  const accessKeys = options.accessKeys ?? {
    [credentials.accessKeyId]: credentials.secretAccessKey,
  };
  const keys = new Map<string, Key>(); // by ARN
  const aliases = new Map<string, string>(); // alias ARN -> key ARN
  const denials: { operation: string; keyArn?: string }[] = [];
  const calls: Record<string, number> = {};
  const requests: KmsRequestRecord[] = [];
  const sockets = new Set<Socket>();
  let seq = 0;

  const keyArn = (region: string, id: string) =>
    `arn:${PARTITION}:kms:${region}:${accountId}:key/${id}`;
  const aliasArn = (region: string, name: string) =>
    `arn:${PARTITION}:kms:${region}:${accountId}:${name}`;

  function addKey(region: string, multiRegion: boolean, description: string): Key {
    const keyId = multiRegion ? `mrk-${randomBytes(16).toString("hex")}` : randomUUID();
    const key: Key = {
      keyId,
      region,
      arn: keyArn(region, keyId),
      state: "Enabled",
      description,
      created: Date.now() / 1000,
      multiRegion,
      primaryRegion: region,
      material: { versions: [randomBytes(32)] },
    };
    keys.set(key.arn, key);
    return key;
  }

  /** KeyId as KMS accepts it: key id, key ARN, alias name or alias ARN, in `region`. */
  function resolve(id: unknown, region: string, field = "keyId"): Key {
    if (typeof id !== "string" || id.length === 0) {
      throw new KmsFault(
        "ValidationException",
        `1 validation error detected: Value null at '${field}' failed to satisfy constraint: Member must not be null`,
      );
    }
    let arn: string;
    if (id.startsWith("arn:")) {
      const parts = id.split(":");
      if (parts.length < 6 || parts[2] !== "kms")
        throw new KmsFault("NotFoundException", `Invalid arn ${id}`);
      if (parts[3] !== region) throw new KmsFault("NotFoundException", `Invalid arn ${parts[3]}`);
      arn = id;
      if (parts[5]!.startsWith("alias/")) {
        const target = aliases.get(id);
        if (!target) throw new KmsFault("NotFoundException", `Alias ${id} is not found.`);
        arn = target;
      }
    } else if (id.startsWith("alias/")) {
      const target = aliases.get(aliasArn(region, id));
      if (!target)
        throw new KmsFault("NotFoundException", `Alias ${aliasArn(region, id)} is not found.`);
      arn = target;
    } else {
      arn = keyArn(region, id);
    }
    const key = keys.get(arn);
    if (!key) throw new KmsFault("NotFoundException", `Key '${arn}' does not exist`);
    return key;
  }

  /** Admin helpers accept an ARN (any region) or a key id in the default region. */
  function adminKey(id: string): Key {
    const region = id.startsWith("arn:") ? id.split(":")[3]! : DEFAULT_REGION;
    return resolve(id, region);
  }

  function usable(key: Key): void {
    if (key.state === "Disabled")
      throw new KmsFault("DisabledException", `${key.arn} is disabled.`);
    if (key.state === "PendingDeletion") {
      throw new KmsFault("KMSInvalidStateException", `${key.arn} is pending deletion.`);
    }
  }

  function metadata(key: Key): Body {
    const replicas = [...keys.values()].filter((k) => k.multiRegion && k.keyId === key.keyId);
    const primary = replicas.find((k) => k.region === k.primaryRegion);
    return {
      AWSAccountId: accountId,
      KeyId: key.keyId,
      Arn: key.arn,
      CreationDate: key.created,
      Enabled: key.state === "Enabled",
      Description: key.description,
      KeyUsage: "ENCRYPT_DECRYPT",
      KeyState: key.state,
      ...(key.deletionDate ? { DeletionDate: key.deletionDate } : {}),
      Origin: "AWS_KMS",
      KeyManager: "CUSTOMER",
      CustomerMasterKeySpec: "SYMMETRIC_DEFAULT",
      KeySpec: "SYMMETRIC_DEFAULT",
      EncryptionAlgorithms: ["SYMMETRIC_DEFAULT"],
      MultiRegion: key.multiRegion,
      ...(key.multiRegion
        ? {
            MultiRegionConfiguration: {
              MultiRegionKeyType: key.region === key.primaryRegion ? "PRIMARY" : "REPLICA",
              PrimaryKey: primary ? { Arn: primary.arn, Region: primary.region } : undefined,
              ReplicaKeys: replicas
                .filter((k) => k !== primary)
                .map((k) => ({ Arn: k.arn, Region: k.region })),
            },
          }
        : {}),
    };
  }

  // --- ciphertext blobs: magic | u8 id len | key id | u32 version | iv[12] | ct | tag[16] ---

  function contextAad(context: unknown, keyId: string, version: number): Buffer {
    const pairs = Object.entries(checkContext(context)).sort(([a], [b]) =>
      Buffer.compare(Buffer.from(a), Buffer.from(b)),
    );
    return Buffer.from(JSON.stringify([keyId, version, pairs]));
  }

  function seal(key: Key, plaintext: Buffer, context: unknown): Buffer {
    const version = key.material.versions.length - 1;
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", key.material.versions[version]!, iv);
    cipher.setAAD(contextAad(context, key.keyId, version));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const id = Buffer.from(key.keyId);
    const ver = Buffer.alloc(4);
    ver.writeUInt32BE(version);
    return Buffer.concat([
      Buffer.from([BLOB_MAGIC, id.length]),
      id,
      ver,
      iv,
      ct,
      cipher.getAuthTag(),
    ]);
  }

  function parseBlob(blob: Buffer): {
    keyId: string;
    version: number;
    iv: Buffer;
    ct: Buffer;
    tag: Buffer;
  } {
    const bad = () => new KmsFault("InvalidCiphertextException", undefined);
    if (blob.length < 2 || blob[0] !== BLOB_MAGIC) throw bad();
    const idLen = blob[1]!;
    if (blob.length < 2 + idLen + 4 + 12 + 16 + 1) throw bad();
    const keyId = blob.subarray(2, 2 + idLen).toString();
    const version = blob.readUInt32BE(2 + idLen);
    const iv = blob.subarray(6 + idLen, 18 + idLen);
    return {
      keyId,
      version,
      iv,
      ct: blob.subarray(18 + idLen, blob.length - 16),
      tag: blob.subarray(blob.length - 16),
    };
  }

  /** Decrypts as KMS does: the blob names its key; KeyId, if given, must be that key. */
  function open(
    body: Body,
    region: string,
    keyField: string,
    contextField: string,
  ): { key: Key; plaintext: Buffer } {
    const blob = base64Field(body, "CiphertextBlob", 1, 6144);
    // A named key is looked up first: a deleted key answers NotFoundException.
    const named =
      body[keyField] === undefined
        ? undefined
        : resolve(body[keyField], region, keyField === "KeyId" ? "keyId" : "sourceKeyId");
    const parsed = parseBlob(blob);
    const key = keys.get(keyArn(region, parsed.keyId));
    if (!key) throw new KmsFault("InvalidCiphertextException", undefined);
    if (named !== undefined) {
      if (named !== key) {
        throw new KmsFault(
          "IncorrectKeyException",
          "The key ID in the request does not identify a CMK that can perform this operation.",
        );
      }
    }
    usable(key);
    const material = key.material.versions[parsed.version];
    if (!material) throw new KmsFault("InvalidCiphertextException", undefined);
    try {
      const decipher = createDecipheriv("aes-256-gcm", material, parsed.iv);
      decipher.setAAD(contextAad(body[contextField], key.keyId, parsed.version));
      decipher.setAuthTag(parsed.tag);
      return { key, plaintext: Buffer.concat([decipher.update(parsed.ct), decipher.final()]) };
    } catch {
      // Wrong context, tampered blob: KMS cannot tell which, and says neither.
      throw new KmsFault("InvalidCiphertextException", undefined);
    }
  }

  function dataKeyLength(body: Body): number {
    if (body.KeySpec !== undefined && body.NumberOfBytes !== undefined) {
      throw new KmsFault(
        "ValidationException",
        "Please specify either number of bytes or key spec.",
      );
    }
    if (body.KeySpec === "AES_256") return 32;
    if (body.KeySpec === "AES_128") return 16;
    if (
      typeof body.NumberOfBytes === "number" &&
      body.NumberOfBytes >= 1 &&
      body.NumberOfBytes <= 1024
    ) {
      return body.NumberOfBytes;
    }
    throw new KmsFault("ValidationException", "Please specify either number of bytes or key spec.");
  }

  const operations: Record<string, (body: Body, region: string) => Body | undefined> = {
    CreateKey(body, region) {
      const spec = body.KeySpec ?? body.CustomerMasterKeySpec ?? "SYMMETRIC_DEFAULT";
      if (spec !== "SYMMETRIC_DEFAULT") {
        throw new KmsFault(
          "UnsupportedOperationException",
          `This test server supports SYMMETRIC_DEFAULT keys only, not ${String(spec)}.`,
        );
      }
      const key = addKey(
        region,
        body.MultiRegion === true,
        typeof body.Description === "string" ? body.Description : "",
      );
      return { KeyMetadata: metadata(key) };
    },
    DescribeKey(body, region) {
      return { KeyMetadata: metadata(resolve(body.KeyId, region)) };
    },
    CreateAlias(body, region) {
      const name = body.AliasName;
      if (
        typeof name !== "string" ||
        !/^alias\/[a-zA-Z0-9/_-]+$/.test(name) ||
        name.startsWith("alias/aws/")
      ) {
        throw new KmsFault(
          "ValidationException",
          `Alias must start with the prefix "alias/" and use letters, digits, /, _ and -.`,
        );
      }
      const key = resolve(body.TargetKeyId, region, "targetKeyId");
      const arn = aliasArn(region, name);
      if (aliases.has(arn))
        throw new KmsFault(
          "AlreadyExistsException",
          `An alias with the name ${arn} already exists`,
        );
      aliases.set(arn, key.arn);
      return undefined;
    },
    UpdateAlias(body, region) {
      const arn = aliasArn(region, String(body.AliasName));
      if (!aliases.has(arn)) throw new KmsFault("NotFoundException", `Alias ${arn} is not found.`);
      aliases.set(arn, resolve(body.TargetKeyId, region, "targetKeyId").arn);
      return undefined;
    },
    GenerateDataKey(body, region) {
      const key = resolve(body.KeyId, region);
      usable(key);
      const plaintext = randomBytes(dataKeyLength(body));
      return {
        CiphertextBlob: seal(key, plaintext, body.EncryptionContext).toString("base64"),
        Plaintext: plaintext.toString("base64"),
        KeyId: key.arn,
      };
    },
    GenerateDataKeyWithoutPlaintext(body, region) {
      const key = resolve(body.KeyId, region);
      usable(key);
      return {
        CiphertextBlob: seal(
          key,
          randomBytes(dataKeyLength(body)),
          body.EncryptionContext,
        ).toString("base64"),
        KeyId: key.arn,
      };
    },
    Encrypt(body, region) {
      const key = resolve(body.KeyId, region);
      const plaintext = base64Field(body, "Plaintext", 1, 4096);
      usable(key);
      return {
        CiphertextBlob: seal(key, plaintext, body.EncryptionContext).toString("base64"),
        KeyId: key.arn,
        EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
      };
    },
    Decrypt(body, region) {
      const { key, plaintext } = open(body, region, "KeyId", "EncryptionContext");
      return {
        KeyId: key.arn,
        Plaintext: plaintext.toString("base64"),
        EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
      };
    },
    ReEncrypt(body, region) {
      const destination = resolve(body.DestinationKeyId, region, "destinationKeyId");
      const { key: source, plaintext } = open(
        body,
        region,
        "SourceKeyId",
        "SourceEncryptionContext",
      );
      usable(destination);
      return {
        CiphertextBlob: seal(destination, plaintext, body.DestinationEncryptionContext).toString(
          "base64",
        ),
        SourceKeyId: source.arn,
        KeyId: destination.arn,
        SourceEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
        DestinationEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
      };
    },
    EnableKey(body, region) {
      const key = resolve(body.KeyId, region);
      if (key.state === "PendingDeletion") usable(key);
      key.state = "Enabled";
      return undefined;
    },
    DisableKey(body, region) {
      const key = resolve(body.KeyId, region);
      if (key.state === "PendingDeletion") usable(key);
      key.state = "Disabled";
      return undefined;
    },
    ScheduleKeyDeletion(body, region) {
      const key = resolve(body.KeyId, region);
      const days = body.PendingWindowInDays ?? 30;
      if (typeof days !== "number" || days < 7 || days > 30) {
        throw new KmsFault(
          "ValidationException",
          "1 validation error detected: Value at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30",
        );
      }
      if (key.state === "PendingDeletion") usable(key);
      key.state = "PendingDeletion";
      key.deletionDate = Date.now() / 1000 + days * 86400;
      return {
        KeyId: key.arn,
        DeletionDate: key.deletionDate,
        KeyState: key.state,
        PendingWindowInDays: days,
      };
    },
    CancelKeyDeletion(body, region) {
      const key = resolve(body.KeyId, region);
      if (key.state !== "PendingDeletion") {
        throw new KmsFault("KMSInvalidStateException", `${key.arn} is not pending deletion.`);
      }
      key.state = "Disabled";
      delete key.deletionDate;
      return { KeyId: key.arn };
    },
    RotateKeyOnDemand(body, region) {
      const key = resolve(body.KeyId, region);
      usable(key);
      if (key.multiRegion && key.region !== key.primaryRegion) {
        throw new KmsFault(
          "UnsupportedOperationException",
          `${key.arn} is a replica key; rotate its primary key.`,
        );
      }
      key.material.versions.push(randomBytes(32));
      return { KeyId: key.arn };
    },
    ReplicateKey(body, region) {
      const key = resolve(body.KeyId, region);
      const target = body.ReplicaRegion;
      if (!key.multiRegion)
        throw new KmsFault(
          "UnsupportedOperationException",
          `${key.arn} is not a multi-Region key.`,
        );
      if (typeof target !== "string" || target === key.region) {
        throw new KmsFault("ValidationException", "ReplicaRegion must name another region.");
      }
      if (keys.has(keyArn(target, key.keyId))) {
        throw new KmsFault(
          "AlreadyExistsException",
          `A replica of ${key.arn} already exists in ${target}.`,
        );
      }
      const replica: Key = {
        ...key,
        region: target,
        arn: keyArn(target, key.keyId),
        created: Date.now() / 1000,
      };
      keys.set(replica.arn, replica);
      return { ReplicaKeyMetadata: metadata(replica) };
    },
  };

  // --- HTTP ---

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, new KmsFault("KMSInternalException", "Internal error.", 500));
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  const faults: FaultOptions = { ...options.faults };
  const handleObj = { faults } as { faults: FaultOptions };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const target = String(req.headers["x-amz-target"] ?? "");
    const operation = target.startsWith("TrentService.")
      ? target.slice("TrentService.".length)
      : "Unknown";
    calls[operation] = (calls[operation] ?? 0) + 1;
    seq++;
    const f = handleObj.faults;
    if (f.hang) return; // never answer
    if (f.dropEvery && seq % f.dropEvery === 0) {
      req.socket.destroy();
      return;
    }
    if (f.latencyMs) await new Promise((r) => setTimeout(r, f.latencyMs));
    try {
      if (f.throttleEvery && seq % f.throttleEvery === 0) {
        throw new KmsFault("ThrottlingException", "Rate exceeded");
      }
      if (f.failEvery && seq % f.failEvery === 0) {
        throw new KmsFault(
          "KMSInternalException",
          "The request was rejected because an internal exception occurred. The request can be retried.",
          500,
        );
      }
      if (req.method !== "POST" || req.url !== "/")
        throw new KmsFault("UnknownOperationException", undefined, 404);
      const { region, accessKeyId } = authenticate(req, raw);
      const fn = operations[operation];
      if (!fn) throw new KmsFault("UnknownOperationException", undefined);
      if (!String(req.headers["content-type"] ?? "").startsWith(JSON_TYPE)) {
        throw new KmsFault("UnknownOperationException", undefined);
      }
      let body: Body;
      try {
        body = raw.length === 0 ? {} : (JSON.parse(raw.toString("utf8")) as Body);
        if (typeof body !== "object" || body === null || Array.isArray(body))
          throw new Error("not an object");
      } catch {
        throw new KmsFault(
          "SerializationException",
          "Start of structure or map found where not expected.",
        );
      }
      requests.push(record(operation, region, accessKeyId, body));
      const keyForPolicy = typeof body.KeyId === "string" ? body.KeyId : body.DestinationKeyId;
      for (const d of denials) {
        if (d.operation !== operation) continue;
        if (
          d.keyArn &&
          keyForPolicy !== undefined &&
          safeResolveArn(keyForPolicy, region) !== d.keyArn
        )
          continue;
        throw new KmsFault(
          "AccessDeniedException",
          `User: arn:aws:iam::${accountId}:user/envelope-test is not authorized to perform: kms:${operation} on resource: ${d.keyArn ?? "*"} because no identity-based policy allows the kms:${operation} action`,
        );
      }
      const out = fn(body, region);
      res.writeHead(200, { "content-type": JSON_TYPE, "x-amzn-requestid": randomUUID() });
      res.end(out === undefined ? "" : JSON.stringify(out));
    } catch (error) {
      send(
        res,
        error instanceof KmsFault
          ? error
          : new KmsFault("KMSInternalException", "Internal error.", 500),
      );
    }
  }

  function safeResolveArn(id: unknown, region: string): string | undefined {
    try {
      return resolve(id, region).arn;
    } catch {
      return undefined;
    }
  }

  /** SigV4 as the SDK signs: checks the access key, then the signature. */
  function authenticate(
    req: IncomingMessage,
    payload: Buffer,
  ): { region: string; accessKeyId: string } {
    const header = String(req.headers.authorization ?? "");
    const match =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
        header,
      );
    if (!match) {
      throw new KmsFault("MissingAuthenticationTokenException", "Missing Authentication Token");
    }
    const [, accessKeyId, date, region, service, signedHeaders, signature] =
      match as unknown as string[];
    const secret = accessKeys[accessKeyId!];
    if (secret === undefined) {
      throw new KmsFault(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    const amzDate = String(req.headers["x-amz-date"] ?? "");
    const canonicalHeaders = signedHeaders!
      .split(";")
      .map(
        (name) =>
          `${name}:${String(req.headers[name] ?? "")
            .trim()
            .replace(/\s+/g, " ")}\n`,
      )
      .join("");
    const canonicalRequest = [
      req.method,
      "/",
      "",
      canonicalHeaders,
      signedHeaders,
      createHash("sha256").update(payload).digest("hex"),
    ].join("\n");
    const scope = `${date}/${region}/${service}/aws4_request`;
    const toSign = [
      "AWS4-HMAC-SHA256",
      amzDate,
      scope,
      createHash("sha256").update(canonicalRequest).digest("hex"),
    ].join("\n");
    let signingKey: Buffer = createHmac("sha256", `AWS4${secret}`).update(date!).digest();
    for (const part of [region!, service!, "aws4_request"])
      signingKey = createHmac("sha256", signingKey).update(part).digest();
    const expected = createHmac("sha256", signingKey).update(toSign).digest();
    const given = Buffer.from(signature!, "hex");
    if (
      service !== "kms" ||
      given.length !== expected.length ||
      !timingSafeEqual(given, expected)
    ) {
      throw new KmsFault(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
      );
    }
    return { region: region!, accessKeyId: accessKeyId! };
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  const handleApi: AwsKmsTestServer = {
    url: `http://127.0.0.1:${port}`,
    calls,
    get faults() {
      return handleObj.faults;
    },
    set faults(value: FaultOptions) {
      handleObj.faults = value;
    },
    accountId,
    credentials,
    requests,
    resetCalls() {
      for (const k of Object.keys(calls)) delete calls[k];
      requests.length = 0;
      seq = 0;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    createKey(opts = {}) {
      const key = addKey(
        opts.region ?? DEFAULT_REGION,
        opts.multiRegion ?? false,
        opts.description ?? "",
      );
      return { keyId: key.keyId, arn: key.arn, region: key.region };
    },
    createAlias(aliasName, key) {
      const target = adminKey(key);
      const name = aliasName.startsWith("alias/") ? aliasName : `alias/${aliasName}`;
      const arn = aliasArn(target.region, name);
      aliases.set(arn, target.arn);
      return { aliasArn: arn };
    },
    replicateKey(key, replicaRegion) {
      const source = adminKey(key);
      const out = operations.ReplicateKey!(
        { KeyId: source.arn, ReplicaRegion: replicaRegion },
        source.region,
      ) as {
        ReplicaKeyMetadata: { KeyId: string; Arn: string };
      };
      return {
        keyId: out.ReplicaKeyMetadata.KeyId,
        arn: out.ReplicaKeyMetadata.Arn,
        region: replicaRegion,
      };
    },
    disableKey(key) {
      adminKey(key).state = "Disabled";
    },
    enableKey(key) {
      adminKey(key).state = "Enabled";
    },
    scheduleKeyDeletion(key) {
      const k = adminKey(key);
      operations.ScheduleKeyDeletion!({ KeyId: k.arn, PendingWindowInDays: 7 }, k.region);
    },
    deleteKeyNow(key) {
      const k = adminKey(key);
      keys.delete(k.arn);
      for (const [alias, target] of aliases) if (target === k.arn) aliases.delete(alias);
    },
    rotateKey(key) {
      const k = adminKey(key);
      k.material.versions.push(randomBytes(32));
      return k.material.versions.length - 1;
    },
    inspectCiphertext(blob) {
      const parsed = parseBlob(Buffer.from(blob));
      return { keyId: parsed.keyId, version: parsed.version };
    },
    deny(operation, keyArn) {
      denials.push(keyArn === undefined ? { operation } : { operation, keyArn });
    },
    allowAll() {
      denials.length = 0;
    },
  };
  return handleApi;
}

function record(
  operation: string,
  region: string,
  accessKeyId: string,
  body: Body,
): KmsRequestRecord {
  const keyId = body.KeyId ?? body.DestinationKeyId ?? body.TargetKeyId;
  const context = body.EncryptionContext ?? body.DestinationEncryptionContext;
  return {
    operation,
    region,
    accessKeyId,
    ...(typeof keyId === "string" ? { keyId } : {}),
    ...(context && typeof context === "object"
      ? { encryptionContext: { ...(context as Record<string, string>) } }
      : {}),
    ...(Array.isArray(body.GrantTokens)
      ? { grantTokens: [...(body.GrantTokens as string[])] }
      : {}),
  };
}

function checkContext(context: unknown): Record<string, string> {
  if (context === undefined || context === null) return {};
  if (typeof context !== "object" || Array.isArray(context)) {
    throw new KmsFault("SerializationException", "EncryptionContext must be a map of strings.");
  }
  for (const value of Object.values(context)) {
    if (typeof value !== "string")
      throw new KmsFault("SerializationException", "EncryptionContext values must be strings.");
  }
  return context as Record<string, string>;
}

function base64Field(body: Body, field: string, min: number, max: number): Buffer {
  const value = body[field];
  const bytes = typeof value === "string" ? Buffer.from(value, "base64") : undefined;
  if (!bytes || bytes.length < min || bytes.length > max) {
    throw new KmsFault(
      "ValidationException",
      `1 validation error detected: Value at '${field.charAt(0).toLowerCase()}${field.slice(1)}' failed to satisfy constraint: Member must have length between ${min} and ${max}`,
    );
  }
  return bytes;
}

function send(res: ServerResponse, fault: KmsFault): void {
  res.writeHead(fault.status, {
    "content-type": JSON_TYPE,
    "x-amzn-requestid": randomUUID(),
  });
  res.end(fault.body());
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > 1_000_000) req.destroy();
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
