import { AsyncLocalStorage } from "node:async_hooks";
import { subscribe } from "node:diagnostics_channel";
import type { IncomingHttpHeaders } from "node:http";

/** The response headers this package reads (only Retry-After and Date; nothing secret). */
export interface SeenHeaders {
  retryAfter?: string;
  date?: string;
}

// node-vault (0.12, the latest) hands back only status and body: its errors carry no
// response headers, so Vault's Retry-After would be lost. Node's documented HTTP
// diagnostics channels see every client request and its response; a request started while
// `record` runs is tied to that call's SeenHeaders, and its response fills them in.
const current = new AsyncLocalStorage<SeenHeaders>();
const byRequest = new WeakMap<object, SeenHeaders>();
let subscribed = false;

function subscribeOnce(): void {
  if (subscribed) return;
  subscribed = true;
  subscribe("http.client.request.start", (message) => {
    const seen = current.getStore();
    const request = (message as { request?: object }).request;
    if (seen && request) byRequest.set(request, seen);
  });
  subscribe("http.client.response.finish", (message) => {
    const { request, response } = message as {
      request?: object;
      response?: { headers?: IncomingHttpHeaders };
    };
    const seen = request ? byRequest.get(request) : undefined;
    if (!seen || !response?.headers) return;
    seen.retryAfter = one(response.headers["retry-after"]);
    seen.date = one(response.headers.date);
  });
}

function one(value: string | string[] | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/**
 * Runs `fn` (one node-vault request) and records the Retry-After and Date headers of the
 * HTTP responses it gets into `seen` (the last response wins).
 */
export function recordHeaders<T>(seen: SeenHeaders, fn: () => Promise<T>): Promise<T> {
  subscribeOnce();
  return current.run(seen, fn);
}

const HEADERS = Symbol("envelope.vault.responseHeaders");

/** Tags a failed call's error with the headers its response carried, for the classifier. */
export function tagHeaders(error: unknown, seen: SeenHeaders): unknown {
  if (typeof error === "object" && error !== null && (seen.retryAfter || seen.date)) {
    try {
      Object.defineProperty(error, HEADERS, { value: { ...seen }, configurable: true });
    } catch {
      // A frozen error keeps its own headers, if any.
    }
  }
  return error;
}

/**
 * The Retry-After and Date of a failure: as tagged by `tagHeaders`, or from the error's own
 * `response.headers` (an axios error, or an injected client that keeps them).
 */
export function headersOf(error: unknown): SeenHeaders {
  if (typeof error !== "object" || error === null) return {};
  const tagged = (error as { [HEADERS]?: SeenHeaders })[HEADERS];
  if (tagged) return tagged;
  const headers = (error as { response?: { headers?: unknown } }).response?.headers;
  if (typeof headers !== "object" || headers === null) return {};
  const get = (name: string): string | undefined => {
    const h = headers as { get?: unknown } & Record<string, unknown>;
    const v = typeof h.get === "function" ? (h.get as (n: string) => unknown)(name) : h[name];
    return typeof v === "string" ? v : undefined;
  };
  return { retryAfter: get("retry-after"), date: get("date") };
}
