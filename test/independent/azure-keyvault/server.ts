// An Azure Key Vault (keys) server and a minimal Microsoft Entra token endpoint, written
// from the Azure REST reference and the behaviour Azure documents, independently of the
// project's own test server. HTTPS only, on 127.0.0.1.
//
// Key Vault, as modelled here:
// - every request needs `api-version`; without a bearer token the answer is 401 with
//   `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>",
//   resource="https://vault.azure.net"` (or the `scope="…/.default"` form, or the Managed HSM
//   resource `https://managedhsm.azure.net`); the SDK sends its first request without body.
// - GET /keys/{name}[/{version}] → KeyBundle { key: JWK (kid, kty, key_ops, n, e), attributes
//   { enabled, nbf, exp, created, updated (Unix seconds), recoveryLevel } }.
// - POST /keys/{name}/{version}/wrapkey | unwrapkey { alg, value (base64url) } → { kid, value }.
//   RSA-OAEP (SHA-1), RSA-OAEP-256 (SHA-256 + MGF1-SHA-256), RSA1_5 for RSA keys; A256KW
//   (RFC 3394) for oct / oct-HSM keys.
// - A disabled key refuses unwrapKey (403 Forbidden / innererror KeyDisabled); Key Vault still
//   accepts wrapKey (a public-key operation) on it. key_ops not listing the operation → 403
//   KeyOperationForbidden. Outside nbf/exp: wrapKey refused (403), unwrapKey allowed (no
//   crypto-lock). Missing key/version → 404 KeyNotFound. RBAC denial → 403 ForbiddenByRbac.
// - Errors: { "error": { "code", "message", "innererror"?: { "code" } } }, x-ms-request-id.
// Entra: GET /{tenant}/v2.0/.well-known/openid-configuration and POST /{tenant}/oauth2/v2.0/token
// (client_credentials with client_secret; a wrong secret → 401 invalid_client AADSTS7000215).
import {
  constants,
  createCipheriv,
  createDecipheriv,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  randomUUID,
} from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { selfSignedCert } from "./cert.js";

export type Op = "get" | "wrapkey" | "unwrapkey" | "token" | "openid";

export interface KeyVersion {
  version: string;
  kty: "RSA" | "RSA-HSM" | "oct-HSM";
  keyOps: string[];
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
  privateKey?: KeyObject;
  publicKey?: KeyObject;
  aesKey?: Buffer;
}

export type Fault =
  | {
      kind: "status";
      status: number;
      code: string;
      message: string;
      retryAfter?: string;
      inner?: string;
    }
  | { kind: "json"; status: number; body: unknown }
  | { kind: "drop" }
  | { kind: "hang" };

export interface LoggedRequest {
  method: string;
  path: string;
  apiVersion: string | null;
  authorized: boolean;
  op: Op | "other";
  status: number;
  body: string;
}

export interface ServerOptions {
  /** Challenge form: `resource` (Key Vault's usual), `scope`, or `hsm` (Managed HSM resource). */
  challenge?: "resource" | "scope" | "hsm";
  /** The tenant the challenge names (default: the server's own tenant). */
  challengeTenant?: string;
  /** The resource the challenge names instead of Key Vault's (a misdirected or hostile server). */
  challengeResource?: string;
  /** Audience the vault accepts tokens for (default: the challenge's resource). */
  audience?: string;
}

const B64URL = /^[A-Za-z0-9_-]*$/;
const AKV_RESOURCE = "https://vault.azure.net";
const HSM_RESOURCE = "https://managedhsm.azure.net";
const SUPPORTED_API = /^7\.[0-6](-preview(\.\d+)?)?$/;

export class IndependentKeyVault {
  readonly tenantId = randomUUID();
  readonly clientId = randomUUID();
  readonly clientSecret = `independent-secret-${randomBytes(12).toString("hex")}`;
  readonly cert = selfSignedCert(["localhost", "*.vault.azure.net", "*.managedhsm.azure.net"]);
  readonly keys = new Map<string, KeyVersion[]>();
  /** Principal permissions (RBAC data actions) by operation; all allowed by default. */
  readonly denied = new Set<"get" | "wrapkey" | "unwrapkey">();
  readonly log: LoggedRequest[] = [];
  readonly faults: { op: Op; fault: Fault }[] = [];
  readonly tokens = new Map<string, { audience: string; expiresAt: number }>();
  tokenRequests = 0;
  /** Lifetime of issued tokens, in seconds. */
  tokenLifetime = 3600;
  #server: Server | undefined;
  #sockets = new Set<Socket>();
  #hanging = new Set<ServerResponse>();
  port = 0;

