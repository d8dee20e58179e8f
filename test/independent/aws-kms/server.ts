// An AWS KMS test server written from the AWS KMS API reference (JSON 1.1 protocol), apart
// from test/servers/aws-kms.ts (not read). What it does, and where each rule comes from:
//
// - POST / with `X-Amz-Target: TrentService.<Operation>` and
//   `Content-Type: application/x-amz-json-1.1`; blobs are base64 strings in the JSON.
// - Every request must carry a SigV4 `Authorization` header (AWS4-HMAC-SHA256, service
//   `kms`); the signature is recomputed from the canonical request with the secret of the
//   access key id. Unknown key id: UnrecognizedClientException; bad signature:
//   InvalidSignatureException; no header: MissingAuthenticationTokenException.
// - The region of a request is the credential scope's region: keys live in one region, and
//   a key ARN of another region is NotFoundException.
// - KeyId may be a key id, key ARN, alias name (`alias/…`) or alias ARN. Responses name the
//   key by its key ARN (KeyId in Encrypt / GenerateDataKey / Decrypt / ReEncrypt).
// - The ciphertext blob is opaque: it carries the key id and the backing-key version, so
//   Decrypt without KeyId finds the key, and old versions keep opening after rotation.
//   It is AES-256-GCM with the canonical EncryptionContext in the AAD: Decrypt must get
//   exactly the same context (order does not matter; absent = empty), else
//   InvalidCiphertextException. A KeyId naming another key than the blob's:
//   IncorrectKeyException.
// - Key states: Disabled -> DisabledException; PendingDeletion -> KMSInvalidStateException;
//   unknown key / alias -> NotFoundException.
// - Errors: `{"__type": "<Name>", "message": "…"}` with `x-amzn-ErrorType` and the HTTP
//   status of the API reference (400 for client errors, 500 for KMSInternalException; the
//   status can be overridden per fault to model the Smithy model's 404 / 409 / 503).
// - Every response carries `x-amzn-RequestId`.
//
// Faults are injected per operation (the next N requests): an AWS error, a hang (no
// answer), a dropped connection, or a non-JSON 5xx body (a load balancer's page).
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  randomUUID,
} from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export const ACCOUNT = "111122223333";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

type KeyState = "Enabled" | "Disabled" | "PendingDeletion";

interface Key {
  id: string;
  region: string;
  arn: string;
  state: KeyState;
  /** Backing key material, one per rotation; the last is current. */
  versions: Buffer[];
  /** Operations denied to the caller (AccessDeniedException). */
  denied: Set<string>;
  /** A key policy (Allow statements); undefined = everything allowed. */
  policy?: PolicyStatement[];
}

/**
 * The part of a key policy statement this server evaluates: Allow statements, `kms:`
 * actions (or `kms:*`), and `StringEquals` / `StringEqualsIfExists` conditions on
 * `kms:EncryptionContext:<key>` (the request's EncryptionContext must hold that pair; with
 * IfExists, only when it has the key). Principal and Resource are not checked (one caller,
 * and "*" in a key policy means the key itself).
 */
export interface PolicyStatement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
  [other: string]: unknown;
}

export type Fault =
  | { kind: "error"; name: string; status?: number; message?: string }
  | { kind: "hang" }
  | { kind: "drop" }
  | { kind: "html"; status: number }
  /** Any raw answer (error shapes as other AWS front ends write them). */
  | { kind: "raw"; status: number; headers?: Record<string, string>; body: string }
  /** The real answer, altered (a KMS look-alike that answers wrongly). */
  | { kind: "answer"; patch: (response: Record<string, unknown>) => Record<string, unknown> };

export interface LoggedRequest {
  operation: string;
  region: string;
  body: Record<string, unknown>;
  /** Header names (lowercase) of the request. */
  headers: Record<string, string | string[] | undefined>;
  status: number;
  errorType?: string;
  /** The JSON answered (so tests can look for the data key where it must not be). */
  response?: Record<string, unknown>;
}

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const DEFAULT_STATUS: Record<string, number> = {
  KMSInternalException: 500,
  DependencyTimeoutException: 500,
  KeyUnavailableException: 500,
  InternalFailure: 500,
  ServiceUnavailable: 503,
};

