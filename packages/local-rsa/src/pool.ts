import type { KeyObject } from "node:crypto";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { ConfigError } from "@envelope/core";

/**
 * How many worker threads run RSA private-key operations: a count (1–256), `"auto"` (one per
 * core, `os.availableParallelism()`), or `false` / `0` (on the calling thread, the default).
 */
export type RsaThreads = number | "auto" | false;

/** Upper bound for an explicit thread count (a typo like 1000 must not spawn 1000 threads). */
export const MAX_THREADS = 256;

/** Environment variable read when `threads` is not given: `auto`, a count, or `off`. */
export const THREADS_ENV = "ENVELOPE_LOCAL_RSA_THREADS";

/** Per worker thread: how many unwraps it ran. Thread ids are `worker_threads.threadId`. */
export interface RsaThreadStats {
  readonly threadId: number;
  readonly unwraps: number;
}

/**
 * Parses a `threads` setting (option, config field, `?threads=` or the env variable) into a
 * thread count; 0 means inline. Throws ConfigError `ENVELOPE_BAD_CONFIG` on anything else.
 */
export function threadCount(value: unknown, where: string): number {
  if (value === undefined || value === false || value === null) return 0;
  if (value === true || value === "auto") return Math.max(1, availableParallelism());
  if (typeof value === "string") {
    const v = value.trim().toLowerCase();
    if (v === "auto" || v === "true" || v === "on") return Math.max(1, availableParallelism());
    if (v === "off" || v === "false" || v === "" || v === "0") return 0;
    if (/^[0-9]{1,3}$/.test(v)) return threadCount(Number(v), where);
  }
  if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_THREADS)
    return value;
  throw new ConfigError(
    "ENVELOPE_BAD_CONFIG",
    `local-rsa: ${where} must be "auto" (one thread per core), a thread count from 1 to ${MAX_THREADS}, or false / 0 / "off" (RSA on the calling thread).`,
    { details: { field: "threads" } },
  );
}

/** Why a pooled unwrap failed, without any key material: OpenSSL's code and message. */
export class PoolUnwrapError extends Error {
  constructor(
    readonly reason: "decrypt" | "stopped",
    message: string,
    readonly opensslCode?: string,
  ) {
    super(message);
    this.name = "PoolUnwrapError";
  }
}

// The worker: CommonJS run from a string (`eval`), so the same code works from the ESM and
// CJS builds, from TypeScript sources under a test runner and from bundles, with no file to
// locate. It receives each key once (a KeyObject, cloned by postMessage: never PEM text),
// decrypts, copies each data key into a fresh ArrayBuffer that is transferred (not copied)
// to the main thread, and zeroes its own copy. Errors go back as OpenSSL's code and message
// only.
//
// The unwraps asked for in one turn of the main thread's event loop arrive as one message.
// Each result goes back as soon as it is ready: holding results to send them together woke
// the main thread less often, but left the worker less queued work to go on with while the
// main thread waited for a core, and on a loaded 2-core machine lowered the job's rows/s
// with no measurable CPU saved.
const WORKER_SOURCE = `
"use strict";
const { parentPort } = require("node:worker_threads");
const { privateDecrypt, constants } = require("node:crypto");
const keys = new Map();
parentPort.on("message", (m) => {
  if (m.keys) for (const [keyId, key] of m.keys) keys.set(keyId, key);
  for (const task of m.tasks) {
    let out;
    try {
      out = privateDecrypt({ key: keys.get(task.keyId), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, task.wrapped);
    } catch (e) {
      parentPort.postMessage({ id: task.id, error: { code: typeof e.code === "string" ? e.code : undefined, message: String(e && e.message).slice(0, 200) } });
      continue;
    }
    const data = new ArrayBuffer(out.length);
    new Uint8Array(data).set(out);
    out.fill(0);
    parentPort.postMessage({ id: task.id, data }, [data]);
  }
});
`;

/** One unwrap as sent to a worker; `wrapped` is a copy whose buffer is transferred. */
interface TaskMessage {
  id: number;
  keyId: number;
  wrapped: Uint8Array;
}

/** What a worker sends back per unwrap: the data key's buffer, or OpenSSL's error. */
interface TaskResult {
  id: number;
  data?: ArrayBuffer;
  error?: { code?: string; message: string };
}

interface Task {
  resolve(dataKey: Buffer): void;
  reject(error: PoolUnwrapError): void;
}

interface Slot {
  worker: Worker;
  threadId: number;
  pending: Map<number, Task>;
  sentKeys: Set<number>;
  /** Unwraps asked for in this turn of the event loop, sent together by `#flush`. */
  outbox: TaskMessage[];
  outboxKeys: [number, KeyObject][];
  unwraps: number;
  dead: boolean;
}

/**
 * A fixed-size pool of worker threads for RSA-OAEP-SHA256 private-key operations. Threads
 * start on the first unwrap, hold a reference on the event loop only while they have work
 * (so an idle pool never keeps a process alive), and stop on `close()`. A thread that dies
 * is replaced on the next call; the calls it held fail (`reason: "stopped"`).
 */
