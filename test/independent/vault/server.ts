// An independent HashiCorp Vault test server: token and AppRole auth with ACL policies,
// namespaces, and the transit secrets engine, written from the Vault HTTP API docs and
// Vault's own transit source (builtin/logical/transit, sdk/helper/keysutil/policy.go),
// NOT from this repo's test/servers/vault-transit.ts (which this file's author never read).
//
// What it speaks (all under /v1/, JSON bodies, errors as {"errors": [...]}):
//   auth/<approle mount>/login              POST  role_id, secret_id -> auth{client_token,…}
//   auth/token/lookup-self                  GET   data{ttl, creation_ttl, renewable, …}
//   auth/token/renew-self                   POST  increment -> auth{lease_duration, …}
//   auth/token/revoke-self                  POST  204
//   <mount>/keys/<name>                     POST create (type, derived), GET read (404 {"errors":[]}
//                                                 when absent), DELETE (400 unless deletion_allowed)
//   <mount>/keys/<name>/rotate              POST
//   <mount>/keys/<name>/config              POST  min_decryption_version, min_encryption_version,
//                                                 deletion_allowed
//   <mount>/keys/<name>/trim                POST  min_available_version
//   <mount>/encrypt/<name>                  POST  plaintext (b64), context (b64), key_version;
//                                                 upserts the key when the caller has `create`
//   <mount>/decrypt/<name>                  POST  ciphertext, context
//   <mount>/rewrap/<name>                   POST  ciphertext, context, key_version
//   <mount>/datakey/<plaintext|wrapped>/<name> POST bits (128/256/512), context
// batch_input is not implemented (the provider under test never sends it): a request with it
// gets 400, so a provider that started using it would be noticed.
//
// Crypto as Vault does it for aes256-gcm96: ciphertext = "vault:v<N>:" + base64(nonce(12) ||
// AES-256-GCM(ct) || tag(16)); derived keys = HKDF-SHA256(version key, salt none, info = context).
// Status codes: 400 for user errors (logical.ErrInvalidRequest), 403 permission denied (with
// "invalid token" when the token is unknown/expired), 404 for unread keys and unrouted paths,
// 503 "Vault is sealed"; 429 / 5xx / dropped connections / delays by fault injection.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";

export type Capability = "create" | "read" | "update" | "delete" | "list" | "sudo" | "deny";
/** An ACL policy: path (exact, trailing `*` prefix glob, `+` one segment) -> capabilities. */
export type AclPolicy = Record<string, Capability[]>;

interface KeyVersion {
  key: Buffer;
  createdAt: number;
}

interface TransitKey {
  name: string;
  type: "aes256-gcm96";
  derived: boolean;
  versions: Map<number, KeyVersion>;
  latest: number;
  minDecryption: number;
  minEncryption: number;
  minAvailable: number;
  deletionAllowed: boolean;
}

interface Token {
  id: string;
  accessor: string;
  namespace: string;
  policies: string[];
  root: boolean;
  /** seconds granted at creation (creation_ttl) and the default increment of a renewal. */
  ttl: number;
  /** ms since epoch; 0 = never */
  expiresAt: number;
  /** ms since epoch; 0 = no max */
  maxExpiresAt: number;
  renewable: boolean;
  numUses: number;
  issuedAt: number;
  revoked: boolean;
}

interface AppRole {
  roleName: string;
  roleId: string;
  secretIds: Map<string, { usesLeft: number }>;
  policies: string[];
  tokenTtl: number;
  tokenMaxTtl: number;
  /** false = the token it issues is not renewable (Vault: token_type batch or renewable=false). */
  renewable: boolean;
}

interface NamespaceState {
  transitMounts: Map<string, Map<string, TransitKey>>;
  approleMounts: Map<string, Map<string, AppRole>>;
  policies: Map<string, AclPolicy>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  namespace: string;
  token: string | undefined;
  body: Record<string, unknown> | undefined;
  status?: number;
}

export type FaultAction =
  | { status: number; errors?: string[]; headers?: Record<string, string> }
  /** Any answer, e.g. a 200 that is not what Vault would say (a broken proxy, a compromised Vault). */
  | { status: number; raw: string; contentType?: string }
  | { drop: true }
  | { delayMs: number };