export interface KmsTestServer {
  url: string;
  credentials: Credentials;
  requests: LoggedRequest[];
  /** A symmetric key; `multiRegion` gives it an `mrk-` id that `replicateKey` can copy. */
  createKey(region?: string, options?: { multiRegion?: boolean }): Key;
  replicateKey(key: Key, region: string): Key;
  createAlias(name: string, key: Key): void;
  updateAlias(name: string, key: Key): void;
  disableKey(key: Key): void;
  enableKey(key: Key): void;
  scheduleKeyDeletion(key: Key): void;
  cancelKeyDeletion(key: Key): void;
  deleteKeyNow(key: Key): void;
  rotateKeyOnDemand(key: Key): void;
  deny(key: Key, operation: string): void;
  /** Sets the key policy (undefined: everything allowed). */
  setKeyPolicy(key: Key, statements: PolicyStatement[] | undefined): void;
  /** The next `times` requests for `operation` ("*" = any) get `fault`. */
  inject(operation: string, fault: Fault, times?: number): void;
  clearFaults(): void;
  /** Moves this server's clock (ms ahead of the host's). */
  setClockOffset(ms: number): void;
  count(operation?: string): number;
  close(): Promise<void>;
}

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const hmac = (key: Buffer | string, data: string) =>
  createHmac("sha256", key).update(data).digest();

/** Canonical EncryptionContext: sorted pairs, length-prefixed (unambiguous). */
function canonicalContext(ec: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const k of Object.keys(ec).sort()) {
    for (const s of [k, ec[k]!]) {
      const b = Buffer.from(s, "utf8");
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      parts.push(len, b);
    }
  }
  return Buffer.concat(parts);
}

