/**
 * An Azure Key Vault (keys) REST test server over HTTPS, driven by the real
 * `@azure/keyvault-keys` client. It speaks the wire protocol as the service does:
 *
 * - Bearer challenge: a request without `Authorization` gets 401 with
 *   `WWW-Authenticate: Bearer authorization="https://login.windows.net/<tenant>", resource="https://vault.azure.net"`
 *   and `{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}`
 *   (the header and body recorded from the live service in the Azure SDK's test recordings).
 *   The SDK sends that first request without a body, so auth is checked before anything else.
 *   Tokens not in `tokens` get 401 with the same challenge header.
 * - `api-version` is required and checked against `apiVersions`.
 * - Keys: create (RSA / RSA-HSM 2048/3072/4096, oct / oct-HSM 128/192/256), get (latest or
 *   by version; RSA JWKs carry `n`/`e`, symmetric keys no material), list versions, rotate,
 *   update (enabled, exp, nbf, key_ops, tags), delete (soft delete, get/purge deleted key),
 *   wrapkey / unwrapkey / encrypt / decrypt with RSA-OAEP, RSA-OAEP-256 and A128/192/256KW.
 *   Values are unpadded base64url; results are `{kid, value}`.
 * - Errors as Key Vault sends them: `{"error":{"code","message","innererror"?}}` —
 *   404 KeyNotFound, 403 Forbidden with innererror KeyDisabled for get / unwrap / decrypt on a
 *   disabled key (wrap and encrypt stay allowed, as on the live service), 403 Forbidden for a
 *   key operation the key does not allow, 400 BadParameter, 429 Throttled with Retry-After,
 *   5xx. RSA1_5 is refused (Node 20.11+ cannot do PKCS#1 v1.5 decryption).
 *
 * Fault injection (`faults`) applies to authenticated key requests; `calls` counts them per
 * operation (`getKey`, `wrapKey`, `unwrapKey`, …), plus `challenge` (401 without a token)
 * and `unauthorized` (401 for an unknown token).
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  generateKeyPair,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  randomUUID,
} from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { Socket } from "node:net";
import { promisify } from "node:util";
import { testCertificate } from "./tls.js";
import type { FaultOptions, TestServer } from "./types.js";

export type { FaultOptions, TestServer };

export interface AzureKeyVaultServerOptions {
  /** Bearer tokens the server accepts. Default `["test-token"]`. */
  tokens?: readonly string[];
  /** Tenant named in the challenge. Default a fixed GUID. */
  tenantId?: string;
  /** Resource named in the challenge. Default `https://vault.azure.net` (Managed HSM: `https://managedhsm.azure.net`). */
  resource?: string;
  /** Accepted `api-version` values. Default 7.4, 7.5, 7.6 and 2025-07-01. */
  apiVersions?: readonly string[];
  /** Retry-After seconds sent with 429. Default 1. */
  retryAfterSeconds?: number;
  /** Bind address. Default 127.0.0.1. */
  host?: string;
}

export interface AzureKeyVaultTestServer extends TestServer {
  /** PEM of the server's self-signed certificate, to trust in the client (`new https.Agent({ ca })`). */
  ca: string;
  /** Accepted bearer tokens; tests may add or remove. */
  tokens: Set<string>;
  /**
   * Departures from the live service, to test the client against other servers (a proxy,
   * an emulator). `getDisabledKeys`: a get of a disabled version answers 200 with
   * `attributes.enabled: false` instead of 403 KeyDisabled.
   */
  quirks: { getDisabledKeys: boolean };
}

type Kty = "RSA" | "RSA-HSM" | "oct" | "oct-HSM";

interface KeyVersion {
  version: string;
  kty: Kty;
  size: number;
  keyOps: string[];
  enabled: boolean;
  created: number;
  updated: number;
  exp?: number;
  nbf?: number;
  tags?: Record<string, string>;
  privateKey?: KeyObject;
  publicKey?: KeyObject;
  secret?: Buffer;
}

interface KeyRecord {
  name: string;
  versions: KeyVersion[]; // oldest first
  deleted?: { deletedDate: number; scheduledPurgeDate: number };
}

class KvError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly inner?: string,
  ) {
    super(message);
  }
}

const DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const RSA_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"];
const OCT_OPS = ["encrypt", "decrypt", "wrapKey", "unwrapKey"];
const KW = { A128KW: 16, A192KW: 24, A256KW: 32 } as const;
const OAEP = { "RSA-OAEP": "sha1", "RSA-OAEP-256": "sha256" } as const;
const generateRsa = promisify(generateKeyPair);

