/**
 * A HashiCorp Vault test server speaking the HTTP API v1 the way node-vault and the vault
 * CLI use it: `X-Vault-Token` auth with ACL policies, `X-Vault-Namespace`, transit mounts
 * at any path (keys create/read/list/rotate/config/delete, datakey, encrypt, decrypt,
 * rewrap, batch_input), AppRole login, token create/lookup-self/renew-self, sys/health,
 * and Vault's `{"errors":[…]}` error shape with Vault's status codes and messages.
 *
 * Crypto is real: aes256-gcm96 key versions, ciphertexts `vault:vN:base64(nonce|ct|tag)`,
 * derived keys via HKDF-SHA256(key, info = context) with the context required exactly when
 * the key is derived (ignored otherwise), as Vault's keysutil does.
 *
 * LIST requests: node:http cannot parse the LIST verb, so listing is `GET ?list=true`, which
 * is what Vault's Go client (and the vault CLI) send, and node-vault with `noCustomHTTPVerbs`.
 *
 * Fault injection (latency, 429 every Nth request, 500 every Nth, dropped sockets, hang,
 * sealed) and per-operation call counts let tests assert how many KMS calls happened.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID } from "node:crypto";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { FaultOptions, TestServer } from "./types.js";

export type { FaultOptions, TestServer };

/** Vault ACL policy: path pattern (exact, trailing `*` glob, `+` segment) → capabilities. */
export type VaultPolicy = Record<string, readonly string[]>;

export interface VaultTransitServerOptions {
  /** Root token (all capabilities, never expires). Default `root`. */
  rootToken?: string;
  /** Transit mounts, e.g. `transit`, `secrets/transit`, or `{ path, namespace }`. Default `transit` in the root namespace. */
  mounts?: readonly (string | { path: string; namespace?: string })[];
  /** Named ACL policies tokens can carry. `default` is always attached, as in Vault. */
  policies?: Record<string, VaultPolicy>;
  /** Serve HTTPS; `ca` + `requestCert` demand a client certificate (mTLS). */
  tls?: {
    key: string | Buffer;
    cert: string | Buffer;
    ca?: string | Buffer;
    requestCert?: boolean;
  };
}

export interface TokenSpec {
  policies?: readonly string[];
  /** Seconds; 0 = no expiry. Default 3600. */
  ttl?: number;
  /** Seconds; cap for renewals. Default 0 (none). */
  maxTtl?: number;
  renewable?: boolean;
}

export interface AppRoleSpec {
  roleName?: string;
  /** Auth mount path. Default `approle`. */
  mount?: string;
  policies?: readonly string[];
  tokenTtl?: number;
  tokenMaxTtl?: number;
  renewable?: boolean;
}

export interface VaultTransitServer extends TestServer {
  rootToken: string;
  /** When true every request except sys/health answers 503 "Vault is sealed". */
  sealed: boolean;
  /** Issues a token directly (not counted as a call). */
  createToken(spec?: TokenSpec): string;
  revokeToken(token: string): void;
  /** Every live token except the root token (to revoke them in tests). */
  issuedTokens(): string[];
  /** Registers an AppRole role and returns a role_id and a fresh secret_id. */
  addAppRole(spec?: AppRoleSpec): { roleId: string; secretId: string };
  enableMount(path: string, namespace?: string): void;
  /** Number of versions of a key, or undefined (for assertions). */
  keyVersions(name: string, mount?: string, namespace?: string): number | undefined;
}

interface Token {
  id: string;
  accessor: string;
  policies: string[];
  ttl: number;
  renewable: boolean;
  created: number;
  expiresAt: number; // ms; 0 = never
  maxExpiresAt: number; // ms; 0 = none
  path: string;
  meta: Record<string, string> | null;
}

interface TransitKey {
  name: string;
  type: "aes256-gcm96";
  derived: boolean;
  exportable: boolean;
  deletionAllowed: boolean;
  versions: Buffer[];
  created: number[]; // unix seconds per version
  minDecryptionVersion: number;
  minEncryptionVersion: number;
}

interface Role {
  name: string;
  mount: string;
  roleId: string;
  secretIds: Set<string>;
  policies: string[];
  tokenTtl: number;
  tokenMaxTtl: number;
  renewable: boolean;
}

class VaultHttpError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
    readonly body?: unknown,
  ) {
    super(errors.join("; "));
  }
}

const invalid = (message: string) => new VaultHttpError(400, [message]);
const TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)";
const MISSING_CONTEXT =
  "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key";
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const MAX_BODY = 32 * 1024 * 1024; // Vault's default max_request_size
const DEFAULT_POLICY: VaultPolicy = {
  "auth/token/lookup-self": ["read"],
  "auth/token/renew-self": ["update"],
  "auth/token/revoke-self": ["update"],
};