export class RsaPool {
  readonly #size: number;
  readonly #slots: Slot[] = [];
  readonly #keyIds = new WeakMap<KeyObject, number>();
  readonly #retired: RsaThreadStats[] = [];
  #nextKeyId = 1;
  #nextTask = 1;
  #closed = false;

  constructor(size: number) {
    this.#size = size;
  }

  get size(): number {
    return this.#size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Unwraps one data key on the least-busy thread. Rejects with PoolUnwrapError. */
  unwrap(key: KeyObject, wrapped: Uint8Array): Promise<Buffer> {
    if (this.#closed)
      return Promise.reject(new PoolUnwrapError("stopped", "the thread pool is closed"));
    const slot = this.#pick();
    let keyId = this.#keyIds.get(key);
    if (keyId === undefined) {
      keyId = this.#nextKeyId++;
      this.#keyIds.set(key, keyId);
    }
    const id = this.#nextTask++;
    if (!slot.sentKeys.has(keyId)) {
      slot.sentKeys.add(keyId);
      slot.outboxKeys.push([keyId, key]);
    }
    return new Promise<Buffer>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      if (slot.pending.size === 1) slot.worker.ref();
      // An exact copy, transferred: a view into a larger buffer (a parsed envelope, Node's
      // Buffer pool) would otherwise be cloned whole, with whatever else it holds.
      slot.outbox.push({ id, keyId, wrapped: new Uint8Array(wrapped) });
      if (slot.outbox.length === 1) setImmediate(() => this.#flush(slot));
    });
  }

  /** Sends a thread the unwraps asked for since the last flush, as one message. */
  #flush(slot: Slot): void {
    const tasks = slot.outbox.splice(0);
    const keys = slot.outboxKeys.splice(0);
    if (tasks.length === 0 || slot.dead) return;
    slot.worker.postMessage(
      { tasks, ...(keys.length > 0 ? { keys } : {}) },
      tasks.map((t) => t.wrapped.buffer as ArrayBuffer),
    );
  }

  /** Threads and the unwraps each ran (threads replaced or closed included). */
  stats(): RsaThreadStats[] {
    return [
      ...this.#retired,
      ...this.#slots.map((s) => ({ threadId: s.threadId, unwraps: s.unwraps })),
    ];
  }

  /** Stops every thread; pending calls fail with reason "stopped". Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const slots = this.#slots.splice(0);
    await Promise.all(slots.map((s) => this.#stop(s)));
  }

  #pick(): Slot {
    for (let i = this.#slots.length - 1; i >= 0; i--) {
      if (this.#slots[i]!.dead) this.#slots.splice(i, 1);
    }
    let best: Slot | undefined;
    for (const s of this.#slots) {
      if (!best || s.pending.size < best.pending.size) best = s;
    }
    if (this.#slots.length < this.#size && (!best || best.pending.size > 0)) {
      best = this.#spawn();
    }
    return best!;
  }

  #spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true, stdout: false, stderr: false });
    worker.unref();
    const slot: Slot = {
      worker,
      threadId: worker.threadId,
      pending: new Map(),
      sentKeys: new Set(),
      outbox: [],
      outboxKeys: [],
      unwraps: 0,
      dead: false,
    };
    worker.on("message", (result: TaskResult) => {
      this.#settle(slot, result);
      if (slot.pending.size === 0) worker.unref();
    });
    const fail = (why: string) => {
      if (slot.dead) return;
      slot.dead = true;
      this.#retired.push({ threadId: slot.threadId, unwraps: slot.unwraps });
      const tasks = [...slot.pending.values()];
      slot.pending.clear();
      slot.outbox.length = 0;
      for (const t of tasks) t.reject(new PoolUnwrapError("stopped", why));
    };
    // A worker "error" carries the thrown value; only a fixed text goes on.
    worker.on("error", () => fail("a worker thread failed"));
    worker.on("exit", () => fail("a worker thread stopped"));
    this.#slots.push(slot);
    return slot;
  }

  #settle(slot: Slot, result: TaskResult): void {
    const task = slot.pending.get(result.id);
    if (!task) {
      if (result.data) new Uint8Array(result.data).fill(0);
      return;
    }
    slot.pending.delete(result.id);
    if (result.data) {
      slot.unwraps++;
      task.resolve(Buffer.from(result.data));
    } else {
      task.reject(
        new PoolUnwrapError(
          "decrypt",
          result.error?.message ?? "decrypt failed",
          result.error?.code,
        ),
      );
    }
  }

  async #stop(slot: Slot): Promise<void> {
    const tasks = [...slot.pending.values()];
    slot.pending.clear();
    slot.outbox.length = 0;
    for (const t of tasks) t.reject(new PoolUnwrapError("stopped", "the thread pool was closed"));
    await slot.worker.terminate();
  }
}