/**
 * Starts the server on a random port of 127.0.0.1.
 *
 * @example
 * const kv = await startAzureKeyVaultServer();
 * const agent = new https.Agent({ ca: kv.ca });
 * const keys = new KeyClient(kv.url, staticCredential("test-token"), {
 *   agent, serviceVersion: "7.6", disableChallengeResourceVerification: true,
 * });
 * await keys.createRsaKey("master", { keySize: 3072 });
 */
export async function startAzureKeyVaultServer(
  options: AzureKeyVaultServerOptions = {},
): Promise<AzureKeyVaultTestServer> {
  const { key, cert, ca } = await testCertificate();
  const tokens = new Set(options.tokens ?? ["test-token"]);
  const tenant = options.tenantId ?? DEFAULT_TENANT;
  const resource = options.resource ?? "https://vault.azure.net";
  const apiVersions = new Set(options.apiVersions ?? ["7.4", "7.5", "7.6", "2025-07-01"]);
  const latestApi = [...apiVersions].at(-1)!;
  const retryAfter = options.retryAfterSeconds ?? 1;
  const keys = new Map<string, KeyRecord>();
  const calls: Record<string, number> = {};
  const faults: FaultOptions = {};
  const quirks = { getDisabledKeys: false };
  const sockets = new Set<Socket>();
  let sequence = 0;

  const count = (op: string) => {
    calls[op] = (calls[op] ?? 0) + 1;
  };

  const server: Server = createServer({ key, cert }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, errorBody("InternalServerError", String(error)));
    });
  });
  server.on("secureConnection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "https://placeholder");
    const vault = `https://${req.headers.host}`;
    const route = resolveRoute(req.method ?? "GET", url.pathname);

    // 1. Authentication first: the SDK's first request carries no token and no body.
    const auth = req.headers.authorization;
    const challenge = `Bearer authorization="https://login.windows.net/${tenant}", resource="${resource}"`;
    if (!auth) {
      count("challenge");
      await drain(req);
      return send(
        res,
        401,
        errorBody("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."),
        {
          "www-authenticate": challenge,
        },
      );
    }
    const token = /^Bearer (.+)$/.exec(auth)?.[1];
    if (!token || !tokens.has(token)) {
      count("unauthorized");
      await drain(req);
      return send(
        res,
        401,
        errorBody(
          "Unauthorized",
          "AKV10032: Invalid issuer. The token is not valid for this vault.",
        ),
        {
          "www-authenticate": challenge,
        },
      );
    }

    const op = route?.op ?? "unknown";
    count(op);
    const seq = ++sequence;
    if (faults.latencyMs) await new Promise((r) => setTimeout(r, faults.latencyMs));
    if (faults.hang) return; // never answered; `close` destroys the socket
    if (faults.dropEvery && seq % faults.dropEvery === 0) {
      req.socket.destroy();
      return;
    }
    if (faults.throttleEvery && seq % faults.throttleEvery === 0) {
      await drain(req);
      return send(
        res,
        429,
        errorBody(
          "Throttled",
          "Request was not processed because too many requests were received. Reason: A1",
        ),
        { "retry-after": String(retryAfter) },
      );
    }
    if (faults.failEvery && seq % faults.failEvery === 0) {
      await drain(req);
      return send(
        res,
        503,
        errorBody("ServiceUnavailable", "The service is temporarily unavailable. Please retry."),
      );
    }

    try {
      const body = await readJson(req);
      const apiVersion = url.searchParams.get("api-version");
      if (!apiVersion)
        throw new KvError(
          400,
          "BadParameter",
          "The api-version query parameter (?api-version=) is required for all requests.",
        );
      if (!apiVersions.has(apiVersion)) {
        throw new KvError(
          400,
          "BadParameter",
          `The specified version (${apiVersion}) is not recognized. Consider using the latest supported version (${latestApi}).`,
        );
      }
      if (!route) throw new KvError(404, "NotFound", `No route for ${req.method} ${url.pathname}.`);
      const result = await route.run(vault, body);
      if (result === undefined) return send(res, 204, undefined);
      return send(res, 200, result);
    } catch (error) {
      if (error instanceof KvError)
        return send(res, error.status, errorBody(error.code, error.message, error.inner));
      throw error;
    }
  }

  type Route = {
    op: string;
    run(vault: string, body: Record<string, unknown>): Promise<unknown> | unknown;
  };

  function resolveRoute(method: string, path: string): Route | undefined {
    const seg = path.split("/").slice(1).map(decodeURIComponent); // ["keys", name, ...]
    if (seg[0] === "deletedkeys" && seg.length === 2) {
      const name = seg[1]!;
      if (method === "GET") return { op: "getDeletedKey", run: (v) => getDeleted(v, name) };
      if (method === "DELETE") return { op: "purgeDeletedKey", run: () => purge(name) };
      return undefined;
    }
    if (seg[0] !== "keys" || !seg[1]) return undefined;
    const name = seg[1];
    if (seg.length === 3 && method === "POST" && seg[2] === "create") {
      return { op: "createKey", run: (v, b) => create(v, name, b) };
    }
    if (seg.length === 3 && method === "POST" && seg[2] === "rotate")
      return { op: "rotateKey", run: (v) => rotate(v, name) };
    if (seg.length === 3 && method === "GET" && seg[2] === "versions")
      return { op: "getKeyVersions", run: (v) => versions(v, name) };
    if (seg.length === 2 && method === "DELETE")
      return { op: "deleteKey", run: (v) => remove(v, name) };
    if (seg.length <= 3 && method === "GET")
      return { op: "getKey", run: (v) => get(v, name, seg[2] ?? "") };
    if (seg.length <= 3 && method === "PATCH")
      return { op: "updateKey", run: (v, b) => update(v, name, seg[2] ?? "", b) };
    const action = seg[3];
    if (seg.length === 4 && method === "POST" && action) {
      const ops: Record<string, string> = {
        wrapkey: "wrapKey",
        unwrapkey: "unwrapKey",
        encrypt: "encrypt",
        decrypt: "decrypt",
      };
      const op = ops[action.toLowerCase()];
      if (op) return { op, run: (v, b) => crypt(v, name, seg[2] ?? "", op, b) };
    }
    return undefined;
  }

  // ---- key store -----------------------------------------------------------------------

  function record(name: string): KeyRecord {
    const found = keys.get(name.toLowerCase());
    if (!found || found.deleted) {
      throw new KvError(
        404,
        "KeyNotFound",
        `A key with (name/id) ${name} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
      );
    }
    return found;
  }

  function version(name: string, ver: string): { rec: KeyRecord; v: KeyVersion } {
    const rec = record(name);
    const v = ver ? rec.versions.find((x) => x.version === ver.toLowerCase()) : rec.versions.at(-1);
    if (!v) {
      throw new KvError(
        404,
        "KeyNotFound",
        `A key with (name/id) ${name}/${ver} was not found in this key vault.`,
      );
    }
    return { rec, v };
  }

  function requireEnabled(v: KeyVersion, operation: string): void {
    if (!v.enabled) {
      throw new KvError(
        403,
        "Forbidden",
        `Operation ${operation} is not allowed on a disabled key.`,
        "KeyDisabled",
      );
    }
  }

  async function newVersion(
    kty: Kty,
    size: number | undefined,
    keyOps: string[] | undefined,
    attrs: Attributes,
  ): Promise<KeyVersion> {
    const now = Math.floor(Date.now() / 1000);
    const base = {
      version: randomBytes(16).toString("hex"),
      kty,
      keyOps: keyOps ?? (kty.startsWith("RSA") ? RSA_OPS : OCT_OPS),
      enabled: attrs.enabled ?? true,
      created: now,
      updated: now,
      ...(attrs.exp !== undefined ? { exp: attrs.exp } : {}),
      ...(attrs.nbf !== undefined ? { nbf: attrs.nbf } : {}),
    };
    if (kty === "RSA" || kty === "RSA-HSM") {
      const bits = size ?? 2048;
      if (![2048, 3072, 4096].includes(bits))
        throw new KvError(
          400,
          "BadParameter",
          `Invalid key_size ${bits} for RSA keys: use 2048, 3072 or 4096.`,
        );
      const { privateKey, publicKey } = await generateRsa("rsa", {
        modulusLength: bits,
        publicExponent: 0x10001,
      });
      return { ...base, size: bits, privateKey, publicKey };
    }
    const bits = size ?? 256;
    if (![128, 192, 256].includes(bits))
      throw new KvError(
        400,
        "BadParameter",
        `Invalid key_size ${bits} for symmetric keys: use 128, 192 or 256.`,
      );
    return { ...base, size: bits, secret: randomBytes(bits / 8) };
  }

  async function create(vault: string, name: string, body: Record<string, unknown>) {
    if (!/^[0-9a-zA-Z-]{1,127}$/.test(name))
      throw new KvError(
        400,
        "BadParameter",
        "The key name must be 1-127 letters, digits and dashes.",
      );
    const kty = body.kty as Kty;
    if (!["RSA", "RSA-HSM", "oct", "oct-HSM"].includes(kty)) {
      throw new KvError(
        400,
        "BadParameter",
        `The key type "${String(kty)}" is not supported by this test server (RSA, RSA-HSM, oct, oct-HSM).`,
      );
    }
    const existing = keys.get(name.toLowerCase());
    if (existing?.deleted) {
      throw new KvError(
        409,
        "Conflict",
        `Key ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged.`,
      );
    }
    const v = await newVersion(
      kty,
      body.key_size as number | undefined,
      body.key_ops as string[] | undefined,
      attributesOf(body),
    );
    if (body.tags) v.tags = body.tags as Record<string, string>;
    const rec = existing ?? { name, versions: [] };
    rec.versions.push(v);
    keys.set(name.toLowerCase(), rec);
    return bundle(vault, rec, v);
  }

  async function rotate(vault: string, name: string) {
    const rec = record(name);
    const last = rec.versions.at(-1)!;
    const v = await newVersion(last.kty, last.size, [...last.keyOps], {});
    if (last.tags) v.tags = { ...last.tags };
    rec.versions.push(v);
    return bundle(vault, rec, v);
  }

  function get(vault: string, name: string, ver: string) {
    const { rec, v } = version(name, ver);
    if (!quirks.getDisabledKeys) requireEnabled(v, "get");
    return bundle(vault, rec, v);
  }

  function versions(vault: string, name: string) {
    const rec = record(name);
    return {
      value: rec.versions.map((v) => ({
        kid: `${vault}/keys/${rec.name}/${v.version}`,
        attributes: attributes(v),
        ...(v.tags ? { tags: v.tags } : {}),
      })),
      nextLink: null,
    };
  }

  function update(vault: string, name: string, ver: string, body: Record<string, unknown>) {
    const { rec, v } = version(name, ver);
    const attrs = attributesOf(body);
    if (attrs.enabled !== undefined) v.enabled = attrs.enabled;
    if (attrs.exp !== undefined) v.exp = attrs.exp;
    if (attrs.nbf !== undefined) v.nbf = attrs.nbf;
    if (Array.isArray(body.key_ops)) v.keyOps = body.key_ops as string[];
    if (body.tags) v.tags = body.tags as Record<string, string>;
    v.updated = Math.floor(Date.now() / 1000);
    return bundle(vault, rec, v);
  }

  function remove(vault: string, name: string) {
    const rec = record(name);
    const now = Math.floor(Date.now() / 1000);
    rec.deleted = { deletedDate: now, scheduledPurgeDate: now + 90 * 86400 };
    return deletedBundle(vault, rec);
  }

  function getDeleted(vault: string, name: string) {
    const rec = keys.get(name.toLowerCase());
    if (!rec?.deleted) throw new KvError(404, "KeyNotFound", `Deleted Key not found: ${name}`);
    return deletedBundle(vault, rec);
  }

  function purge(name: string) {
    const rec = keys.get(name.toLowerCase());
    if (!rec?.deleted) throw new KvError(404, "KeyNotFound", `Deleted Key not found: ${name}`);
    keys.delete(name.toLowerCase());
    return undefined;
  }

  function crypt(
    vault: string,
    name: string,
    ver: string,
    op: string,
    body: Record<string, unknown>,
  ) {
    const { rec, v } = version(name, ver);
    // As on the live service: public-key operations work on a disabled key, private ones do not.
    if (op === "unwrapKey" || op === "decrypt") requireEnabled(v, op);
    if (!v.keyOps.includes(op)) {
      throw new KvError(
        403,
        "Forbidden",
        `Operation ${op} is not permitted on this key (key_ops: ${v.keyOps.join(", ")}).`,
      );
    }
    const alg = body.alg;
    const value = body.value;
    if (typeof alg !== "string" || typeof value !== "string" || !/^[A-Za-z0-9_-]*$/.test(value)) {
      throw new KvError(400, "BadParameter", "The request must carry alg and a base64url value.");
    }
    const input = Buffer.from(value, "base64url");
    const forward = op === "wrapKey" || op === "encrypt";
    const kid = `${vault}/keys/${rec.name}/${v.version}`;
    return { kid, value: transform(v, alg, input, forward).toString("base64url") };
  }

  function transform(v: KeyVersion, alg: string, input: Buffer, forward: boolean): Buffer {
    if (v.kty.startsWith("RSA")) {
      if (alg === "RSA1_5") {
        throw new KvError(
          400,
          "BadParameter",
          "RSA1_5 is not supported by this test server (Node 20.11+ refuses PKCS#1 v1.5 decryption).",
        );
      }
      const hash = OAEP[alg as keyof typeof OAEP];
      if (!hash)
        throw new KvError(400, "BadParameter", `Algorithm ${alg} is not valid for an RSA key.`);
      const padding = constants.RSA_PKCS1_OAEP_PADDING;
      try {
        return forward
          ? publicEncrypt({ key: v.publicKey!, padding, oaepHash: hash }, input)
          : privateDecrypt({ key: v.privateKey!, padding, oaepHash: hash }, input);
      } catch {
        throw new KvError(
          400,
          "BadParameter",
          "The parameter is incorrect: the value could not be processed with this key and algorithm.",
        );
      }
    }
    const bytes = KW[alg as keyof typeof KW];
    if (!bytes || bytes !== v.secret!.length)
      throw new KvError(
        400,
        "BadParameter",
        `Algorithm ${alg} is not valid for a ${v.size}-bit symmetric key.`,
      );
    try {
      const cipher = (forward ? createCipheriv : createDecipheriv)(
        `id-aes${v.size}-wrap`,
        v.secret!,
        Buffer.from("A6A6A6A6A6A6A6A6", "hex"),
      );
      return Buffer.concat([cipher.update(input), cipher.final()]);
    } catch {
      throw new KvError(
        400,
        "BadParameter",
        "The parameter is incorrect: the value could not be processed with this key and algorithm.",
      );
    }
  }

  // ---- wire shapes -----------------------------------------------------------------------

  function attributes(v: KeyVersion) {
    return {
      enabled: v.enabled,
      ...(v.nbf !== undefined ? { nbf: v.nbf } : {}),
      ...(v.exp !== undefined ? { exp: v.exp } : {}),
      created: v.created,
      updated: v.updated,
      recoveryLevel: "Recoverable+Purgeable",
      recoverableDays: 90,
    };
  }

  function bundle(vault: string, rec: KeyRecord, v: KeyVersion) {
    const kid = `${vault}/keys/${rec.name}/${v.version}`;
    const jwk: Record<string, unknown> = { kid, kty: v.kty, key_ops: v.keyOps };
    if (v.publicKey) {
      const pub = v.publicKey.export({ format: "jwk" });
      jwk.n = pub.n;
      jwk.e = pub.e;
    }
    return { key: jwk, attributes: attributes(v), ...(v.tags ? { tags: v.tags } : {}) };
  }

  function deletedBundle(vault: string, rec: KeyRecord) {
    const v = rec.versions.at(-1)!;
    return {
      recoveryId: `${vault}/deletedkeys/${rec.name}`,
      deletedDate: rec.deleted!.deletedDate,
      scheduledPurgeDate: rec.deleted!.scheduledPurgeDate,
      ...bundle(vault, rec, v),
    };
  }

  await new Promise<void>((resolve) => server.listen(0, options.host ?? "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const host = options.host ?? "127.0.0.1";

  return {
    url: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca,
    tokens,
    calls,
    faults,
    quirks,
    resetCalls() {
      for (const k of Object.keys(calls)) delete calls[k];
      sequence = 0;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Attributes {
  enabled?: boolean;
  exp?: number;
  nbf?: number;
}

function attributesOf(body: Record<string, unknown>): Attributes {
  const a = (body.attributes ?? {}) as Record<string, unknown>;
  return {
    ...(typeof a.enabled === "boolean" ? { enabled: a.enabled } : {}),
    ...(typeof a.exp === "number" ? { exp: a.exp } : {}),
    ...(typeof a.nbf === "number" ? { nbf: a.nbf } : {}),
  };
}

function errorBody(code: string, message: string, inner?: string) {
  return { error: { code, message, ...(inner ? { innererror: { code: inner } } : {}) } };
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, {
    ...(text ? { "content-type": "application/json; charset=utf-8" } : {}),
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-cache",
    "x-ms-request-id": randomUUID(),
    "x-ms-keyvault-region": "local",
    "x-ms-keyvault-service-version": "1.9.0.0-test",
    ...headers,
  });
  res.end(text);
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const _ of req) {
    // discard
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 1 << 20) throw new KvError(413, "BadParameter", "Request body too large.");
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw new Error("not an object");
    return parsed as Record<string, unknown>;
  } catch {
    throw new KvError(400, "BadParameter", "The request body is not valid JSON.");
  }
}