interface Fault {
  match: RegExp;
  remaining: number;
  action: FaultAction;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
  ) {
    super(errors.join("; "));
  }
}

const PERMISSION_DENIED = "1 error occurred:\n\t* permission denied\n\n";
const INVALID_TOKEN = "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n";
const DEFAULT_POLICY: AclPolicy = {
  "auth/token/lookup-self": ["read"],
  "auth/token/renew-self": ["update"],
  "auth/token/revoke-self": ["update"],
};

const userError = (message: string) => new HttpError(400, [message]);
const noRoute = (path: string) =>
  new HttpError(404, [`no handler for route "${path}". route entry not found.`]);

/** Go's base64.StdEncoding.DecodeString: strict alphabet and padding. */
function strictBase64(value: string): Buffer | undefined {
  if (value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return undefined;
  const bytes = Buffer.from(value, "base64");
  return bytes.toString("base64") === value ? bytes : undefined;
}

function nsClean(ns: string | undefined): string {
  return (ns ?? "").replace(/^\/+|\/+$/g, "");
}

/** Vault ACL path match: exact, `prefix*`, and `+` as one segment. */
function pathMatches(pattern: string, path: string): boolean {
  const glob = pattern.endsWith("*");
  const pat = glob ? pattern.slice(0, -1) : pattern;
  const patParts = pat.split("/");
  const pathParts = path.split("/");
  if (!glob && patParts.length !== pathParts.length) return false;
  if (glob && pathParts.length < patParts.length) return false;
  for (let i = 0; i < patParts.length; i++) {
    const p = patParts[i]!;
    const s = pathParts[i]!;
    const last = i === patParts.length - 1;
    if (p === "+") continue;
    if (last && glob) {
      if (!s.startsWith(p)) return false;
    } else if (p !== s) return false;
  }
  return true;
}

export class IndependentVault {
  readonly namespaces = new Map<string, NamespaceState>();
  readonly tokens = new Map<string, Token>();
  readonly requests: RecordedRequest[] = [];
  readonly faults: Fault[] = [];
  sealed = false;
  /**
   * Answer like a Vault Agent / Vault Proxy listener with `require_request_header = true`
   * (SSRF protection): a request without `X-Vault-Request: true` gets 412
   * `missing 'X-Vault-Request' header`. The official Go client and the CLI always send it.
   */
  requireRequestHeader = false;
  /** Added to Date.now(): lets a test move Vault's clock (token TTLs) without waiting. */
  clockOffsetMs = 0;
  rootToken: string;
  address = "";
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  constructor() {
    this.namespaces.set("", this.#emptyNamespace());
    this.rootToken = this.createToken({ root: true });
  }

  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  advance(ms: number): void {
    this.clockOffsetMs += ms;
  }

  #emptyNamespace(): NamespaceState {
    return { transitMounts: new Map(), approleMounts: new Map(), policies: new Map() };
  }

  // ---- administration (what an operator does with the CLI) ----------------------------------

  createNamespace(ns: string): void {
    const name = nsClean(ns);
    if (!this.namespaces.has(name)) this.namespaces.set(name, this.#emptyNamespace());
  }

  #ns(ns = ""): NamespaceState {
    const state = this.namespaces.get(nsClean(ns));
    if (!state) throw new Error(`no namespace ${ns}`);
    return state;
  }

  enableTransit(mount = "transit", ns = ""): void {
    const state = this.#ns(ns);
    const path = mount.replace(/^\/+|\/+$/g, "");
    if (!state.transitMounts.has(path)) state.transitMounts.set(path, new Map());
  }

  enableAppRole(mount = "approle", ns = ""): void {
    const state = this.#ns(ns);
    if (!state.approleMounts.has(mount)) state.approleMounts.set(mount, new Map());
  }

  writePolicy(name: string, policy: AclPolicy, ns = ""): void {
    this.#ns(ns).policies.set(name, policy);
  }

  createKey(name: string, options: { mount?: string; ns?: string; derived?: boolean } = {}): void {
    const keys = this.#ns(options.ns).transitMounts.get(options.mount ?? "transit");
    if (!keys) throw new Error(`no transit mount ${options.mount ?? "transit"}`);
    keys.set(name, this.#newKey(name, options.derived ?? false));
  }

  key(name: string, options: { mount?: string; ns?: string } = {}): TransitKey | undefined {
    return this.#ns(options.ns)
      .transitMounts.get(options.mount ?? "transit")
      ?.get(name);
  }

  #newKey(name: string, derived: boolean): TransitKey {
    return {
      name,
      type: "aes256-gcm96",
      derived,
      versions: new Map([[1, { key: randomBytes(32), createdAt: this.now() }]]),
      latest: 1,
      minDecryption: 1,
      minEncryption: 0,
      minAvailable: 0,
      deletionAllowed: false,
    };
  }

  createToken(
    options: {
      policies?: string[];
      ttl?: number;
      maxTtl?: number;
      renewable?: boolean;
      ns?: string;
      root?: boolean;
      numUses?: number;
    } = {},
  ): string {
    const id = `hvs.${randomBytes(18).toString("base64url")}`;
    const now = this.now();
    const ttl = options.root ? 0 : (options.ttl ?? 3600);
    this.tokens.set(id, {
      id,
      accessor: randomBytes(12).toString("base64url"),
      namespace: nsClean(options.ns),
      policies: options.root ? ["root"] : ["default", ...(options.policies ?? [])],
      root: options.root === true,
      ttl,
      expiresAt: ttl > 0 ? now + ttl * 1000 : 0,
      maxExpiresAt: options.maxTtl ? now + options.maxTtl * 1000 : 0,
      renewable: options.root ? false : options.renewable !== false,
      numUses: options.numUses ?? 0,
      issuedAt: now,
      revoked: false,
    });
    return id;
  }

  revokeToken(id: string): void {
    const token = this.tokens.get(id);
    if (token) token.revoked = true;
  }

  addAppRole(options: {
    roleName: string;
    roleId: string;
    secretId: string;
    policies: string[];
    tokenTtl?: number;
    tokenMaxTtl?: number;
    renewable?: boolean;
    secretIdNumUses?: number;
    mount?: string;
    ns?: string;
  }): void {
    const mount = options.mount ?? "approle";
    this.enableAppRole(mount, options.ns);
    this.#ns(options.ns)
      .approleMounts.get(mount)!
      .set(options.roleName, {
        roleName: options.roleName,
        roleId: options.roleId,
        secretIds: new Map([[options.secretId, { usesLeft: options.secretIdNumUses ?? 0 }]]),
        policies: options.policies,
        tokenTtl: options.tokenTtl ?? 3600,
        tokenMaxTtl: options.tokenMaxTtl ?? 0,
        renewable: options.renewable !== false,
      });
  }

  /** Tokens issued by logins (newest last). */
  issuedTokens(): Token[] {
    return [...this.tokens.values()].filter((t) => !t.root);
  }

  fault(match: RegExp, action: FaultAction, times = 1): void {
    this.faults.push({ match, remaining: times, action });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  calls(match: RegExp, method?: string): RecordedRequest[] {
    return this.requests.filter((r) => match.test(r.path) && (!method || r.method === method));
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  /** Listens on 127.0.0.1; with `tls` (PEM key and certificate) over HTTPS, as Vault does by default. */
  async start(tls?: { key: string | Buffer; cert: string | Buffer }): Promise<this> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) this.#send(res, 500, { errors: [String(error)] });
      });
    };
    this.#server = tls ? createTlsServer(tls, handler) : createServer(handler);
    this.#server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    const { port } = this.#server.address() as AddressInfo;
    this.address = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }

  #send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}) {
    if (status === 204) {
      res.writeHead(204, headers);
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(text),
      "Cache-Control": "no-store",
      ...headers,
    });
    res.end(text);
  }

  #ok(res: ServerResponse, data: unknown, extra: { auth?: unknown; warnings?: string[] } = {}) {
    this.#send(res, 200, {
      request_id: randomUUID(),
      lease_id: "",
      renewable: false,
      lease_duration: 0,
      data: data ?? null,
      wrap_info: null,
      warnings: extra.warnings ?? null,
      auth: extra.auth ?? null,
      mount_type: "",
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > 1 << 20) {
        this.#send(res, 413, { errors: ["request body too large"] });
        return;
      }
      chunks.push(chunk as Buffer);
    }
    const url = new URL(req.url ?? "/", "http://vault");
    const method = (req.method ?? "GET").toUpperCase();
    const namespace = nsClean(req.headers["x-vault-namespace"] as string | undefined);
    const auth = req.headers.authorization;
    const token =
      (req.headers["x-vault-token"] as string | undefined) ??
      (auth?.startsWith("Bearer ") ? auth.slice(7) : undefined);
    const path = url.pathname.replace(/^\/v1\//, "").replace(/\/+$/, "");
    const record: RecordedRequest = { method, path, namespace, token, body: undefined };
    this.requests.push(record);

    const send = (status: number, body?: unknown, headers?: Record<string, string>) => {
      record.status = status;
      this.#send(res, status, body, headers);
    };

    if (!url.pathname.startsWith("/v1/")) {
      send(404, { errors: [] });
      return;
    }
    let body: Record<string, unknown> = {};
    const raw = Buffer.concat(chunks).toString("utf8");
    if (raw.trim() !== "") {
      try {
        const parsed = JSON.parse(raw) as unknown;
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
          throw new Error("not an object");
        body = parsed as Record<string, unknown>;
      } catch (error) {
        send(400, { errors: [`failed to parse JSON input: ${(error as Error).message}`] });
        return;
      }
    }
    record.body = body;

    const fault = this.faults.find((f) => f.remaining > 0 && f.match.test(path));
    if (fault) {
      fault.remaining--;
      const action = fault.action;
      if ("drop" in action) {
        record.status = 0;
        req.socket.destroy();
        return;
      }
      if ("delayMs" in action) {
        await new Promise((resolve) => setTimeout(resolve, action.delayMs));
        if (res.destroyed || req.socket.destroyed) return;
      } else if ("raw" in action) {
        record.status = action.status;
        res.writeHead(action.status, { "Content-Type": action.contentType ?? "application/json" });
        res.end(action.raw);
        return;
      } else {
        send(action.status, { errors: action.errors ?? [] }, action.headers);
        return;
      }
    }

    if (this.requireRequestHeader && req.headers["x-vault-request"] !== "true") {
      send(412, { errors: ["missing 'X-Vault-Request' header"] });
      return;
    }
    if (this.sealed) {
      send(503, { errors: ["Vault is sealed"] });
      return;
    }
    const ns = this.namespaces.get(namespace);
    if (!ns) {
      send(404, { errors: [`no handler for route "${path}". route entry not found.`] });
      return;
    }

    try {
      const out = this.#route(method, path, namespace, ns, token, body);
      if (out === undefined) send(204);
      else if (out.status === 404) send(404, { errors: [] });
      else {
        record.status = 200;
        this.#ok(res, out.data, out);
      }
    } catch (error) {
      if (error instanceof HttpError) send(error.status, { errors: error.errors });
      else send(500, { errors: [String(error)] });
    }
  }

  // ---- routing, tokens, ACL ------------------------------------------------------------------

  #route(
    method: string,
    path: string,
    namespace: string,
    ns: NamespaceState,
    tokenId: string | undefined,
    body: Record<string, unknown>,
  ): { data?: unknown; auth?: unknown; warnings?: string[]; status?: number } | undefined {
    // Unauthenticated: AppRole login.
    const login = /^auth\/(.+)\/login$/.exec(path);
    if (login && ns.approleMounts.has(login[1]!)) {
      if (method !== "POST" && method !== "PUT")
        throw new HttpError(405, ["unsupported operation"]);
      return this.#approleLogin(ns.approleMounts.get(login[1]!)!, namespace, body);
    }

    const token = this.#authenticate(tokenId, namespace);
    const transit = this.#transitTarget(ns, path);
    const op = this.#operation(method, path, transit);
    this.#authorize(token, ns, path, op);
    if (token.numUses > 0) {
      token.numUses--;
      if (token.numUses === 0) token.revoked = true;
    }

    if (path.startsWith("auth/token/")) return this.#tokenSelf(method, path, token, body);
    if (!transit) throw noRoute(path);
    return this.#transit(method, transit, body, op);
  }

  #authenticate(tokenId: string | undefined, namespace: string): Token {
    if (!tokenId) throw new HttpError(403, ["permission denied"]);
    const token = this.tokens.get(tokenId);
    if (!token || token.revoked || (token.expiresAt !== 0 && token.expiresAt <= this.now())) {
      throw new HttpError(403, [INVALID_TOKEN]);
    }
    // A token is valid in its namespace and the namespaces below it.
    const inScope =
      token.namespace === "" ||
      namespace === token.namespace ||
      namespace.startsWith(`${token.namespace}/`);
    if (!inScope) throw new HttpError(403, [PERMISSION_DENIED]);
    return token;
  }

  #operation(method: string, path: string, transit: TransitTarget | undefined): Capability {
    if (method === "GET") return "read";
    if (method === "DELETE") return "delete";
    if (method === "LIST") return "list";
    // POST/PUT: `create` when the path has an existence check and the target is absent.
    if (transit && (transit.op === "encrypt" || (transit.op === "keys" && !transit.sub))) {
      return transit.keys.has(transit.name) ? "update" : "create";
    }
    return path ? "update" : "update";
  }

  #authorize(token: Token, ns: NamespaceState, path: string, op: Capability): void {
    if (token.root) return;
    let allowed = false;
    let denied = false;
    for (const name of token.policies) {
      const policy = name === "default" ? DEFAULT_POLICY : ns.policies.get(name);
      if (!policy) continue;
      for (const [pattern, caps] of Object.entries(policy)) {
        if (!pathMatches(pattern, path)) continue;
        if (caps.includes("deny")) denied = true;
        if (caps.includes(op)) allowed = true;
      }
    }
    if (denied || !allowed) throw new HttpError(403, [PERMISSION_DENIED]);
  }

  #approleLogin(
    roles: Map<string, AppRole>,
    namespace: string,
    body: Record<string, unknown>,
  ): { auth: unknown } {
    const roleId = body.role_id;
    const secretId = body.secret_id;
    if (typeof roleId !== "string" || roleId === "") throw userError("missing role_id");
    const role = [...roles.values()].find((r) => r.roleId === roleId);
    const secret = typeof secretId === "string" ? role?.secretIds.get(secretId) : undefined;
    if (!role || !secret) throw userError("invalid role or secret ID");
    if (secret.usesLeft > 0) {
      secret.usesLeft--;
      if (secret.usesLeft === 0) role.secretIds.delete(secretId as string);
    }
    const id = this.createToken({
      policies: role.policies,
      ttl: role.tokenTtl,
      maxTtl: role.tokenMaxTtl,
      renewable: role.renewable,
      ns: namespace,
    });
    const token = this.tokens.get(id)!;
    return {
      auth: {
        client_token: id,
        accessor: token.accessor,
        policies: token.policies,
        token_policies: token.policies,
        metadata: { role_name: role.roleName },
        lease_duration: role.tokenTtl,
        renewable: role.renewable,
        entity_id: randomUUID(),
        token_type: "service",
        orphan: true,
        mfa_requirement: null,
        num_uses: 0,
      },
    };
  }

  #tokenSelf(
    method: string,
    path: string,
    token: Token,
    body: Record<string, unknown>,
  ): { data?: unknown; auth?: unknown; warnings?: string[] } | undefined {
    const now = this.now();
    const remaining = () =>
      token.expiresAt === 0 ? 0 : Math.max(0, Math.round((token.expiresAt - now) / 1000));
    if (path === "auth/token/lookup-self" && (method === "GET" || method === "POST")) {
      return {
        data: {
          accessor: token.accessor,
          creation_time: Math.floor(token.issuedAt / 1000),
          creation_ttl: token.ttl,
          display_name: token.root ? "root" : "approle",
          entity_id: "",
          expire_time: token.expiresAt ? new Date(token.expiresAt).toISOString() : null,
          explicit_max_ttl: 0,
          id: token.id,
          issue_time: new Date(token.issuedAt).toISOString(),
          meta: null,
          num_uses: token.numUses,
          orphan: true,
          path: token.root ? "auth/token/root" : "auth/approle/login",
          policies: token.policies,
          renewable: token.renewable,
          ttl: remaining(),
          type: "service",
        },
      };
    }
    if (path === "auth/token/renew-self" && (method === "POST" || method === "PUT")) {
      if (!token.renewable) throw userError("lease is not renewable");
      const increment =
        typeof body.increment === "number" && body.increment > 0 ? body.increment : token.ttl;
      let ttl = increment;
      const warnings: string[] = [];
      if (token.maxExpiresAt) {
        const left = Math.max(0, Math.floor((token.maxExpiresAt - now) / 1000));
        if (ttl > left) {
          warnings.push(
            `TTL of "${increment}s" exceeded the effective max_ttl of "${left}s"; TTL value is capped accordingly`,
          );
          ttl = left;
        }
      }
      token.expiresAt = now + ttl * 1000;
      return {
        auth: {
          client_token: token.id,
          accessor: token.accessor,
          policies: token.policies,
          token_policies: token.policies,
          metadata: null,
          lease_duration: ttl,
          renewable: token.renewable,
          entity_id: "",
          token_type: "service",
          orphan: true,
        },
        warnings: warnings.length ? warnings : undefined,
      };
    }
    if (path === "auth/token/revoke-self" && (method === "POST" || method === "PUT")) {
      token.revoked = true;
      return undefined;
    }
    throw noRoute(path);
  }

  // ---- transit -------------------------------------------------------------------------------

  #transitTarget(ns: NamespaceState, path: string): TransitTarget | undefined {
    let best: string | undefined;
    for (const mount of ns.transitMounts.keys()) {
      if (path.startsWith(`${mount}/`) && (!best || mount.length > best.length)) best = mount;
    }
    if (best === undefined) return undefined;
    const keys = ns.transitMounts.get(best)!;
    const rest = path.slice(best.length + 1).split("/");
    const [op, ...tail] = rest;
    if (op === "keys" && tail.length >= 1 && tail.length <= 2) {
      return { mount: best, keys, op, name: tail[0]!, sub: tail[1] };
    }
    if ((op === "encrypt" || op === "decrypt" || op === "rewrap") && tail.length === 1) {
      return { mount: best, keys, op, name: tail[0]! };
    }
    if (op === "datakey" && tail.length === 2) {
      return { mount: best, keys, op, name: tail[1]!, sub: tail[0] };
    }
    return { mount: best, keys, op: "unsupported", name: "" };
  }

  #transit(
    method: string,
    t: TransitTarget,
    body: Record<string, unknown>,
    op: Capability,
  ): { data?: unknown; status?: number } | undefined {
    if (t.op === "unsupported") throw new HttpError(404, [PATH_UNSUPPORTED]);
    if ("batch_input" in body) {
      throw userError("batch_input is not supported by this test server");
    }
    const write = method === "POST" || method === "PUT";
    if (t.op === "keys") {
      const key = t.keys.get(t.name);
      if (!t.sub) {
        if (method === "GET") return key ? { data: describeKey(key) } : { status: 404 };
        if (method === "DELETE") {
          if (!key) return undefined;
          if (!key.deletionAllowed)
            throw userError(
              `error deleting policy ${t.name}: deletion is not allowed for this key`,
            );
          t.keys.delete(t.name);
          return undefined;
        }
        if (write) {
          if (key) return { data: describeKey(key) };
          const type = body.type ?? "aes256-gcm96";
          if (type !== "aes256-gcm96") throw userError(`unknown key type: ${String(type)}`);
          const created = this.#newKey(t.name, body.derived === true || body.derived === "true");
          t.keys.set(t.name, created);
          return { data: describeKey(created) };
        }
        throw new HttpError(405, ["unsupported operation"]);
      }
      if (!write) throw new HttpError(405, ["unsupported operation"]);
      if (!key) throw userError("encryption key not found");
      if (t.sub === "rotate") {
        key.latest++;
        key.versions.set(key.latest, { key: randomBytes(32), createdAt: this.now() });
        return { data: describeKey(key) };
      }
      if (t.sub === "config") return { data: this.#configure(key, body) };
      if (t.sub === "trim") {
        const min = Number(body.min_available_version);
        if (!Number.isInteger(min) || min < 1) throw userError("missing min_available_version");
        if (min > key.minEncryption || min > key.minDecryption)
          throw userError(
            "cannot be set to a value greater than min_encryption_version or min_decryption_version",
          );
        for (const v of [...key.versions.keys()]) if (v < min) key.versions.delete(v);
        key.minAvailable = min;
        return { data: describeKey(key) };
      }
      throw new HttpError(404, [PATH_UNSUPPORTED]);
    }
    if (!write) throw new HttpError(405, ["unsupported operation"]);

    const context = decodeField(body.context, "failed to base64-decode context");
    let key = t.keys.get(t.name);
    if (t.op === "encrypt") {
      if (typeof body.plaintext !== "string") throw userError("missing plaintext to encrypt");
      const plaintext = strictBase64(body.plaintext);
      if (!plaintext) throw userError("illegal base64 data at input byte 0");
      if (!key) {
        if (op !== "create") throw userError("encryption key not found");
        // Upsert: the key is created (derived when a context came with the first request).
        key = this.#newKey(t.name, context.length > 0);
        t.keys.set(t.name, key);
      }
      const version = this.#encryptVersion(key, body.key_version);
      return {
        data: { ciphertext: this.#seal(key, version, context, plaintext), key_version: version },
      };
    }
    if (!key) throw userError("encryption key not found");
    if (t.op === "decrypt") {
      const plaintext = this.#open(key, body.ciphertext, context);
      return { data: { plaintext: plaintext.toString("base64") } };
    }
    if (t.op === "rewrap") {
      const plaintext = this.#open(key, body.ciphertext, context);
      const version = this.#encryptVersion(key, body.key_version);
      return {
        data: { ciphertext: this.#seal(key, version, context, plaintext), key_version: version },
      };
    }
    // datakey
    if (t.sub !== "plaintext" && t.sub !== "wrapped")
      throw userError(`invalid path, must be "plaintext" or "wrapped"`);
    const bits = body.bits === undefined ? 256 : Number(body.bits);
    if (bits !== 128 && bits !== 256 && bits !== 512) throw userError("invalid bit length");
    const dataKey = randomBytes(bits / 8);
    const version = this.#encryptVersion(key, body.key_version);
    const data: Record<string, unknown> = {
      ciphertext: this.#seal(key, version, context, dataKey),
      key_version: version,
    };
    if (t.sub === "plaintext") data.plaintext = dataKey.toString("base64");
    return { data };
  }

  #configure(key: TransitKey, body: Record<string, unknown>): unknown {
    const next = { ...key };
    if (body.min_decryption_version !== undefined) {
      const v = Number(body.min_decryption_version);
      if (!Number.isInteger(v) || v < 0) throw userError("invalid min_decryption_version");
      if (v > key.latest)
        throw userError(
          `cannot set min decryption version of ${v}, latest key version is ${key.latest}`,
        );
      if (v > 0) next.minDecryption = v;
    }
    if (body.min_encryption_version !== undefined) {
      const v = Number(body.min_encryption_version);
      if (!Number.isInteger(v) || v < 0) throw userError("invalid min_encryption_version");
      if (v > key.latest)
        throw userError(
          `cannot set min encryption version of ${v}, latest key version is ${key.latest}`,
        );
      next.minEncryption = v;
    }
    if (next.minEncryption !== 0 && next.minEncryption < next.minDecryption)
      throw userError(
        `min encryption version of ${next.minEncryption} must be greater than or equal to min decryption version of ${next.minDecryption}`,
      );
    if (body.deletion_allowed !== undefined)
      next.deletionAllowed = body.deletion_allowed === true || body.deletion_allowed === "true";
    if (next.minAvailable > next.minEncryption && next.minEncryption !== 0)
      throw userError("min encryption version should not be less than min available version");
    if (next.minAvailable > next.minDecryption)
      throw userError("min decryption version should not be less then min available version");
    Object.assign(key, next);
    return describeKey(key);
  }

  #encryptVersion(key: TransitKey, requested: unknown): number {
    const ver = requested === undefined ? 0 : Number(requested);
    if (ver === 0) return key.latest;
    if (ver < 0) throw userError("requested version for encryption is negative");
    if (ver > key.latest)
      throw userError("requested version for encryption is higher than the latest key version");
    if (ver < key.minEncryption)
      throw userError(
        "requested version for encryption is less than the minimum encryption key version",
      );
    return ver;
  }

  #versionKey(key: TransitKey, version: number, context: Buffer): Buffer {
    const entry = key.versions.get(version);
    if (!entry) throw userError("no such key version");
    if (!key.derived) return entry.key;
    if (context.length === 0)
      throw userError(
        "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key",
      );
    return Buffer.from(hkdfSync("sha256", entry.key, Buffer.alloc(0), context, 32));
  }

  #seal(key: TransitKey, version: number, context: Buffer, plaintext: Buffer): string {
    const encKey = this.#versionKey(key, version, context);
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", encKey, nonce);
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return `vault:v${version}:${Buffer.concat([nonce, ct]).toString("base64")}`;
  }

  #open(key: TransitKey, ciphertext: unknown, context: Buffer): Buffer {
    if (typeof ciphertext !== "string" || ciphertext === "")
      throw userError("missing ciphertext to decrypt");
    if (!ciphertext.startsWith("vault:")) throw userError("invalid ciphertext: no prefix");
    const rest = ciphertext.slice("vault:".length);
    const colon = rest.indexOf(":");
    if (colon < 0) throw userError("invalid ciphertext: wrong number of fields");
    const verText = rest.slice(0, colon);
    if (!/^v-?\d+$/.test(verText))
      throw userError("invalid ciphertext: version number could not be decoded");
    let version = Number(verText.slice(1));
    if (version === 0) version = 1;
    if (version > key.latest) throw userError("invalid ciphertext: version is too new");
    if (key.minDecryption > 0 && version < key.minDecryption)
      throw userError("ciphertext or signature version is disallowed by policy (too old)");
    const decoded = strictBase64(rest.slice(colon + 1));
    if (!decoded) throw userError("invalid ciphertext: could not decode base64");
    const encKey = this.#versionKey(key, version, context);
    if (decoded.length < 12) throw userError("invalid ciphertext length");
    const nonce = decoded.subarray(0, 12);
    const body = decoded.subarray(12);
    if (body.length < 16) throw userError("cipher: message authentication failed");
    try {
      const decipher = createDecipheriv("aes-256-gcm", encKey, nonce);
      decipher.setAuthTag(body.subarray(body.length - 16));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]);
    } catch {
      throw userError("cipher: message authentication failed");
    }
  }
}

