import { availableParallelism } from "node:os";
import { ConfigError, type KeyProvider, type KeySpec, resolveKey } from "@envelope/core";
import type { ThreadSetup } from "./wire.js";

/**
 * Rewrap values on worker threads (local keys only): the key specs of `to` and `decrypt`
 * as plain data (key URIs or provider configs), from which each thread builds its own
 * providers, since provider objects cannot cross threads.
 */
export interface RewrapThreads {
  /** Threads: a count (1–256) or `"auto"`: one per core (`os.availableParallelism()`). */
  count: number | "auto";
  /** The specs of the job's `to` keys, in the same order (checked: the same keys). */
  to: readonly KeySpec[];
  /** The specs of the job's `decrypt` keys (checked: together with `to`, the same keys). */
  decrypt?: readonly KeySpec[];
  /** Where `local-aes://env/VAR` specs read their variables. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Upper bound for an explicit thread count (a typo like 1000 must not start 1000 threads). */
export const MAX_THREADS = 256;

/** Providers whose work is all local CPU, which the threads can rebuild from a spec. */
const THREADED_PROVIDERS: readonly string[] = ["local-aes"];

/** What `prepareRewrap` starts the threads with. */
export interface ThreadPlan {
  size: number;
  setup: Omit<ThreadSetup, "verifyAll" | "verifyBody">;
}

const bad = (message: string, field: string) =>
  new ConfigError("ENVELOPE_BAD_CONFIG", message, { details: { field } });

/** `count` as a number of threads. Throws ConfigError ENVELOPE_BAD_CONFIG. */
export function threadCount(count: unknown): number {
  if (count === "auto") return Math.max(1, availableParallelism());
  if (typeof count === "number" && Number.isInteger(count) && count >= 1 && count <= MAX_THREADS)
    return count;
  throw bad(
    `threads.count must be "auto" (one thread per core) or a thread count from 1 to ${MAX_THREADS}; leave threads out to rewrap on the main thread.`,
    "threads.count",
  );
}

/**
 * Checks `threads` against the job's keys before any thread starts: plain, local specs
 * naming exactly the keys of `to` (in order) and `decrypt`, and no rate limit (threads'
 * key calls are not paced). Messages never quote a spec: it may hold a key.
 */
export async function planThreads(
  threads: RewrapThreads,
  to: readonly KeyProvider[],
  decrypt: readonly KeyProvider[],
  rateCeiling: number,
): Promise<ThreadPlan> {
  if (typeof threads !== "object" || threads === null)
    throw bad("threads must be { count, to, decrypt?, env? }.", "threads");
  const size = threadCount(threads.count);
  if (Number.isFinite(rateCeiling))
    throw bad(
      "threads and rateLimit exclude each other: rateLimit paces KMS calls on the main thread, and the local keys the threads use make none. Drop rateLimit, or threads.",
      "threads",
    );
  const env = { ...(threads.env ?? process.env) };
  const toSpecs = specList(threads.to, "threads.to");
  const decryptSpecs = specList(threads.decrypt ?? [], "threads.decrypt");
  const resolve = (specs: KeySpec[], field: string) =>
    Promise.all(specs.map((s, i) => resolveKey(s, `${field}[${i}]`, env)));
  const [threadTo, threadDecrypt] = await Promise.all([
    resolve(toSpecs, "threads.to"),
    resolve(decryptSpecs, "threads.decrypt"),
  ]);
  // Compared by every key's fingerprint where the job's providers show them (local-aes
  // does), else by provider id and key reference (a wrapper that hides them).
  const full = [...to, ...decrypt].every((p) => typeof (p as Shown).toJSON === "function");
  const identity = (p: KeyProvider) =>
    full ? JSON.stringify((p as Shown).toJSON?.()) : `${p.id}:${p.keyRef}`;
  const sameOrder =
    threadTo.length === to.length && threadTo.every((p, i) => identity(p) === identity(to[i]!));
  if (!sameOrder)
    throw bad(
      "threads.to must name the keys of `to`, in the same order: each thread rewraps to the keys it builds from these specs.",
      "threads.to",
    );
  const ours = new Set([...threadTo, ...threadDecrypt].map(identity));
  const theirs = new Set([...to, ...decrypt].map(identity));
  if (ours.size !== theirs.size || [...theirs].some((k) => !ours.has(k)))
    throw bad(
      "threads.to and threads.decrypt together must name the keys of `to` and `decrypt`: a thread that lacks a key would fail values the main thread can rewrap.",
      "threads.decrypt",
    );
  return { size, setup: { to: toSpecs, decrypt: decryptSpecs, env } };
}

/** Whether a rewrap thread could be given this spec: plain data naming a threaded (local) provider. */
export function isThreadableSpec(spec: unknown): boolean {
  try {
    plainSpec(spec, "spec");
    return true;
  } catch {
    return false;
  }
}

/** A list of plain, local specs (checked one by one). */
function specList(specs: unknown, field: string): KeySpec[] {
  if (!Array.isArray(specs) || (field === "threads.to" && specs.length === 0))
    throw bad(`${field} must be an array of key URIs or provider configs.`, field);
  return specs.map((spec, i) => plainSpec(spec, `${field}[${i}]`));
}

function plainSpec(spec: unknown, field: string): KeySpec {
  let provider: unknown;
  if (typeof spec === "string") {
    provider = /^([a-z][a-z0-9-]*):\/\//.exec(spec)?.[1];
  } else if (typeof spec === "object" && spec !== null) {
    const proto = Object.getPrototypeOf(spec);
    let cloneable = proto === Object.prototype || proto === null;
    try {
      if (cloneable) structuredClone(spec);
    } catch {
      cloneable = false;
    }
    if (!cloneable)
      throw bad(
        `${field} must be plain data (a key URI, or { provider: "local-aes", keys: [...] }), not a provider object or anything holding functions: each thread builds its own provider from it.`,
        field,
      );
    provider = (spec as { provider?: unknown }).provider;
  }
  if (typeof provider !== "string")
    throw bad(`${field} must be a key URI or { provider: "<scheme>", … }.`, field);
  if (!THREADED_PROVIDERS.includes(provider))
    throw bad(
      `${field} uses the "${provider.slice(0, 40)}" provider; only ${THREADED_PROVIDERS.join(", ")} keys are rewrapped on worker threads (a KMS call waits on the network, not on this process's CPU). Leave threads out for this job.`,
      field,
    );
  return spec as KeySpec;
}

/** A provider that shows which keys it holds without them (local-aes: every key's fingerprint). */
type Shown = KeyProvider & { toJSON?: () => unknown };
