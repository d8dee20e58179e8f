/**
 * A protocol-faithful AWS Secrets Manager test server for `GetSecretValue`: the JSON 1.1
 * protocol (`POST /`, `X-Amz-Target: secretsmanager.GetSecretValue`,
 * `application/x-amz-json-1.1`) as driven by the real `@aws-sdk/client-secrets-manager`.
 * It verifies SigV4 signatures (service `secretsmanager`), keeps versions with staging
 * labels (AWSCURRENT, AWSPREVIOUS, custom) moved the way PutSecretValue moves them,
 * resolves names and ARNs, answers AWS's error shapes (`__type`) and HTTP codes, counts
 * calls and injects faults.
 *
 * Test-only: secrets live in memory and nothing here is hardened.
 *
 * @example
 * const sm = await startSecretsManagerServer();
 * sm.putSecretValue("app/legacy-key", { SecretString: "…" });
 * const client = new SecretsManagerClient({ region: "us-east-1", endpoint: sm.url, credentials: sm.credentials });
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { FaultOptions, TestServer } from "./types.js";

const JSON_TYPE = "application/x-amz-json-1.1";
const TARGET_PREFIX = "secretsmanager.";

export interface SecretsManagerTestServer extends TestServer {
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  readonly region: string;
  /** One record per authenticated request: operation, SecretId, VersionStage, VersionId. Never a value. */
  readonly requests: {
    operation: string;
    secretId?: string;
    versionStage?: string;
    versionId?: string;
  }[];
  /**
   * Adds a version (creating the secret if needed), as PutSecretValue does: with no
   * `stages`, the new version gets AWSCURRENT and the former AWSCURRENT becomes AWSPREVIOUS.
   * Returns the version id and the secret's ARN.
   */
  putSecretValue(
    name: string,
    value: { SecretString: string } | { SecretBinary: Uint8Array },
    stages?: string[],
  ): { versionId: string; arn: string };
  /** Marks the secret for deletion (GetSecretValue then answers InvalidRequestException). */
  deleteSecret(name: string): void;
  /** Makes GetSecretValue answer AccessDeniedException for this secret name. */
  deny(name: string): void;
}

interface Version {
  id: string;
  stages: Set<string>;
  value: { SecretString: string } | { SecretBinary: Uint8Array };
  created: number;
}

interface Secret {
  name: string;
  arn: string;
  versions: Version[];
  deleted: boolean;
}

