/**
 * A protocol-faithful HashiCorp Vault KV version 2 test server for reads, as the Vault
 * HTTP API answers them: `GET /v1/<mount>/data/<path>[?version=N]` with `X-Vault-Token`
 * (and `X-Vault-Namespace`), the response envelope `{ data: { data, metadata } }`, 404 with
 * `{"errors":[]}` for a missing secret, 404 with the version's metadata for a deleted or
 * destroyed version, 403 `permission denied` for a wrong token or a path the token's
 * policy does not cover, and a KV v1-style path on a v2 mount answered like Vault does.
 * Counts calls and injects faults (429 is Vault's rate-limit answer).
 *
 * Test-only: secrets live in memory.
 *
 * @example
 * const vault = await startVaultKvServer();
 * vault.put("secret", "app/legacy", { key: "…" });
 * // GET `${vault.url}/v1/secret/data/app/legacy` with X-Vault-Token: vault.token
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { FaultOptions, TestServer } from "./types.js";

export interface VaultKvTestServer extends TestServer {
  /** A token allowed to read every path. */
  readonly token: string;
  /** Paths read (`<namespace>/<mount>/<path>@<version|latest>`), never values. */
  readonly reads: string[];
  /** Writes a new version of `mount/path` (in `namespace`, default root); returns its number. */
  put(mount: string, path: string, data: Record<string, string>, namespace?: string): number;
  /** Soft-deletes a version (as `DELETE …/data/…` or `POST …/delete/…`). */
  deleteVersion(mount: string, path: string, version: number, namespace?: string): void;
  /** Destroys a version for good. */
  destroyVersion(mount: string, path: string, version: number, namespace?: string): void;
  /** A token that may read only paths starting with `prefix` (`<mount>/data/<…>`). */
  tokenFor(prefix: string): string;
}

interface KvVersion {
  data: Record<string, string>;
  created: string;
  deletion: string;
  destroyed: boolean;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(String(status));
  }
}

export async function startVaultKvServer(
  options: { faults?: FaultOptions } = {},
): Promise<VaultKvTestServer> {
  const token = `hvs.${randomUUID().replace(/-/g, "")}`;
  const tokens = new Map<string, string>([[token, ""]]); // token -> allowed path prefix
  const mounts = new Map<string, Map<string, KvVersion[]>>(); // "<ns>/<mount>" -> path -> versions
  const calls: Record<string, number> = {};
  const reads: string[] = [];
  const sockets = new Set<Socket>();
  const state = { faults: { ...options.faults } as FaultOptions, seq: 0 };
  const ns = (n?: string) => (n ?? "").replace(/^\/+|\/+$/g, "");
  const store = (namespace: string | undefined, mount: string) => {
    const key = `${ns(namespace)}/${mount}`;
    const m = mounts.get(key) ?? new Map<string, KvVersion[]>();
    mounts.set(key, m);
    return m;
  };
  const versionOf = (namespace: string | undefined, mount: string, path: string, v: number) => {
    const entry = store(namespace, mount).get(path)?.[v - 1];
    if (!entry) throw new Error(`no version ${v} of ${mount}/${path}`);
    return entry;
  };
  const metadata = (v: KvVersion, n: number) => ({
    created_time: v.created,
    custom_metadata: null,
    deletion_time: v.deletion,
    destroyed: v.destroyed,
    version: n,
  });
  const envelope = (data: unknown) => ({
    request_id: randomUUID(),
    lease_id: "",
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: null,
    auth: null,
  });

  function read(req: IncomingMessage): unknown {
    const url = new URL(req.url ?? "/", "http://vault");
    const presented = String(req.headers["x-vault-token"] ?? "");
    const allowed = tokens.get(presented);
    if (allowed === undefined) throw new HttpError(403, { errors: ["permission denied"] });
    if (req.method !== "GET") throw new HttpError(405, { errors: [] });
    const namespace = ns(String(req.headers["x-vault-namespace"] ?? ""));
    const rest = url.pathname.replace(/^\/v1\//, "");
    const slash = rest.indexOf("/");
    const mount = slash < 0 ? rest : rest.slice(0, slash);
    if (!mounts.has(`${namespace}/${mount}`)) {
      throw new HttpError(403, { errors: ["permission denied"] });
    }
    const after = rest.slice(mount.length + 1);
    if (!after.startsWith("data/")) {
      // A KV v1-style read on a v2 mount.
      throw new HttpError(404, {
        errors: [],
        warnings: [
          `Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.`,
        ],
      });
    }
    const path = after.slice("data/".length);
    if (!`${mount}/data/${path}`.startsWith(allowed))
      throw new HttpError(403, { errors: ["permission denied"] });
    const versionParam = url.searchParams.get("version");
    const versions = store(namespace, mount).get(path);
    reads.push(`${namespace}/${mount}/${path}@${versionParam ?? "latest"}`);
    if (!versions || versions.length === 0) throw new HttpError(404, { errors: [] });
    const n = versionParam && versionParam !== "0" ? Number(versionParam) : versions.length;
    if (!Number.isInteger(n) || n < 1) throw new HttpError(400, { errors: ["invalid version"] });
    const v = versions[n - 1];
    if (!v) throw new HttpError(404, { errors: [] });
    if (v.deletion || v.destroyed)
      throw new HttpError(404, envelope({ data: null, metadata: metadata(v, n) }));
    return envelope({ data: { ...v.data }, metadata: metadata(v, n) });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for await (const _ of req) {
      // drain
    }
    calls.read = (calls.read ?? 0) + 1;
    state.seq++;
    const f = state.faults;
    if (f.hang) return;
    if (f.dropEvery && state.seq % f.dropEvery === 0) {
      req.socket.destroy();
      return;
    }
    if (f.latencyMs) await new Promise((r) => setTimeout(r, f.latencyMs));
    let status = 200;
    let body: unknown;
    try {
      if (f.throttleEvery && state.seq % f.throttleEvery === 0)
        throw new HttpError(429, { errors: ['request path "v1/": rate limit quota exceeded'] });
      if (f.failEvery && state.seq % f.failEvery === 0)
        throw new HttpError(500, { errors: ["1 error occurred:\n\t* internal error\n\n"] });
      body = read(req);
    } catch (error) {
      status = error instanceof HttpError ? error.status : 500;
      body = error instanceof HttpError ? error.body : { errors: ["internal error"] };
    }
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
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
    token,
    reads,
    resetCalls() {
      for (const k of Object.keys(calls)) delete calls[k];
      reads.length = 0;
      state.seq = 0;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    put(mount, path, data, namespace) {
      const m = store(namespace, mount);
      const versions = m.get(path) ?? [];
      versions.push({
        data: { ...data },
        created: new Date().toISOString(),
        deletion: "",
        destroyed: false,
      });
      m.set(path, versions);
      return versions.length;
    },
    deleteVersion(mount, path, version, namespace) {
      versionOf(namespace, mount, path, version).deletion = new Date().toISOString();
    },
    destroyVersion(mount, path, version, namespace) {
      const v = versionOf(namespace, mount, path, version);
      v.destroyed = true;
      v.data = {};
    },
    tokenFor(prefix) {
      const t = `hvs.${randomUUID().replace(/-/g, "")}`;
      tokens.set(t, prefix);
      return t;
    },
  };
}