  constructor(readonly options: ServerOptions = {}) {}

  get resource(): string {
    return this.options.challenge === "hsm" ? HSM_RESOURCE : AKV_RESOURCE;
  }

  /** https://localhost:<port> */
  get url(): string {
    return `https://localhost:${this.port}`;
  }

  async start(): Promise<this> {
    this.#server = createServer({ cert: this.cert.certPem, key: this.cert.keyPem }, (req, res) => {
      this.#handle(req, res).catch((error) => {
        if (!res.headersSent)
          this.#send(req, res, "other", 500, {
            error: { code: "InternalError", message: String(error) },
          });
      });
    });
    this.#server.on("connection", (s: Socket) => {
      this.#sockets.add(s);
      s.on("close", () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const r of this.#hanging) r.destroy();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }

  // ---- administration (what the portal / az CLI would do) ----

  /** Creates a key (first version) and returns its version. */
  createKey(
    name: string,
    init: Partial<Omit<KeyVersion, "version" | "created" | "updated">> & { size?: number } = {},
  ): string {
    if (this.keys.has(name.toLowerCase())) throw new Error(`key ${name} exists`);
    this.keys.set(name.toLowerCase(), []);
    return this.rotate(name, init);
  }

  /** Adds a new version (az keyvault key rotate): same type and ops unless given. */
  rotate(
    name: string,
    init: Partial<Omit<KeyVersion, "version" | "created" | "updated">> & { size?: number } = {},
  ): string {
    const versions = this.keys.get(name.toLowerCase());
    if (!versions) throw new Error(`no key ${name}`);
    const last = versions.at(-1);
    const kty = init.kty ?? last?.kty ?? "RSA";
    const now = Math.floor(Date.now() / 1000);
    const v: KeyVersion = {
      version: randomBytes(16).toString("hex"),
      kty,
      keyOps: init.keyOps ??
        last?.keyOps ?? ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"],
      enabled: init.enabled ?? true,
      ...(init.nbf !== undefined ? { nbf: init.nbf } : {}),
      ...(init.exp !== undefined ? { exp: init.exp } : {}),
      created: now,
      updated: now,
    };
    if (kty === "oct-HSM") v.aesKey = randomBytes(32);
    else {
      const pair = generateKeyPairSync("rsa", { modulusLength: init.size ?? 2048 });
      v.privateKey = pair.privateKey;
      v.publicKey = pair.publicKey;
    }
    versions.push(v);
    return v.version;
  }

  version(name: string, version?: string): KeyVersion {
    const versions = this.keys.get(name.toLowerCase());
    const v = version
      ? versions?.find((x) => x.version === version.toLowerCase())
      : versions?.at(-1);
    if (!v) throw new Error(`no ${name}/${version}`);
    return v;
  }

  update(
    name: string,
    version: string | undefined,
    patch: Partial<Pick<KeyVersion, "enabled" | "nbf" | "exp" | "keyOps">>,
  ): void {
    const v = this.version(name, version);
    Object.assign(v, patch, { updated: Math.floor(Date.now() / 1000) });
    for (const k of ["nbf", "exp"] as const) if (k in patch && patch[k] === undefined) delete v[k];
  }

  deleteKey(name: string): void {
    this.keys.delete(name.toLowerCase());
  }

  fail(op: Op, fault: Fault, times = 1): void {
    for (let i = 0; i < times; i++) this.faults.push({ op, fault });
  }

  count(op: Op, opts: { authorized?: boolean; status?: number } = {}): number {
    return this.log.filter(
      (r) =>
        r.op === op &&
        (opts.authorized === undefined || r.authorized === opts.authorized) &&
        (opts.status === undefined || r.status === opts.status),
    ).length;
  }

  /** A token the vault accepts, without going through the token endpoint. */
  issueToken(audience = this.resource, lifetime = this.tokenLifetime): string {
    const token = `kvtok.${randomBytes(18).toString("base64url")}`;
    this.tokens.set(token, { audience, expiresAt: Date.now() + lifetime * 1000 });
    return token;
  }

  // ---- HTTP ----

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "https://localhost");
    const body = await readBody(req);
    const parts = url.pathname.split("/").slice(1);
    // Entra
    if (parts[1] === "v2.0" && parts[2] === ".well-known" && req.method === "GET") {
      return this.#entra(req, res, "openid", parts[0]!, url, body);
    }
    if (
      parts[1] === "oauth2" &&
      parts[2] === "v2.0" &&
      parts[3] === "token" &&
      req.method === "POST"
    ) {
      return this.#entra(req, res, "token", parts[0]!, url, body);
    }
    // Key Vault
    const segs = url.pathname.split("/").slice(1);
    if (segs.at(-1) === "") segs.pop();
    const op: Op | "other" =
      segs[0] !== "keys"
        ? "other"
        : req.method === "GET" && (segs.length === 2 || segs.length === 3)
          ? "get"
          : req.method === "POST" && segs.length === 4 && segs[3] === "wrapkey"
            ? "wrapkey"
            : req.method === "POST" && segs.length === 4 && segs[3] === "unwrapkey"
              ? "unwrapkey"
              : "other";
    const apiVersion = url.searchParams.get("api-version");
    const auth = req.headers.authorization;
    const token = auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
    const grant = token ? this.tokens.get(token) : undefined;
    const authorized = grant !== undefined;
    const entry: LoggedRequest = {
      method: req.method ?? "",
      path: url.pathname,
      apiVersion,
      authorized,
      op,
      status: 0,
      body,
    };
    this.log.push(entry);
    const send = (
      status: number,
      json: unknown,
      headers: Record<string, string> = {},
    ): undefined => {
      entry.status = status;
      return this.#send(req, res, op, status, json, headers);
    };
    const error = (
      status: number,
      code: string,
      message: string,
      inner?: string,
      headers?: Record<string, string>,
    ) =>
      send(
        status,
        { error: { code, message, ...(inner ? { innererror: { code: inner } } : {}) } },
        headers,
      );

    if (!apiVersion)
      return error(400, "BadParameter", "The 'api-version' query parameter is missing.");
    if (!SUPPORTED_API.test(apiVersion))
      return error(
        400,
        "BadParameter",
        `The specified version (${apiVersion}) is not recognized. Consider using the latest supported version.`,
      );
    const challenge = this.#challenge();
    if (!token) {
      return error(
        401,
        "Unauthorized",
        "AKV10000: Request is missing a Bearer or PoP token.",
        undefined,
        { "www-authenticate": challenge },
      );
    }
    if (!grant)
      return error(401, "Unauthorized", "AKV10032: Invalid issuer or signature.", undefined, {
        "www-authenticate": challenge,
      });
    if (grant.expiresAt < Date.now())
      return error(401, "Unauthorized", "AKV10022: Invalid audience or token expired.", undefined, {
        "www-authenticate": challenge,
      });
    const audience = this.options.audience ?? this.resource;
    if (grant.audience !== audience) {
      return error(
        401,
        "Unauthorized",
        `AKV10022: Invalid audience. Expected ${audience}, found: ${grant.audience}.`,
        undefined,
        { "www-authenticate": challenge },
      );
    }
    if (op !== "other") {
      const fault = this.#takeFault(op);
      if (fault) {
        if (fault.kind === "drop") {
          entry.status = -1;
          req.socket.destroy();
          return;
        }
        if (fault.kind === "json") return send(fault.status, fault.body);
        if (fault.kind === "hang") {
          entry.status = -2;
          this.#hanging.add(res);
          return;
        }
        return error(
          fault.status,
          fault.code,
          fault.message,
          fault.inner,
          fault.retryAfter ? { "retry-after": fault.retryAfter } : {},
        );
      }
    }
    if (op === "other")
      return error(
        404,
        "NotFound",
        `The requested resource ${req.method} ${url.pathname} is not supported by this test vault.`,
      );
    const vaultBase = `https://${req.headers.host}`;
    if (this.denied.has(op)) {
      const action =
        op === "get" ? "keys/read" : op === "wrapkey" ? "keys/wrap/action" : "keys/unwrap/action";
      return error(
        403,
        "Forbidden",
        `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=${this.clientId};oid=${this.clientId}\r\nAction: 'Microsoft.KeyVault/vaults/${action}'\r\nResource: '/keys/${segs[1]}'\r\nAssignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC'\r\nVault: independent;location=local`,
        "ForbiddenByRbac",
      );
    }
    const name = decodeURIComponent(segs[1] ?? "");
    const versions = this.keys.get(name.toLowerCase());
    const version = segs[2] ? decodeURIComponent(segs[2]).toLowerCase() : undefined;
    const key = version ? versions?.find((v) => v.version === version) : versions?.at(-1);
    if (!versions || !key) {
      return error(
        404,
        "KeyNotFound",
        `A key with (name/id) ${name}${version ? `/${version}` : ""} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
      );
    }
    const kid = `${vaultBase}/keys/${name}/${key.version}`;
    if (op === "get") return send(200, this.#bundle(kid, key));

    // wrapkey / unwrapkey
    let params: { alg?: unknown; value?: unknown };
    try {
      params = JSON.parse(body);
    } catch {
      return error(400, "BadParameter", "The request body is not valid JSON.");
    }
    const alg = params.alg;
    if (typeof alg !== "string" || alg.length === 0)
      return error(400, "BadParameter", "Property 'alg' is required.");
    if (typeof params.value !== "string" || !B64URL.test(params.value))
      return error(400, "BadParameter", "Property 'value' must be a base64url string.");
    const value = Buffer.from(params.value, "base64url");
    const opName = op === "wrapkey" ? "wrapKey" : "unwrapKey";
    if (!key.keyOps.includes(opName)) {
      return error(
        403,
        "Forbidden",
        `Operation ${opName} is not permitted on this key.`,
        "KeyOperationForbidden",
      );
    }
    if (op === "unwrapkey" && !key.enabled) {
      return error(
        403,
        "Forbidden",
        "Operation unwrapKey is not allowed on a disabled key.",
        "KeyDisabled",
      );
    }
    const nowSec = Date.now() / 1000;
    if (op === "wrapkey" && key.nbf !== undefined && nowSec < key.nbf) {
      return error(
        403,
        "Forbidden",
        "Operation wrapKey is not allowed before the key's activation date (nbf).",
        "KeyNotYetValid",
      );
    }
    if (op === "wrapkey" && key.exp !== undefined && nowSec >= key.exp) {
      return error(
        403,
        "Forbidden",
        "Operation wrapKey is not allowed on an expired key.",
        "KeyExpired",
      );
    }
    const rsa = key.kty === "RSA" || key.kty === "RSA-HSM";
    const rsaAlgs: Record<string, { padding: number; oaepHash?: string }> = {
      "RSA-OAEP": { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
      "RSA-OAEP-256": { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      RSA1_5: { padding: constants.RSA_PKCS1_PADDING },
    };
    if (rsa ? !(alg in rsaAlgs) : alg !== "A256KW") {
      return error(400, "BadParameter", `Invalid algorithm '${alg}' for a key of type ${key.kty}.`);
    }
    try {
      let out: Buffer;
      if (rsa) {
        const p = rsaAlgs[alg]!;
        out =
          op === "wrapkey"
            ? publicEncrypt({ key: key.publicKey!, ...p }, value)
            : privateDecrypt({ key: key.privateKey!, ...p }, value);
      } else {
        out = op === "wrapkey" ? aesKw(key.aesKey!, value, true) : aesKw(key.aesKey!, value, false);
      }
      return send(200, { kid, value: out.toString("base64url") });
    } catch {
      return error(
        400,
        "BadParameter",
        op === "wrapkey"
          ? "The value to wrap has an invalid length."
          : "Decryption failed: the ciphertext is invalid for this key.",
      );
    }
  }

  #bundle(kid: string, key: KeyVersion): unknown {
    const jwk: Record<string, unknown> = { kid, kty: key.kty, key_ops: key.keyOps };
    if (key.publicKey) {
      const exported = key.publicKey.export({ format: "jwk" }) as { n: string; e: string };
      jwk.n = exported.n;
      jwk.e = exported.e;
    }
    return {
      key: jwk,
      attributes: {
        enabled: key.enabled,
        ...(key.nbf !== undefined ? { nbf: key.nbf } : {}),
        ...(key.exp !== undefined ? { exp: key.exp } : {}),
        created: key.created,
        updated: key.updated,
        recoveryLevel: "Recoverable+Purgeable",
        recoverableDays: 90,
        exportable: false,
      },
    };
  }

  #challenge(): string {
    const authorization = `authorization="https://login.microsoftonline.com/${this.options.challengeTenant ?? this.tenantId}"`;
    if (this.options.challenge === "scope")
      return `Bearer ${authorization}, scope="${AKV_RESOURCE}/.default"`;
    return `Bearer ${authorization}, resource="${this.options.challengeResource ?? this.resource}"`;
  }

  #takeFault(op: Op): Fault | undefined {
    const i = this.faults.findIndex((f) => f.op === op);
    if (i < 0) return undefined;
    return this.faults.splice(i, 1)[0]!.fault;
  }

  #entra(
    req: IncomingMessage,
    res: ServerResponse,
    op: Op,
    tenant: string,
    url: URL,
    body: string,
  ): undefined {
    const entry: LoggedRequest = {
      method: req.method ?? "",
      path: url.pathname,
      apiVersion: null,
      authorized: false,
      op,
      status: 0,
      body: op === "token" ? "[token request]" : "",
    };
    this.log.push(entry);
    const send = (
      status: number,
      json: unknown,
      headers: Record<string, string> = {},
    ): undefined => {
      entry.status = status;
      return this.#send(req, res, op, status, json, headers);
    };
    const aad = (status: number, error: string, code: number, description: string) =>
      send(status, {
        error,
        error_description: `AADSTS${code}: ${description} Trace ID: ${randomUUID()} Correlation ID: ${randomUUID()} Timestamp: ${new Date().toISOString()}`,
        error_codes: [code],
        timestamp: new Date().toISOString(),
        trace_id: randomUUID(),
        correlation_id: randomUUID(),
      });
    if (op === "token") this.tokenRequests++;
    const fault = this.#takeFault(op);
    if (fault?.kind === "status") return aad(fault.status, fault.code, 50000, fault.message);
    if (tenant !== this.tenantId)
      return aad(400, "invalid_tenant", 90002, `Tenant '${tenant}' not found.`);
    const base = `https://${req.headers.host}/${tenant}`;
    if (op === "openid") {
      return send(200, {
        token_endpoint: `${base}/oauth2/v2.0/token`,
        token_endpoint_auth_methods_supported: [
          "client_secret_post",
          "private_key_jwt",
          "client_secret_basic",
        ],
        jwks_uri: `${base}/discovery/v2.0/keys`,
        response_modes_supported: ["query", "fragment", "form_post"],
        subject_types_supported: ["pairwise"],
        id_token_signing_alg_values_supported: ["RS256"],
        response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
        scopes_supported: ["openid", "profile", "email", "offline_access"],
        issuer: `${base}/v2.0`,
        request_uri_parameter_supported: false,
        userinfo_endpoint: "https://graph.microsoft.com/oidc/userinfo",
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
        http_logout_supported: true,
        frontchannel_logout_supported: true,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        claims_supported: ["sub", "iss", "aud", "exp", "iat", "tid"],
        kerberos_endpoint: `${base}/kerberos`,
        tenant_region_scope: "EU",
        cloud_instance_name: "microsoftonline.com",
        cloud_graph_host_name: "graph.windows.net",
        msgraph_host: "graph.microsoft.com",
        rbac_url: "https://pas.windows.net",
      });
    }
    const form = new URLSearchParams(body);
    if (form.get("grant_type") !== "client_credentials")
      return aad(
        400,
        "unsupported_grant_type",
        70003,
        "The app requested an unsupported grant type.",
      );
    if (form.get("client_id") !== this.clientId)
      return aad(
        400,
        "unauthorized_client",
        700016,
        `Application with identifier '${form.get("client_id")}' was not found in the directory.`,
      );
    if (form.get("client_secret") !== this.clientSecret) {
      return aad(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
      );
    }
    const scope = form.get("scope") ?? "";
    const resource = scope
      .split(" ")
      .find((s) => s.endsWith("/.default"))
      ?.slice(0, -"/.default".length);
    if (!resource)
      return aad(
        400,
        "invalid_scope",
        1002012,
        `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.`,
      );
    const token = this.issueToken(resource);
    return send(200, {
      token_type: "Bearer",
      expires_in: this.tokenLifetime,
      ext_expires_in: this.tokenLifetime,
      access_token: token,
    });
  }

  #send(
    _req: IncomingMessage,
    res: ServerResponse,
    _op: string,
    status: number,
    json: unknown,
    headers: Record<string, string> = {},
  ): undefined {
    const text = JSON.stringify(json);
    res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
      "x-ms-request-id": randomUUID(),
      "x-ms-keyvault-service-version": "1.9.0.0",
      "cache-control": "no-cache",
      ...headers,
    });
    res.end(text);
    return undefined;
  }
}

/** RFC 3394 AES key wrap with the default IV (what Key Vault's A256KW is). */
function aesKw(kek: Buffer, input: Buffer, wrap: boolean): Buffer {
  const iv = Buffer.from("A6A6A6A6A6A6A6A6", "hex");
  const c = wrap
    ? createCipheriv("id-aes256-wrap", kek, iv)
    : createDecipheriv("id-aes256-wrap", kek, iv);
  return Buffer.concat([c.update(input), c.final()]);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > 1 << 20) req.destroy();
      else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