class Fault extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export async function startSecretsManagerServer(
  options: { region?: string; accountId?: string; faults?: FaultOptions } = {},
): Promise<SecretsManagerTestServer> {
  const region = options.region ?? "us-east-1";
  const accountId = options.accountId ?? "111122223333";
  const credentials = {
    accessKeyId: "AKIAENVELOPESMTEST01",
    secretAccessKey: "envelope-secrets-manager-test-secret",
  };
  const secrets = new Map<string, Secret>(); // by name
  const denied = new Set<string>();
  const calls: Record<string, number> = {};
  const requests: SecretsManagerTestServer["requests"] = [];
  const sockets = new Set<Socket>();
  const state = { faults: { ...options.faults } as FaultOptions, seq: 0 };

  const find = (id: unknown): Secret => {
    if (typeof id !== "string" || id.length < 1 || id.length > 2048)
      throw new Fault("InvalidParameterException", "Invalid SecretId.");
    for (const s of secrets.values()) {
      // Name, full ARN, or the ARN without its random 6-character suffix.
      if (s.name === id || s.arn === id || s.arn.slice(0, -7) === id) return s;
    }
    throw new Fault(
      "ResourceNotFoundException",
      "Secrets Manager can't find the specified secret.",
    );
  };

  function getSecretValue(body: Record<string, unknown>) {
    const secret = find(body.SecretId);
    if (denied.has(secret.name)) {
      throw new Fault(
        "AccessDeniedException",
        `User: arn:aws:iam::${accountId}:user/envelope-test is not authorized to perform: secretsmanager:GetSecretValue on resource: ${secret.name} because no identity-based policy allows the secretsmanager:GetSecretValue action`,
      );
    }
    if (secret.deleted) {
      throw new Fault(
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
      );
    }
    const { VersionId: versionId, VersionStage: stage } = body;
    if (
      versionId !== undefined &&
      (typeof versionId !== "string" || versionId.length < 32 || versionId.length > 64)
    )
      throw new Fault("InvalidParameterException", "Invalid VersionId.");
    if (
      stage !== undefined &&
      (typeof stage !== "string" || stage.length < 1 || stage.length > 256)
    )
      throw new Fault("InvalidParameterException", "Invalid VersionStage.");
    const wantStage = stage ?? (versionId === undefined ? "AWSCURRENT" : undefined);
    const version = secret.versions.find(
      (v) =>
        (versionId === undefined || v.id === versionId) &&
        (wantStage === undefined || v.stages.has(wantStage)),
    );
    if (!version) {
      throw new Fault(
        "ResourceNotFoundException",
        `Secrets Manager can't find the specified secret value for ${versionId !== undefined ? `VersionId: ${versionId}` : `staging label: ${wantStage}`}`,
      );
    }
    return {
      ARN: secret.arn,
      Name: secret.name,
      VersionId: version.id,
      ...("SecretString" in version.value
        ? { SecretString: version.value.SecretString }
        : { SecretBinary: Buffer.from(version.value.SecretBinary).toString("base64") }),
      VersionStages: [...version.stages],
      CreatedDate: version.created,
    };
  }

  const operations: Record<string, (body: Record<string, unknown>) => unknown> = {
    GetSecretValue: getSecretValue,
  };

  function authenticate(req: IncomingMessage, payload: Buffer): void {
    const header = String(req.headers.authorization ?? "");
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
        header,
      );
    if (!m) throw new Fault("MissingAuthenticationTokenException", "Missing Authentication Token");
    const [, accessKeyId, date, reqRegion, service, signedHeaders, signature] =
      m as unknown as string[];
    if (accessKeyId !== credentials.accessKeyId)
      throw new Fault(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
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
    const toSign = [
      "AWS4-HMAC-SHA256",
      String(req.headers["x-amz-date"] ?? ""),
      `${date}/${reqRegion}/${service}/aws4_request`,
      createHash("sha256").update(canonicalRequest).digest("hex"),
    ].join("\n");
    let key: Buffer = createHmac("sha256", `AWS4${credentials.secretAccessKey}`)
      .update(date!)
      .digest();
    for (const part of [reqRegion!, service!, "aws4_request"])
      key = createHmac("sha256", key).update(part).digest();
    const expected = createHmac("sha256", key).update(toSign).digest();
    const given = Buffer.from(signature!, "hex");
    if (
      service !== "secretsmanager" ||
      reqRegion !== region ||
      given.length !== 32 ||
      !timingSafeEqual(given, expected)
    ) {
      throw new Fault(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
      );
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const target = String(req.headers["x-amz-target"] ?? "");
    const operation = target.startsWith(TARGET_PREFIX)
      ? target.slice(TARGET_PREFIX.length)
      : "Unknown";
    calls[operation] = (calls[operation] ?? 0) + 1;
    state.seq++;
    const f = state.faults;
    if (f.hang) return;
    if (f.dropEvery && state.seq % f.dropEvery === 0) {
      req.socket.destroy();
      return;
    }
    if (f.latencyMs) await new Promise((r) => setTimeout(r, f.latencyMs));
    try {
      if (f.throttleEvery && state.seq % f.throttleEvery === 0)
        throw new Fault("ThrottlingException", "Rate exceeded");
      if (f.failEvery && state.seq % f.failEvery === 0)
        throw new Fault("InternalServiceError", "An error occurred on the server side.", 500);
      if (req.method !== "POST" || req.url !== "/")
        throw new Fault("UnknownOperationException", "Unknown operation", 404);
      authenticate(req, raw);
      const fn = operations[operation];
      if (!fn || !String(req.headers["content-type"] ?? "").startsWith(JSON_TYPE))
        throw new Fault("UnknownOperationException", "Unknown operation");
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(raw.toString("utf8") || "{}");
        if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error();
      } catch {
        throw new Fault(
          "SerializationException",
          "Start of structure or map found where not expected.",
        );
      }
      requests.push({
        operation,
        ...(typeof body.SecretId === "string" ? { secretId: body.SecretId } : {}),
        ...(typeof body.VersionStage === "string" ? { versionStage: body.VersionStage } : {}),
        ...(typeof body.VersionId === "string" ? { versionId: body.VersionId } : {}),
      });
      const out = fn(body);
      res.writeHead(200, { "content-type": JSON_TYPE, "x-amzn-requestid": randomUUID() });
      res.end(JSON.stringify(out));
    } catch (error) {
      const fault =
        error instanceof Fault ? error : new Fault("InternalServiceError", "Internal error.", 500);
      res.writeHead(fault.status, { "content-type": JSON_TYPE, "x-amzn-requestid": randomUUID() });
      res.end(JSON.stringify({ __type: fault.type, message: fault.message }));
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    get faults() {
      return state.faults;
    },
    set faults(value: FaultOptions) {
      state.faults = value;
    },
    credentials,
    region,
    requests,
    resetCalls() {
      for (const k of Object.keys(calls)) delete calls[k];
      requests.length = 0;
      state.seq = 0;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    putSecretValue(name, value, stages) {
      let secret = secrets.get(name);
      if (!secret) {
        const suffix = randomBytes(4).toString("base64url").slice(0, 6);
        secret = {
          name,
          arn: `arn:aws:secretsmanager:${region}:${accountId}:secret:${name}-${suffix}`,
          versions: [],
          deleted: false,
        };
        secrets.set(name, secret);
      }
      const labels = stages ?? ["AWSCURRENT"];
      // A label is on at most one version: moving it removes it from the others.
      for (const v of secret.versions) {
        if (labels.includes("AWSCURRENT") && v.stages.has("AWSCURRENT")) {
          for (const old of secret.versions) old.stages.delete("AWSPREVIOUS");
          v.stages.delete("AWSCURRENT");
          v.stages.add("AWSPREVIOUS");
        }
        for (const l of labels) if (l !== "AWSCURRENT") v.stages.delete(l);
      }
      const version: Version = {
        id: randomUUID(),
        stages: new Set(labels),
        value,
        created: Date.now() / 1000,
      };
      secret.versions.push(version);
      return { versionId: version.id, arn: secret.arn };
    },
    deleteSecret(name) {
      find(name).deleted = true;
    },
    deny(name) {
      denied.add(name);
    },
  };
}