export async function startKmsServer(
  options: {
    credentials?: Credentials;
    /** How far this server's clock is ahead of the host's (to model a skewed client clock). */
    clockOffsetMs?: number;
  } = {},
): Promise<KmsTestServer> {
  const credentials: Credentials = options.credentials ?? {
    accessKeyId: "AKIDINDEPENDENTTEST1",
    secretAccessKey: "independent-test-secret-key/0000000000000",
  };
  const keys = new Map<string, Key>(); // by `${region}|${key id}` (replicas share an id)
  const aliases = new Map<string, string>(); // `${region}|alias/name` -> key id
  const faults: { operation: string; fault: Fault; left: number }[] = [];
  const requests: LoggedRequest[] = [];
  let clockOffsetMs = options.clockOffsetMs ?? 0;
  const now = () => Date.now() + clockOffsetMs;

  const arnOf = (region: string, id: string) => `arn:aws:kms:${region}:${ACCOUNT}:key/${id}`;

  function resolveKey(keyId: unknown, region: string, field = "KeyId"): Key {
    if (typeof keyId !== "string" || keyId.length === 0 || keyId.length > 2048) {
      throw new KmsError(
        "ValidationException",
        `1 validation error detected: Value at '${field}' failed to satisfy constraint: Member must have length greater than or equal to 1`,
      );
    }
    const arn = /^arn:aws:kms:([a-z0-9-]+):(\d{12}):(key|alias)\/(.+)$/.exec(keyId);
    let id: string | undefined;
    if (arn) {
      if (arn[1] !== region || arn[2] !== ACCOUNT) {
        throw new KmsError("NotFoundException", `Key '${keyId}' does not exist`);
      }
      id = arn[3] === "key" ? arn[4] : aliases.get(`${region}|alias/${arn[4]}`);
      if (id === undefined) throw new KmsError("NotFoundException", `Alias ${keyId} is not found.`);
    } else if (keyId.startsWith("alias/")) {
      id = aliases.get(`${region}|${keyId}`);
      if (id === undefined) {
        throw new KmsError(
          "NotFoundException",
          `Alias arn:aws:kms:${region}:${ACCOUNT}:${keyId} is not found.`,
        );
      }
    } else if (keyId.startsWith("arn:")) {
      throw new KmsError("NotFoundException", `Invalid arn ${region}`);
    } else {
      id = keyId;
    }
    const key = keys.get(`${region}|${id}`);
    if (!key) {
      throw new KmsError("NotFoundException", `Key '${arnOf(region, id)}' does not exist`);
    }
    return key;
  }

  function allowedByPolicy(key: Key, operation: string, ec: Record<string, string>): boolean {
    if (!key.policy) return true;
    const matches = (st: PolicyStatement) => {
      const actions = Array.isArray(st.Action) ? st.Action : [st.Action];
      if (
        !actions.some(
          (a) =>
            a === `kms:${operation}` ||
            a === "kms:*" ||
            (a === "kms:ReEncrypt*" && operation.startsWith("ReEncrypt")),
        )
      ) {
        return false;
      }
      for (const [op, pairs] of Object.entries(st.Condition ?? {})) {
        if (op !== "StringEquals" && op !== "StringEqualsIfExists") return false; // not modelled: never matches
        for (const [conditionKey, wanted] of Object.entries(pairs)) {
          const prefix = "kms:EncryptionContext:";
          if (!conditionKey.startsWith(prefix)) return false;
          const value = ec[conditionKey.slice(prefix.length)];
          if (value === undefined && op === "StringEqualsIfExists") continue;
          if (value === undefined || !(Array.isArray(wanted) ? wanted : [wanted]).includes(value))
            return false;
        }
      }
      return true;
    };
    if (key.policy.some((st) => st.Effect === "Deny" && matches(st))) return false;
    return key.policy.some((st) => st.Effect === "Allow" && matches(st));
  }

  function usable(key: Key, operation: string, ec: Record<string, string> = {}): void {
    if (key.denied.has(operation) || !allowedByPolicy(key, operation, ec)) {
      throw new KmsError(
        "AccessDeniedException",
        `User: arn:aws:iam::${ACCOUNT}:user/envelope-test is not authorized to perform: kms:${operation} on resource: ${key.arn} because no resource-based policy allows the kms:${operation} action`,
      );
    }
    if (key.state === "Disabled")
      throw new KmsError("DisabledException", `${key.arn} is disabled.`);
    if (key.state === "PendingDeletion") {
      throw new KmsError("KMSInvalidStateException", `${key.arn} is pending deletion.`);
    }
  }

  function context(value: unknown, field: string): Record<string, string> {
    if (value === undefined || value === null) return {};
    if (typeof value !== "object" || Array.isArray(value)) {
      throw new KmsError("SerializationException", `Unexpected value for ${field}`);
    }
    for (const v of Object.values(value)) {
      if (typeof v !== "string")
        throw new KmsError("SerializationException", `Unexpected value type in ${field}`);
    }
    return value as Record<string, string>;
  }

  function blob(value: unknown, field: string, max = 6144): Buffer {
    if (typeof value !== "string") {
      throw new KmsError(
        "ValidationException",
        `1 validation error detected: Value at '${field}' failed to satisfy constraint: Member must not be null`,
      );
    }
    const b = Buffer.from(value, "base64");
    if (b.length < 1 || b.length > max) {
      throw new KmsError(
        "ValidationException",
        `1 validation error detected: Value at '${field}' failed to satisfy constraint: Member must have length between 1 and ${max}`,
      );
    }
    return b;
  }

  function grantTokens(value: unknown): void {
    if (value === undefined) return;
    if (
      !Array.isArray(value) ||
      value.length > 10 ||
      !value.every((t) => typeof t === "string" && t.length > 0 && t.length <= 8192)
    ) {
      // API reference: GrantTokens holds 0 to 10 items of 1 to 8192 characters each.
      throw new KmsError(
        "ValidationException",
        "1 validation error detected: Value at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10",
      );
    }
  }

  function algorithm(value: unknown): void {
    if (value !== undefined && value !== "SYMMETRIC_DEFAULT") {
      throw new KmsError(
        "InvalidKeyUsageException",
        `Encryption algorithm ${String(value)} is not supported by this key`,
      );
    }
  }

  // blob: 0x01 | id length | key id | version (u32) | iv (12) | tag (16) | ciphertext
  function seal(key: Key, plaintext: Buffer, ec: Record<string, string>): Buffer {
    const version = key.versions.length - 1;
    const id = Buffer.from(key.id, "utf8");
    const head = Buffer.alloc(6 + id.length);
    head[0] = 1;
    head[1] = id.length;
    id.copy(head, 2);
    head.writeUInt32BE(version, 2 + id.length);
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", key.versions[version]!, iv);
    c.setAAD(Buffer.concat([head, canonicalContext(ec)]));
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    return Buffer.concat([head, iv, c.getAuthTag(), ct]);
  }

  function parseBlob(b: Buffer): { keyId: string; head: Buffer; version: number; rest: Buffer } {
    const invalid = () => new KmsError("InvalidCiphertextException", "");
    if (b[0] !== 1 || b.length < 2) throw invalid();
    const n = b[1]!;
    if (b.length < 6 + n + 28 + 1) throw invalid();
    return {
      keyId: b.subarray(2, 2 + n).toString("utf8"),
      head: b.subarray(0, 6 + n),
      version: b.readUInt32BE(2 + n),
      rest: b.subarray(6 + n),
    };
  }

  function open(
    key: Key,
    parsed: ReturnType<typeof parseBlob>,
    ec: Record<string, string>,
  ): Buffer {
    const material = key.versions[parsed.version];
    if (!material) throw new KmsError("InvalidCiphertextException", "");
    try {
      const d = createDecipheriv("aes-256-gcm", material, parsed.rest.subarray(0, 12));
      d.setAAD(Buffer.concat([parsed.head, canonicalContext(ec)]));
      d.setAuthTag(parsed.rest.subarray(12, 28));
      return Buffer.concat([d.update(parsed.rest.subarray(28)), d.final()]);
    } catch {
      throw new KmsError("InvalidCiphertextException", "");
    }
  }

  /** Decrypt's key: the blob's, checked against KeyId when one is given. */
  function keyForCiphertext(
    b: Buffer,
    keyId: unknown,
    region: string,
    operation: string,
    field: string,
    ec: Record<string, string>,
  ): { key: Key; parsed: ReturnType<typeof parseBlob> } {
    const named = keyId === undefined ? undefined : resolveKey(keyId, region, field);
    const parsed = parseBlob(b);
    const key = keys.get(`${region}|${parsed.keyId}`);
    if (named && named.id !== parsed.keyId) {
      throw new KmsError(
        "IncorrectKeyException",
        "The key ID in the request does not identify a CMK that can perform this operation.",
      );
    }
    if (!key) throw new KmsError("InvalidCiphertextException", "");
    usable(key, operation, ec);
    return { key, parsed };
  }

  const operations: Record<string, (body: Record<string, unknown>, region: string) => object> = {
    GenerateDataKey(body, region) {
      const key = resolveKey(body.KeyId, region);
      grantTokens(body.GrantTokens);
      const ec = context(body.EncryptionContext, "EncryptionContext");
      let length: number;
      if (body.KeySpec !== undefined && body.NumberOfBytes !== undefined) {
        throw new KmsError(
          "ValidationException",
          "Please specify either number of bytes or key spec.",
        );
      }
      if (body.KeySpec === "AES_256") length = 32;
      else if (body.KeySpec === "AES_128") length = 16;
      else if (
        typeof body.NumberOfBytes === "number" &&
        body.NumberOfBytes >= 1 &&
        body.NumberOfBytes <= 1024
      ) {
        length = body.NumberOfBytes;
      } else {
        throw new KmsError(
          "ValidationException",
          "Please specify either number of bytes or key spec.",
        );
      }
      usable(key, "GenerateDataKey", ec);
      const plaintext = randomBytes(length);
      return {
        CiphertextBlob: seal(key, plaintext, ec).toString("base64"),
        Plaintext: plaintext.toString("base64"),
        KeyId: key.arn,
      };
    },
    Encrypt(body, region) {
      const key = resolveKey(body.KeyId, region);
      grantTokens(body.GrantTokens);
      algorithm(body.EncryptionAlgorithm);
      const plaintext = blob(body.Plaintext, "plaintext", 4096);
      const ec = context(body.EncryptionContext, "EncryptionContext");
      usable(key, "Encrypt", ec);
      return {
        CiphertextBlob: seal(key, plaintext, ec).toString("base64"),
        KeyId: key.arn,
        EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
      };
    },
    Decrypt(body, region) {
      grantTokens(body.GrantTokens);
      algorithm(body.EncryptionAlgorithm);
      const b = blob(body.CiphertextBlob, "ciphertextBlob");
      const ec = context(body.EncryptionContext, "EncryptionContext");
      const { key, parsed } = keyForCiphertext(b, body.KeyId, region, "Decrypt", "KeyId", ec);
      return {
        KeyId: key.arn,
        Plaintext: open(key, parsed, ec).toString("base64"),
        EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
      };
    },
    ReEncrypt(body, region) {
      grantTokens(body.GrantTokens);
      algorithm(body.SourceEncryptionAlgorithm);
      algorithm(body.DestinationEncryptionAlgorithm);
      const b = blob(body.CiphertextBlob, "ciphertextBlob");
      const destination = resolveKey(body.DestinationKeyId, region, "DestinationKeyId");
      const sourceEc = context(body.SourceEncryptionContext, "SourceEncryptionContext");
      const destinationEc = context(
        body.DestinationEncryptionContext,
        "DestinationEncryptionContext",
      );
      const source = keyForCiphertext(
        b,
        body.SourceKeyId,
        region,
        "ReEncryptFrom",
        "SourceKeyId",
        sourceEc,
      );
      const plaintext = open(source.key, source.parsed, sourceEc);
      usable(destination, "ReEncryptTo", destinationEc);
      const out = seal(destination, plaintext, destinationEc);
      plaintext.fill(0);
      return {
        CiphertextBlob: out.toString("base64"),
        SourceKeyId: source.key.arn,
        KeyId: destination.arn,
        SourceEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
        DestinationEncryptionAlgorithm: "SYMMETRIC_DEFAULT",
      };
    },
    DescribeKey(body, region) {
      const key = resolveKey(body.KeyId, region);
      if (key.denied.has("DescribeKey")) usable(key, "DescribeKey");
      return {
        KeyMetadata: {
          AWSAccountId: ACCOUNT,
          KeyId: key.id,
          Arn: key.arn,
          Enabled: key.state === "Enabled",
          KeyState: key.state,
          KeyUsage: "ENCRYPT_DECRYPT",
          KeySpec: "SYMMETRIC_DEFAULT",
          CustomerMasterKeySpec: "SYMMETRIC_DEFAULT",
          EncryptionAlgorithms: ["SYMMETRIC_DEFAULT"],
          KeyManager: "CUSTOMER",
          Origin: "AWS_KMS",
          MultiRegion: key.id.startsWith("mrk-"),
          CreationDate: 1_700_000_000,
        },
      };
    },
  };

  /** SigV4 check; returns the credential scope's region. */
  function authenticate(req: IncomingMessage, body: Buffer): string {
    const auth = req.headers.authorization;
    if (typeof auth !== "string") {
      throw new KmsError(
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
        400,
      );
    }
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
        auth,
      );
    if (!m)
      throw new KmsError(
        "IncompleteSignatureException",
        "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.",
      );
    const [, akid, date, region, service, signed, signature] = m as unknown as string[];
    if (akid !== credentials.accessKeyId) {
      throw new KmsError(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    if (
      credentials.sessionToken !== undefined &&
      req.headers["x-amz-security-token"] !== credentials.sessionToken
    ) {
      throw new KmsError(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    if (service !== "kms") {
      throw new KmsError(
        "InvalidSignatureException",
        `Credential should be scoped to correct service: 'kms'.`,
      );
    }
    const amzDate = String(req.headers["x-amz-date"] ?? "");
    // SigV4: KMS refuses a request signed more than 5 minutes before or after its time
    // ("Signature expired: … is now earlier than … (… - 5 min.)", seen from KMS in aws-sdk-js#2340).
    const signedAt = Date.parse(
      amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, "$1-$2-$3T$4:$5:$6Z"),
    );
    const serverNow = now();
    if (!Number.isFinite(signedAt) || Math.abs(serverNow - signedAt) > 5 * 60_000) {
      const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, "");
      throw new KmsError(
        "InvalidSignatureException",
        `Signature expired: ${amzDate} is now earlier than ${stamp(serverNow - 5 * 60_000)} (${stamp(serverNow)} - 5 min.)`,
      );
    }
    const names = signed!.split(";");
    if (
      !names.includes("host") ||
      !names.includes("x-amz-date") ||
      !names.includes("x-amz-target")
    ) {
      throw new KmsError(
        "InvalidSignatureException",
        "The request signature does not sign host, x-amz-date and x-amz-target.",
      );
    }
    const canonicalHeaders = names
      .map((n) => {
        const v = req.headers[n];
        const s = Array.isArray(v) ? v.join(",") : (v ?? "");
        return `${n}:${s.trim().replace(/\s+/g, " ")}\n`;
      })
      .join("");
    const url = new URL(req.url ?? "/", "http://x");
    const query = [...url.searchParams]
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .sort()
      .join("&");
    const canonical = [
      req.method,
      url.pathname,
      query,
      canonicalHeaders,
      signed,
      sha256(body),
    ].join("\n");
    const scope = `${date}/${region}/${service}/aws4_request`;
    const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
    let k = hmac(`AWS4${credentials.secretAccessKey}`, date!);
    for (const part of [region!, service!, "aws4_request"]) k = hmac(k, part);
    const expected = createHmac("sha256", k).update(toSign).digest("hex");
    if (expected !== signature) {
      throw new KmsError(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
      );
    }
    return region!;
  }

  function takeFault(operation: string): Fault | undefined {
    const i = faults.findIndex((f) => f.operation === operation || f.operation === "*");
    if (i < 0) return undefined;
    const f = faults[i]!;
    f.left -= 1;
    if (f.left <= 0) faults.splice(i, 1);
    return f.fault;
  }

  const hanging = new Set<ServerResponse>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const target = String(req.headers["x-amz-target"] ?? "");
    const operation = target.startsWith("TrentService.")
      ? target.slice("TrentService.".length)
      : "";
    const requestId = randomUUID();
    const log: LoggedRequest = {
      operation,
      region: "",
      body: {},
      headers: { ...req.headers },
      status: 200,
    };
    requests.push(log);
    const send = (status: number, payload: object, errorType?: string) => {
      log.status = status;
      if (errorType) log.errorType = errorType;
      log.response = payload as Record<string, unknown>;
      const text = JSON.stringify(payload);
      res.writeHead(status, {
        "content-type": "application/x-amz-json-1.1",
        "x-amzn-requestid": requestId,
        date: new Date(now()).toUTCString(),
        ...(errorType ? { "x-amzn-errortype": errorType } : {}),
        "content-length": Buffer.byteLength(text),
      });
      res.end(text);
    };
    try {
      if (req.method !== "POST") throw new KmsError("UnknownOperationException", "", 404);
      const region = authenticate(req, raw);
      log.region = region;
      if (!operations[operation]) throw new KmsError("UnknownOperationException", "", 400);
      if (req.headers["content-type"] !== "application/x-amz-json-1.1") {
        throw new KmsError(
          "SerializationException",
          "Content-Type must be application/x-amz-json-1.1",
        );
      }
      let body: Record<string, unknown>;
      try {
        body =
          raw.length === 0 ? {} : (JSON.parse(raw.toString("utf8")) as Record<string, unknown>);
      } catch {
        throw new KmsError(
          "SerializationException",
          "Start of structure or map found where not expected.",
        );
      }
      log.body = body;
      const fault = takeFault(operation);
      if (fault?.kind === "hang") {
        hanging.add(res);
        return;
      }
      if (fault?.kind === "drop") {
        req.socket.destroy();
        log.status = 0;
        return;
      }
      if (fault?.kind === "html") {
        log.status = fault.status;
        res.writeHead(fault.status, { "content-type": "text/html" });
        res.end("<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>");
        return;
      }
      if (fault?.kind === "raw") {
        log.status = fault.status;
        res.writeHead(fault.status, { "x-amzn-requestid": requestId, ...fault.headers });
        res.end(fault.body);
        return;
      }
      if (fault?.kind === "answer") {
        send(200, fault.patch(operations[operation]!(body, region) as Record<string, unknown>));
        return;
      }
      if (fault?.kind === "error") {
        throw new KmsError(
          fault.name,
          fault.message ?? `${fault.name} (injected)`,
          fault.status ?? DEFAULT_STATUS[fault.name] ?? 400,
        );
      }
      send(200, operations[operation]!(body, region));
    } catch (error) {
      if (error instanceof KmsError) {
        send(error.status, { __type: error.type, message: error.message }, error.type);
      } else {
        send(
          500,
          { __type: "KMSInternalException", message: "internal error" },
          "KMSInternalException",
        );
      }
    }
  }

  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  const addKey = (region: string, id: string, versions: Buffer[]): Key => {
    const key: Key = {
      id,
      region,
      arn: arnOf(region, id),
      state: "Enabled",
      versions,
      denied: new Set(),
    };
    keys.set(`${region}|${id}`, key);
    return key;
  };
  const createKey = (region = "eu-west-1", options: { multiRegion?: boolean } = {}): Key =>
    addKey(region, options.multiRegion ? `mrk-${randomBytes(16).toString("hex")}` : randomUUID(), [
      randomBytes(32),
    ]);

  return {
    url: `http://127.0.0.1:${port}`,
    credentials,
    requests,
    createKey,
    createAlias(name, key) {
      const k = `${key.region}|${name}`;
      if (aliases.has(k)) throw new Error(`alias ${name} exists`);
      aliases.set(k, key.id);
    },
    updateAlias(name, key) {
      aliases.set(`${key.region}|${name}`, key.id);
    },
    disableKey(key) {
      key.state = "Disabled";
    },
    enableKey(key) {
      key.state = "Enabled";
    },
    scheduleKeyDeletion(key) {
      key.state = "PendingDeletion";
    },
    cancelKeyDeletion(key) {
      key.state = "Disabled";
    },
    deleteKeyNow: (key) => void keys.delete(`${key.region}|${key.id}`),
    replicateKey(key, region) {
      if (!key.id.startsWith("mrk-")) throw new Error("only multi-Region keys replicate");
      // Related multi-Region keys share key material, rotations included.
      return addKey(region, key.id, key.versions);
    },
    rotateKeyOnDemand: (key) => void key.versions.push(randomBytes(32)),
    deny: (key, operation) => void key.denied.add(operation),
    setKeyPolicy(key, statements) {
      key.policy = statements;
    },
    inject(operation, fault, times = 1) {
      faults.push({ operation, fault, left: times });
    },
    clearFaults: () => void faults.splice(0),
    setClockOffset(ms) {
      clockOffsetMs = ms;
    },
    count: (operation) =>
      requests.filter((r) => operation === undefined || r.operation === operation).length,
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