/** Starts the server on 127.0.0.1 with a random port. */
export async function startVaultTransitServer(
  options: VaultTransitServerOptions = {},
): Promise<VaultTransitServer> {
  const rootToken = options.rootToken ?? "root";
  const tokens = new Map<string, Token>();
  const roles = new Map<string, Role>(); // key: `${mount}\0${roleId}`
  const policies: Record<string, VaultPolicy> = { default: DEFAULT_POLICY, ...options.policies };
  const mounts = new Set<string>(); // `${namespace}\0${path}`
  const keys = new Map<string, TransitKey>(); // `${namespace}\0${mount}\0${name}`
  const hanging = new Set<Socket>();
  const calls: Record<string, number> = {};
  const faults: FaultOptions = {};
  let requestCount = 0;

  tokens.set(rootToken, {
    id: rootToken,
    accessor: randomUUID(),
    policies: ["root"],
    ttl: 0,
    renewable: false,
    created: Date.now(),
    expiresAt: 0,
    maxExpiresAt: 0,
    path: "auth/token/root",
    meta: null,
  });
  for (const m of options.mounts ?? ["transit"]) {
    const spec = typeof m === "string" ? { path: m } : m;
    mounts.add(`${normNs(spec.namespace)}\0${trimSlashes(spec.path)}`);
  }

  function issueToken(
    spec: TokenSpec & { path: string; meta?: Record<string, string> | null },
  ): Token {
    const ttl = spec.ttl ?? 3600;
    const now = Date.now();
    const token: Token = {
      id: `hvs.${randomBytes(18).toString("base64url")}`,
      accessor: randomUUID(),
      policies: ["default", ...(spec.policies ?? []).filter((p) => p !== "default")],
      ttl,
      renewable: spec.renewable ?? true,
      created: now,
      expiresAt: ttl > 0 ? now + ttl * 1000 : 0,
      maxExpiresAt: spec.maxTtl ? now + spec.maxTtl * 1000 : 0,
      path: spec.path,
      meta: spec.meta ?? null,
    };
    tokens.set(token.id, token);
    return token;
  }

  function liveToken(id: string | undefined): Token | undefined {
    if (!id) return undefined;
    const token = tokens.get(id);
    if (!token) return undefined;
    if (token.expiresAt && token.expiresAt <= Date.now()) {
      tokens.delete(id);
      return undefined;
    }
    return token;
  }

  function allowed(token: Token, path: string, capability: string): boolean {
    if (token.policies.includes("root")) return true;
    let granted = false;
    for (const name of token.policies) {
      const policy = policies[name];
      if (!policy) continue;
      for (const [pattern, caps] of Object.entries(policy)) {
        if (!pathMatches(pattern, path)) continue;
        if (caps.includes("deny")) return false;
        if (caps.includes(capability)) granted = true;
      }
    }
    return granted;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://vault");
    const method = (req.method ?? "GET").toUpperCase();
    const namespace = normNs(header(req, "x-vault-namespace"));
    if (!url.pathname.startsWith("/v1/")) throw new VaultHttpError(404, []);
    const path = decodeURIComponent(url.pathname.slice(4)).replace(/\/+$/, "");
    const listing =
      method === "LIST" ||
      (method === "GET" && ["true", "1"].includes(url.searchParams.get("list") ?? ""));
    const route = resolve(path, namespace, listing ? "LIST" : method);
    calls[route.op] = (calls[route.op] ?? 0) + 1;

    // Faults come before anything else, like a proxy or an overloaded node would.
    const n = ++requestCount;
    if (faults.latencyMs) await sleep(faults.latencyMs);
    if (faults.hang) {
      hanging.add(req.socket);
      return; // never answer
    }
    if (faults.dropEvery && n % faults.dropEvery === 0) {
      req.socket.destroy();
      return;
    }
    if (faults.throttleEvery && n % faults.throttleEvery === 0) {
      throw new VaultHttpError(429, [`request path "${path}": rate limit quota exceeded`]);
    }
    if (faults.failEvery && n % faults.failEvery === 0) {
      throw new VaultHttpError(500, ["internal error"]);
    }
    if (server.sealed && route.op !== "sys.health")
      throw new VaultHttpError(503, ["Vault is sealed"]);

    const body = await readJson(req);
    let token: Token | undefined;
    if (!route.unauthenticated) {
      const presented = header(req, "x-vault-token");
      if (!presented) throw new VaultHttpError(403, ["missing client token"]);
      token = liveToken(presented);
      if (!token) throw new VaultHttpError(403, ["permission denied"]);
      const capability = route.capability(body);
      if (!allowed(token, route.aclPath, capability))
        throw new VaultHttpError(403, ["permission denied"]);
    }
    const result = await route.run(body, token);
    if (result === undefined) {
      res.writeHead(204).end();
      return;
    }
    const status = result.status ?? 200;
    send(res, status, {
      request_id: randomUUID(),
      lease_id: "",
      renewable: false,
      lease_duration: 0,
      data: result.data ?? null,
      wrap_info: null,
      warnings: result.warnings ?? null,
      auth: result.auth ?? null,
      mount_type: route.mountType ?? "",
    });
  }

  interface Result {
    status?: number;
    data?: unknown;
    auth?: unknown;
    warnings?: string[];
  }
  interface Route {
    op: string;
    aclPath: string;
    unauthenticated?: boolean;
    mountType?: string;
    capability(body: Body): string;
    run(body: Body, token: Token | undefined): Promise<Result | undefined> | Result | undefined;
  }
  type Body = Record<string, unknown>;

  function resolve(path: string, namespace: string, method: string): Route {
    const update = ["POST", "PUT"].includes(method);
    const fixed = (cap: string) => () => cap;
    if (path === "sys/health" && method === "GET") {
      return {
        op: "sys.health",
        aclPath: path,
        unauthenticated: true,
        capability: fixed("read"),
        run: () => {
          if (server.sealed)
            throw new VaultHttpError(503, [], { initialized: true, sealed: true, standby: false });
          return { data: undefined, status: 200 } as Result;
        },
      };
    }
    // AppRole login: auth/<mount>/login
    const login = /^auth\/(.+)\/login$/.exec(path);
    if (login && update && [...roles.values()].some((r) => r.mount === login[1])) {
      return {
        op: "auth.approle.login",
        aclPath: path,
        unauthenticated: true,
        capability: fixed("update"),
        run: (b) => appRoleLogin(login[1]!, b),
      };
    }
    if (path === "auth/token/lookup-self" && method === "GET") {
      return {
        op: "auth.token.lookup-self",
        aclPath: path,
        capability: fixed("read"),
        run: (_b, t) => ({ data: lookup(t!) }),
      };
    }
    if (path === "auth/token/renew-self" && update) {
      return {
        op: "auth.token.renew-self",
        aclPath: path,
        capability: fixed("update"),
        run: (b, t) => renewSelf(b, t!),
      };
    }
    if (path === "auth/token/revoke-self" && update) {
      return {
        op: "auth.token.revoke-self",
        aclPath: path,
        capability: fixed("update"),
        run: (_b, t) => {
          tokens.delete(t!.id);
          return undefined;
        },
      };
    }
    if (path === "auth/token/create" && update) {
      return {
        op: "auth.token.create",
        aclPath: path,
        capability: fixed("update"),
        run: (b, t) => createTokenRoute(b, t!),
      };
    }
    const transit = matchTransit(path, namespace);
    if (transit) {
      const { mount, rest } = transit;
      const key = (name: string) => keys.get(`${namespace}\0${mount}\0${name}`);
      const base = { aclPath: path, mountType: "transit" };
      const keyPath = /^keys\/([^/]+)$/.exec(rest);
      const rotatePath = /^keys\/([^/]+)\/rotate$/.exec(rest);
      const configPath = /^keys\/([^/]+)\/config$/.exec(rest);
      const dataKeyPath = /^datakey\/([^/]+)\/([^/]+)$/.exec(rest);
      const encryptPath = /^encrypt\/([^/]+)$/.exec(rest);
      const decryptPath = /^decrypt\/([^/]+)$/.exec(rest);
      const rewrapPath = /^rewrap\/([^/]+)$/.exec(rest);
      if (rest === "keys" && method === "LIST") {
        return {
          ...base,
          op: "keys.list",
          capability: fixed("list"),
          run: () => {
            const names = [...keys.keys()]
              .filter((k) => k.startsWith(`${namespace}\0${mount}\0`))
              .map((k) => k.split("\0")[2]!);
            if (names.length === 0) throw new VaultHttpError(404, []);
            return { data: { keys: names.sort() } };
          },
        };
      }
      if (keyPath) {
        const name = keyPath[1]!;
        if (method === "GET") {
          return {
            ...base,
            op: "keys.read",
            capability: fixed("read"),
            run: () => {
              const k = key(name);
              if (!k) throw new VaultHttpError(404, []);
              return { data: describe(k) };
            },
          };
        }
        if (update) {
          return {
            ...base,
            op: "keys.create",
            capability: fixed("update"),
            run: (b) => ({ data: describe(createKey(namespace, mount, name, b)) }),
          };
        }
        if (method === "DELETE") {
          return {
            ...base,
            op: "keys.delete",
            capability: fixed("delete"),
            run: () => {
              const k = key(name);
              if (!k) return undefined;
              if (!k.deletionAllowed)
                throw invalid(
                  `error deleting policy ${name}: deletion is not allowed for this key`,
                );
              keys.delete(`${namespace}\0${mount}\0${name}`);
              return undefined;
            },
          };
        }
      }
      if (rotatePath && update) {
        const name = rotatePath[1]!;
        return {
          ...base,
          op: "keys.rotate",
          capability: fixed("update"),
          run: () => {
            const k = key(name);
            if (!k) throw invalid("key not found");
            k.versions.push(randomBytes(32));
            k.created.push(Math.floor(Date.now() / 1000));
            return { data: describe(k) };
          },
        };
      }
      if (configPath && update) {
        const name = configPath[1]!;
        return {
          ...base,
          op: "keys.config",
          capability: fixed("update"),
          run: (b) => configKey(key(name), name, b),
        };
      }
      if (dataKeyPath && update) {
        const [kind, name] = [dataKeyPath[1]!, dataKeyPath[2]!];
        return {
          ...base,
          op: "datakey",
          capability: fixed("update"),
          run: (b) => dataKey(key(name), kind, b),
        };
      }
      if (encryptPath && update) {
        const name = encryptPath[1]!;
        // Vault's existence check: encrypting under a missing key is a *create* (upsert).
        return {
          ...base,
          op: "encrypt",
          capability: () => (key(name) ? "update" : "create"),
          run: (b) => encrypt(key(name) ?? upsert(namespace, mount, name, b), b),
        };
      }
      if (decryptPath && update) {
        const name = decryptPath[1]!;
        return {
          ...base,
          op: "decrypt",
          capability: fixed("update"),
          run: (b) => decrypt(key(name), b),
        };
      }
      if (rewrapPath && update) {
        const name = rewrapPath[1]!;
        return {
          ...base,
          op: "rewrap",
          capability: fixed("update"),
          run: (b) => rewrap(key(name), b),
        };
      }
    }
    return {
      op: "unknown",
      aclPath: path,
      capability: fixed(update ? "update" : "read"),
      run: () => {
        throw new VaultHttpError(404, [`no handler for route "${path}". route entry not found.`]);
      },
    };
  }

  function matchTransit(
    path: string,
    namespace: string,
  ): { mount: string; rest: string } | undefined {
    // Longest mount prefix wins, as in Vault's router.
    let best: string | undefined;
    for (const entry of mounts) {
      const [ns, mount] = entry.split("\0") as [string, string];
      if (ns !== namespace) continue;
      if ((path === mount || path.startsWith(`${mount}/`)) && (!best || mount.length > best.length))
        best = mount;
    }
    return best === undefined ? undefined : { mount: best, rest: path.slice(best.length + 1) };
  }

  function createKey(namespace: string, mount: string, name: string, body: Body): TransitKey {
    const id = `${namespace}\0${mount}\0${name}`;
    const existing = keys.get(id);
    if (existing) return existing;
    if (!/^\w(([\w.@-]+)?\w)?$/.test(name)) throw invalid(`invalid key name "${name}"`);
    const type = str(body.type, "type") || "aes256-gcm96";
    if (type !== "aes256-gcm96")
      throw invalid(`unknown key type: ${type} (this test server supports aes256-gcm96)`);
    if (bool(body.convergent_encryption))
      throw invalid("convergent encryption is not supported by this test server");
    const key: TransitKey = {
      name,
      type,
      derived: bool(body.derived),
      exportable: bool(body.exportable),
      deletionAllowed: false,
      versions: [randomBytes(32)],
      created: [Math.floor(Date.now() / 1000)],
      minDecryptionVersion: 1,
      minEncryptionVersion: 0,
    };
    keys.set(id, key);
    return key;
  }

  function upsert(namespace: string, mount: string, name: string, body: Body): TransitKey {
    const first = Array.isArray(body.batch_input)
      ? (body.batch_input[0] as Body | undefined)
      : body;
    const derived = typeof first?.context === "string" && first.context.length > 0;
    return createKey(namespace, mount, name, { type: body.type, derived });
  }

  function describe(k: TransitKey): Record<string, unknown> {
    return {
      allow_plaintext_backup: false,
      auto_rotate_period: 0,
      deletion_allowed: k.deletionAllowed,
      derived: k.derived,
      ...(k.derived ? { kdf: "hkdf_sha256" } : {}),
      exportable: k.exportable,
      imported_key: false,
      keys: Object.fromEntries(k.created.map((t, i) => [String(i + 1), t])),
      latest_version: k.versions.length,
      min_available_version: 0,
      min_decryption_version: k.minDecryptionVersion,
      min_encryption_version: k.minEncryptionVersion,
      name: k.name,
      supports_decryption: true,
      supports_derivation: true,
      supports_encryption: true,
      supports_signing: false,
      type: k.type,
    };
  }

  function configKey(k: TransitKey | undefined, name: string, body: Body): Result {
    if (!k) throw invalid(`no existing key named ${name} could be found`);
    const latest = k.versions.length;
    let minDec = k.minDecryptionVersion;
    let minEnc = k.minEncryptionVersion;
    if (body.min_decryption_version !== undefined) {
      minDec = int(body.min_decryption_version, "min_decryption_version");
      if (minDec < 0) throw invalid("min decryption version cannot be negative");
      if (minDec === 0) minDec = 1;
      if (minDec > latest)
        throw invalid(
          `cannot set min decryption version of ${minDec}, latest key version is ${latest}`,
        );
    }
    if (body.min_encryption_version !== undefined) {
      minEnc = int(body.min_encryption_version, "min_encryption_version");
      if (minEnc < 0) throw invalid("min encryption version cannot be negative");
      if (minEnc > latest)
        throw invalid(
          `cannot set min encryption version of ${minEnc}, latest key version is ${latest}`,
        );
    }
    if (minEnc > 0 && minEnc < minDec)
      throw invalid("min encryption version should not be less than min decryption version");
    k.minDecryptionVersion = minDec;
    k.minEncryptionVersion = minEnc;
    if (body.deletion_allowed !== undefined) k.deletionAllowed = bool(body.deletion_allowed);
    if (body.exportable !== undefined) {
      if (k.exportable && !bool(body.exportable))
        throw invalid("exportable key cannot be made non-exportable");
      k.exportable = bool(body.exportable);
    }
    return { data: describe(k) };
  }

  function encryptVersion(k: TransitKey, requested: number): number {
    if (requested === 0) return k.versions.length;
    if (requested < 0) throw invalid("requested version for encryption is negative");
    if (requested < k.minEncryptionVersion) {
      throw invalid(
        "requested version for encryption is less than the minimum encryption key version",
      );
    }
    if (requested > k.versions.length)
      throw invalid("requested version for encryption is higher than the latest key version");
    return requested;
  }

  function seal(k: TransitKey, version: number, context: Buffer, plaintext: Buffer): string {
    const key = versionKey(k, version, context);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key, nonce);
    const out = Buffer.concat([
      nonce,
      cipher.update(plaintext),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    return `vault:v${version}:${out.toString("base64")}`;
  }

  function open(
    k: TransitKey,
    context: Buffer,
    value: string,
  ): { plaintext: Buffer; version: number } {
    if (!value.startsWith("vault:v")) throw invalid("invalid ciphertext: no prefix");
    const rest = value.slice("vault:v".length);
    const colon = rest.indexOf(":");
    if (colon < 0) throw invalid("invalid ciphertext: wrong number of fields");
    const digits = rest.slice(0, colon);
    if (!/^-?\d+$/.test(digits))
      throw invalid("invalid ciphertext: version number could not be decoded");
    let version = Number(digits);
    if (version === 0) version = 1; // Vault's compatibility with zero-based versions
    if (version > k.versions.length) throw invalid("invalid ciphertext: version is too new");
    if (version < k.minDecryptionVersion) throw invalid(TOO_OLD);
    const b64 = rest.slice(colon + 1);
    if (!isBase64(b64)) throw invalid("invalid ciphertext: could not decode base64");
    const raw = Buffer.from(b64, "base64");
    const key = versionKey(k, version, context);
    if (raw.length < NONCE_BYTES + TAG_BYTES) throw invalid("invalid ciphertext length");
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, NONCE_BYTES));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      const plaintext = Buffer.concat([
        decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return { plaintext, version };
    } catch {
      throw invalid("cipher: message authentication failed");
    }
  }

  // Vault's DeriveKey: non-derived keys ignore the context; derived keys require one.
  function versionKey(k: TransitKey, version: number, context: Buffer): Buffer {
    const base = k.versions[version - 1];
    if (!base) throw invalid("invalid key version");
    if (!k.derived) return base;
    if (context.length === 0) throw invalid(MISSING_CONTEXT);
    return Buffer.from(hkdfSync("sha256", base, Buffer.alloc(0), context, 32));
  }

  function dataKey(k: TransitKey | undefined, kind: string, body: Body): Result {
    if (kind !== "plaintext" && kind !== "wrapped")
      throw invalid("Invalid path, must be 'plaintext' or 'wrapped'");
    const context = b64Field(body.context, "failed to base64-decode context");
    if (!k) throw invalid("encryption key not found");
    const bits = body.bits === undefined ? 256 : int(body.bits, "bits");
    if (![128, 256, 512].includes(bits)) throw invalid("invalid bit length");
    const version = encryptVersion(
      k,
      body.key_version === undefined ? 0 : int(body.key_version, "key_version"),
    );
    const fresh = randomBytes(bits / 8);
    // Like Vault: the raw key bytes are encrypted, so decrypt returns base64(key).
    const ciphertext = seal(k, version, context, fresh);
    const data: Record<string, unknown> = { ciphertext, key_version: version };
    if (kind === "plaintext") data.plaintext = fresh.toString("base64");
    return { data };
  }

  function batch(body: Body, single: () => Body): { items: Body[]; isBatch: boolean } {
    if (body.batch_input !== undefined) {
      if (!Array.isArray(body.batch_input)) throw invalid("failed to parse batch input");
      if (body.batch_input.length === 0) throw invalid("missing batch input to process");
      return { items: body.batch_input as Body[], isBatch: true };
    }
    return { items: [single()], isBatch: false };
  }

  function runBatch(
    body: Body,
    isBatch: boolean,
    items: Body[],
    op: (item: Body) => Record<string, unknown>,
    checkContexts: boolean,
  ): Result {
    if (checkContexts && isBatch) {
      const set = nonEmpty(items[0]?.context);
      if (items.some((i) => nonEmpty(i.context) !== set)) {
        throw invalid("context should be set either in all the request blocks or in none");
      }
    }
    const results = items.map((item) => {
      const reference = typeof item.reference === "string" ? item.reference : "";
      try {
        return { ...op(item), ...(isBatch ? { reference } : {}) };
      } catch (error) {
        if (!isBatch || !(error instanceof VaultHttpError)) throw error;
        return { error: error.errors[0] ?? "error", reference };
      }
    });
    if (!isBatch) return { data: results[0] };
    const failed = results.some((r) => "error" in r);
    const succeeded = results.some((r) => !("error" in r));
    let status = failed ? 400 : 200;
    if (failed && succeeded && body.partial_failure_response_code !== undefined) {
      status = int(body.partial_failure_response_code, "partial_failure_response_code");
    }
    return { status, data: { batch_results: results } };
  }

  function encrypt(k: TransitKey, body: Body): Result {
    const { items, isBatch } = batch(body, () => {
      if (body.plaintext === undefined) throw invalid("missing plaintext to encrypt");
      return { plaintext: body.plaintext, context: body.context, key_version: body.key_version };
    });
    return runBatch(
      body,
      isBatch,
      items,
      (item) => {
        const plaintext = str(item.plaintext, "plaintext");
        if (!isBase64(plaintext))
          throw invalid(`illegal base64 data at input byte ${firstBadBase64(plaintext)}`);
        const context = b64Field(item.context, "failed to base64-decode context");
        const version = encryptVersion(
          k,
          item.key_version === undefined ? 0 : int(item.key_version, "key_version"),
        );
        return {
          ciphertext: seal(k, version, context, Buffer.from(plaintext, "base64")),
          key_version: version,
        };
      },
      false,
    );
  }

  function decrypt(k: TransitKey | undefined, body: Body): Result {
    const { items, isBatch } = batch(body, () => {
      if (!nonEmpty(body.ciphertext)) throw invalid("missing ciphertext to decrypt");
      return { ciphertext: body.ciphertext, context: body.context };
    });
    if (!k) throw invalid("encryption key not found");
    return runBatch(
      body,
      isBatch,
      items,
      (item) => {
        if (!nonEmpty(item.ciphertext)) throw invalid("missing ciphertext to decrypt");
        const context = b64Field(item.context, "failed to base64-decode context");
        return {
          plaintext: open(k, context, str(item.ciphertext, "ciphertext")).plaintext.toString(
            "base64",
          ),
        };
      },
      true,
    );
  }

  function rewrap(k: TransitKey | undefined, body: Body): Result {
    const { items, isBatch } = batch(body, () => {
      if (!nonEmpty(body.ciphertext)) throw invalid("missing ciphertext to decrypt");
      return { ciphertext: body.ciphertext, context: body.context, key_version: body.key_version };
    });
    if (!k) throw invalid("encryption key not found");
    return runBatch(
      body,
      isBatch,
      items,
      (item) => {
        if (!nonEmpty(item.ciphertext)) throw invalid("missing ciphertext to decrypt");
        const context = b64Field(item.context, "failed to base64-decode context");
        const { plaintext } = open(k, context, str(item.ciphertext, "ciphertext"));
        const version = encryptVersion(
          k,
          item.key_version === undefined ? 0 : int(item.key_version, "key_version"),
        );
        return { ciphertext: seal(k, version, context, plaintext), key_version: version };
      },
      true,
    );
  }

  function authBlock(t: Token): Record<string, unknown> {
    const remaining = t.expiresAt ? Math.max(0, Math.round((t.expiresAt - Date.now()) / 1000)) : 0;
    return {
      client_token: t.id,
      accessor: t.accessor,
      policies: t.policies,
      token_policies: t.policies,
      metadata: t.meta,
      lease_duration: remaining,
      renewable: t.renewable,
      entity_id: "",
      token_type: "service",
      orphan: true,
      mfa_requirement: null,
      num_uses: 0,
    };
  }

  function appRoleLogin(mount: string, body: Body): Result {
    const roleId = str(body.role_id, "role_id");
    if (!roleId) throw invalid("missing role_id");
    const role = roles.get(`${mount}\0${roleId}`);
    const secretId = str(body.secret_id, "secret_id");
    if (!role || !secretId || !role.secretIds.has(secretId))
      throw invalid("invalid role or secret ID");
    const token = issueToken({
      policies: role.policies,
      ttl: role.tokenTtl,
      maxTtl: role.tokenMaxTtl,
      renewable: role.renewable,
      path: `auth/${mount}/login`,
      meta: { role_name: role.name },
    });
    return { auth: authBlock(token) };
  }

  function renewSelf(body: Body, t: Token): Result {
    if (!t.renewable || t.ttl === 0) throw invalid("lease is not renewable");
    const increment = body.increment === undefined ? t.ttl : duration(body.increment, "increment");
    const now = Date.now();
    let expiresAt = now + (increment || t.ttl) * 1000;
    const warnings: string[] = [];
    if (t.maxExpiresAt && expiresAt > t.maxExpiresAt) {
      expiresAt = t.maxExpiresAt;
      warnings.push(
        "TTL of the token exceeded the effective max_ttl; TTL value is capped accordingly",
      );
    }
    t.expiresAt = expiresAt;
    return { auth: authBlock(t), ...(warnings.length ? { warnings } : {}) };
  }

  function lookup(t: Token): Record<string, unknown> {
    const remaining = t.expiresAt ? Math.max(0, Math.round((t.expiresAt - Date.now()) / 1000)) : 0;
    return {
      accessor: t.accessor,
      creation_time: Math.floor(t.created / 1000),
      creation_ttl: t.ttl,
      display_name: t.path === "auth/token/root" ? "root" : "token",
      entity_id: "",
      expire_time: t.expiresAt ? new Date(t.expiresAt).toISOString() : null,
      explicit_max_ttl: 0,
      id: t.id,
      issue_time: new Date(t.created).toISOString(),
      meta: t.meta,
      num_uses: 0,
      orphan: true,
      path: t.path,
      policies: t.policies,
      renewable: t.renewable,
      ttl: remaining,
      type: "service",
    };
  }

  function createTokenRoute(body: Body, parent: Token): Result {
    const requested = Array.isArray(body.policies) ? (body.policies as string[]) : parent.policies;
    if (!parent.policies.includes("root") && requested.some((p) => !parent.policies.includes(p))) {
      throw new VaultHttpError(400, ["child policies must be subset of parent"]);
    }
    const token = issueToken({
      policies: requested.filter((p) => p !== "root" || parent.policies.includes("root")),
      ttl: body.ttl === undefined ? 3600 : duration(body.ttl, "ttl"),
      maxTtl:
        body.explicit_max_ttl === undefined
          ? 0
          : duration(body.explicit_max_ttl, "explicit_max_ttl"),
      renewable: body.renewable === undefined ? true : bool(body.renewable),
      path: "auth/token/create",
    });
    return { auth: authBlock(token) };
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent || res.destroyed) return;
      if (error instanceof VaultHttpError) {
        send(res, error.status, error.body ?? { errors: error.errors });
      } else {
        send(res, 500, { errors: ["1 error occurred:\n\t* internal error\n\n"] });
      }
    });
  };
  const http: Server = options.tls
    ? createHttpsServer(
        {
          key: options.tls.key,
          cert: options.tls.cert,
          ...(options.tls.ca ? { ca: options.tls.ca } : {}),
          requestCert: options.tls.requestCert ?? false,
          rejectUnauthorized: options.tls.requestCert ?? false,
        },
        onRequest,
      )
    : createHttpServer(onRequest);
  await new Promise<void>((ok) => http.listen(0, "127.0.0.1", ok));
  const port = (http.address() as AddressInfo).port;

  const server: VaultTransitServer = {
    url: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    rootToken,
    sealed: false,
    calls,
    faults,
    resetCalls() {
      for (const k of Object.keys(calls)) delete calls[k];
      requestCount = 0; // the "every Nth request" faults count from here
    },
    createToken(spec = {}) {
      return issueToken({ ...spec, path: "auth/token/create" }).id;
    },
    revokeToken(token) {
      tokens.delete(token);
    },
    issuedTokens() {
      return [...tokens.keys()].filter((t) => t !== rootToken);
    },
    addAppRole(spec = {}) {
      const role: Role = {
        name: spec.roleName ?? "envelope",
        mount: trimSlashes(spec.mount ?? "approle"),
        roleId: randomUUID(),
        secretIds: new Set([randomUUID()]),
        policies: [...(spec.policies ?? [])],
        tokenTtl: spec.tokenTtl ?? 3600,
        tokenMaxTtl: spec.tokenMaxTtl ?? 0,
        renewable: spec.renewable ?? true,
      };
      roles.set(`${role.mount}\0${role.roleId}`, role);
      return { roleId: role.roleId, secretId: [...role.secretIds][0]! };
    },
    enableMount(path, namespace) {
      mounts.add(`${normNs(namespace)}\0${trimSlashes(path)}`);
    },
    keyVersions(name, mount = "transit", namespace) {
      return keys.get(`${normNs(namespace)}\0${trimSlashes(mount)}\0${name}`)?.versions.length;
    },
    async close() {
      for (const socket of hanging) socket.destroy();
      hanging.clear();
      http.closeAllConnections?.();
      await new Promise<void>((ok) => http.close(() => ok()));
    },
  };
  return server;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
    })
    .end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new VaultHttpError(413, ["http: request body too large"]);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8").trim();
  if (!text) return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
      throw new Error("not an object");
    return parsed as Record<string, unknown>;
  } catch (error) {
    throw invalid(`failed to parse JSON input: ${(error as Error).message}`);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function pathMatches(pattern: string, path: string): boolean {
  const glob = pattern.endsWith("*");
  const body = glob ? pattern.slice(0, -1) : pattern;
  const pSegs = body.split("/");
  const segs = path.split("/");
  if (!glob && pSegs.length !== segs.length) return false;
  for (let i = 0; i < pSegs.length; i++) {
    const p = pSegs[i]!;
    const s = segs[i];
    if (s === undefined) return false;
    const last = i === pSegs.length - 1;
    if (p === "+") continue;
    if (last && glob) return s.startsWith(p);
    if (p !== s) return false;
  }
  return glob ? segs.length >= pSegs.length : true;
}

function normNs(ns: string | undefined): string {
  return trimSlashes(ns ?? "");
}

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, "");
}

