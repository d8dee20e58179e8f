import { Worker } from "node:worker_threads";
import { ConfigError, type EncryptionContext, EnvelopeError, ProviderError } from "@envelope/core";
import type { Value } from "../engine/transform.js";
import { threadEntry } from "./locate.js";
import {
  fromWire,
  pack,
  type RewrapReply,
  type RewrapRequest,
  type ThreadSetup,
  type ThreadStatus,
  unpack,
} from "./wire.js";

/**
 * Values per message at most. A thread answers a message whole: bounded messages let it work
 * on the next one while the main thread handles its answer (pipelined). On the 2-core dev
 * machine (quiet, 50,000-row jobs, 2 threads) 32 gave 17,100–18,000 rows/s, 8 gave about
 * 13,700 (a wake-up of each side per 8 values) and 64 14,200–14,900.
 */
export const MAX_PER_MESSAGE = 32;

interface Task {
  value: Value;
  context: EncryptionContext;
  resolve(value: Value): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  /** Request id → its tasks, in the order of the request's values. */
  pending: Map<number, Task[]>;
  /** Values sent and not answered, plus those in the outbox. */
  load: number;
  /** Values asked for in this turn of the event loop, sent together by `#flush`. */
  outbox: Task[];
  dead: boolean;
}

/**
 * A fixed-size pool of rewrap threads. The values asked for in one turn of the event loop
 * go to each thread as one message (at most {@link MAX_PER_MESSAGE} values), to the thread
 * with the least work; each answer resolves its values' promises, or rejects them with the
 * thread's error rebuilt as the same EnvelopeError class and code. Threads hold a reference
 * on the event loop only while they have work, and stop on `close()`. A thread that dies is
 * replaced on the next call; the values it held fail with ENVELOPE_KMS_UNAVAILABLE (retried
 * by the engine).
 */
export class RewrapPool {
  readonly #size: number;
  readonly #setup: ThreadSetup;
  readonly #onCalls: (calls: number) => void;
  readonly #slots: Slot[] = [];
  #nextId = 1;
  #closed = false;

  private constructor(size: number, setup: ThreadSetup, onCalls: (calls: number) => void) {
    this.#size = size;
    this.#setup = setup;
    this.#onCalls = onCalls;
  }