interface TransitTarget {
  mount: string;
  keys: Map<string, TransitKey>;
  op: string;
  name: string;
  sub?: string;
}

const PATH_UNSUPPORTED = "1 error occurred:\n\t* unsupported path\n\n";

function decodeField(value: unknown, message: string): Buffer {
  if (value === undefined || value === "") return Buffer.alloc(0);
  if (typeof value !== "string") throw userError(message);
  const bytes = strictBase64(value);
  if (!bytes) throw userError(message);
  return bytes;
}

function describeKey(key: TransitKey): Record<string, unknown> {
  const keys: Record<string, number> = {};
  for (const [v, entry] of key.versions) {
    if (v >= key.minDecryption) keys[String(v)] = Math.floor(entry.createdAt / 1000);
  }
  return {
    allow_plaintext_backup: false,
    auto_rotate_period: 0,
    deletion_allowed: key.deletionAllowed,
    derived: key.derived,
    exportable: false,
    imported_key: false,
    keys,
    latest_version: key.latest,
    min_available_version: key.minAvailable,
    min_decryption_version: key.minDecryption,
    min_encryption_version: key.minEncryption,
    name: key.name,
    supports_decryption: true,
    supports_derivation: true,
    supports_encryption: true,
    supports_signing: false,
    type: key.type,
    ...(key.derived ? { kdf: "hkdf_sha256", convergent_encryption: false } : {}),
  };
}

/** Starts a server with a `transit` mount in the root namespace. */
export async function startIndependentVault(tls?: {
  key: string | Buffer;
  cert: string | Buffer;
}): Promise<IndependentVault> {
  const vault = new IndependentVault();
  vault.enableTransit("transit");
  return vault.start(tls);
}

/** The README's minimal policy for one key, on a mount. */
export function readmePolicy(mount: string, name: string): AclPolicy {
  return {
    [`${mount}/datakey/plaintext/${name}`]: ["update"],
    [`${mount}/encrypt/${name}`]: ["update"],
    [`${mount}/decrypt/${name}`]: ["update"],
    [`${mount}/rewrap/${name}`]: ["update"],
    [`${mount}/keys/${name}`]: ["read"],
  };
}