function sleep(ms: number): Promise<void> {
  return new Promise((ok) => setTimeout(ok, ms));
}

function nonEmpty(v: unknown): boolean {
  return typeof v === "string" && v.length > 0;
}

function str(v: unknown, field: string): string {
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw invalid(`error converting input ${field}: expected a string`);
  return v;
}

function int(v: unknown, field: string): number {
  const n = typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n))
    throw invalid(`error converting input ${field}: expected an integer`);
  return n;
}

function bool(v: unknown): boolean {
  return v === true || v === "true" || v === 1 || v === "1";
}

function duration(v: unknown, field: string): number {
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "string") {
    const m = /^(\d+)(s|m|h)?$/.exec(v);
    if (m) return Number(m[1]) * ({ s: 1, m: 60, h: 3600 }[m[2] as "s" | "m" | "h"] ?? 1);
  }
  throw invalid(`error converting input ${field}: invalid duration`);
}

function isBase64(s: string): boolean {
  return s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s);
}

function firstBadBase64(s: string): number {
  const i = s.search(/[^A-Za-z0-9+/=]/);
  return i >= 0 ? i : s.length - (s.length % 4);
}

function b64Field(v: unknown, message: string): Buffer {
  if (v === undefined || v === null || v === "") return Buffer.alloc(0);
  if (typeof v !== "string" || !isBase64(v)) throw invalid(message);
  return Buffer.from(v, "base64");
}