  /**
   * Starts `size` threads and waits until each has built its keys. Throws the first
   * thread's error (e.g. ConfigError for a key it cannot load) after stopping them all.
   * `onCalls` receives the key calls the threads made (the job's KMS call count).
   */
  static async start(
    size: number,
    setup: ThreadSetup,
    onCalls: (calls: number) => void,
  ): Promise<RewrapPool> {
    const pool = new RewrapPool(size, setup, onCalls);
    try {
      await Promise.all(Array.from({ length: size }, () => pool.#spawn().started));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  get size(): number {
    return this.#size;
  }

  /** Rewraps one value on a thread. Rejects with the error the thread's rewrap threw. */
  rewrap(value: Value, context: EncryptionContext): Promise<Value> {
    if (this.#closed) return Promise.reject(closedError());
    const slot = this.#pick();
    return new Promise<Value>((resolve, reject) => {
      slot.outbox.push({ value, context, resolve, reject });
      if (slot.load++ === 0) slot.worker.ref();
      if (slot.outbox.length === 1) setImmediate(() => this.#flush(slot));
    });
  }

  /** Stops every thread; values in flight fail with ENVELOPE_CLOSED. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const slots = this.#slots.splice(0);
    for (const slot of slots) this.#fail(slot, () => closedError());
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  /** Sends a thread the values asked for since its last flush, in messages of at most MAX_PER_MESSAGE. */
  #flush(slot: Slot): void {
    const tasks = slot.outbox.splice(0);
    if (slot.dead) return;
    for (let i = 0; i < tasks.length; i += MAX_PER_MESSAGE) {
      const part = tasks.slice(i, i + MAX_PER_MESSAGE);
      const id = this.#nextId++;
      const { values, transfer } = pack(part.map((t) => t.value));
      const request: RewrapRequest = {
        id,
        values: values as (string | Uint8Array)[],
        contexts: part.map((t) => t.context),
      };
      slot.pending.set(id, part);
      slot.worker.postMessage(request, transfer);
    }
  }

  #pick(): Slot {
    for (let i = this.#slots.length - 1; i >= 0; i--) {
      if (this.#slots[i]!.dead) this.#slots.splice(i, 1);
    }
    while (this.#slots.length < this.#size) this.#spawn().started.catch(() => {});
    let best = this.#slots[0]!;
    for (const s of this.#slots) if (s.load < best.load) best = s;
    return best;
  }

  #spawn(): { slot: Slot; started: Promise<void> } {
    const { entry, eval: isCode } = threadEntry();
    // --no-warnings: the main thread resolved the same specs first (planThreads), so a
    // warning about a key file (ENVELOPE_KEY_FILE_PERMISSIONS) was printed once, not once more per thread.
    const worker = new Worker(entry, {
      workerData: this.#setup,
      eval: isCode,
      execArgv: ["--no-warnings"],
    });
    worker.unref();
    const slot: Slot = { worker, pending: new Map(), load: 0, outbox: [], dead: false };
    this.#slots.push(slot);
    let started!: (error?: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      started = (error) => (error ? reject(error) : resolve());
    });
    worker.on("message", (m: RewrapReply | ThreadStatus) => {
      if ("ready" in m) return started();
      if ("fatal" in m) {
        const error = fromWire(m.fatal);
        started(error);
        this.#fail(slot, () => error);
        void worker.terminate();
        return;
      }
      this.#settle(slot, m);
    });
    // A thread's "error" carries whatever it threw (module not found, a bug): a fixed text
    // and the error's name go on, never its message (it could quote a value).
    const died = (why: string) => {
      const error = () =>
        new ProviderError(
          "ENVELOPE_KMS_UNAVAILABLE",
          `A rewrap worker thread ${why}; its values are retried on a new thread.`,
          { details: { provider: "threads" } },
        );
      started(
        new ConfigError(
          "ENVELOPE_BAD_CONFIG",
          `A rewrap worker thread ${why} while starting. Leave threads out (--threads off) to rewrap on the main thread.`,
          { details: { field: "threads" } },
        ),
      );
      this.#fail(slot, error);
    };
    worker.on("error", (e: unknown) =>
      died(`failed (${EnvelopeError.isInstance(e) ? e.code : ((e as Error)?.name ?? "Error")})`),
    );
    worker.on("exit", () => died("stopped"));
    return { slot, started: ready };
  }

  #settle(slot: Slot, reply: RewrapReply): void {
    const tasks = slot.pending.get(reply.id);
    if (!tasks) return;
    slot.pending.delete(reply.id);
    slot.load -= tasks.length;
    if (slot.load === 0) slot.worker.unref();
    if (reply.calls > 0) this.#onCalls(reply.calls);
    for (let i = 0; i < tasks.length; i++) {
      const error = reply.errors[i];
      const value = reply.values[i];
      if (error) tasks[i]!.reject(fromWire(error));
      else if (value === null || value === undefined)
        tasks[i]!.reject(
          new ProviderError(
            "ENVELOPE_PROVIDER_CONTRACT",
            "A rewrap worker thread answered without a value (a bug in Envelope): report it; the value was left as it was.",
            { details: { provider: "threads" } },
          ),
        );
      else tasks[i]!.resolve(unpack(value));
    }
  }

  /** The slot is gone: every value it held or had queued fails with `error()`. */
  #fail(slot: Slot, error: () => Error): void {
    if (slot.dead) return;
    slot.dead = true;
    const tasks = [...slot.pending.values()].flat().concat(slot.outbox.splice(0));
    slot.pending.clear();
    slot.load = 0;
    for (const t of tasks) t.reject(error());
  }
}

const closedError = () =>
  new ConfigError("ENVELOPE_CLOSED", "The rewrap threads were closed (the job ended).");
