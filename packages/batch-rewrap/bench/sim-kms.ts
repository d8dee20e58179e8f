/**
 * A simulated KMS for benchmarks and tests: named AES-256 keys held "inside the KMS",
 * `wrap`, `unwrap` and a native `rewrap` (AWS ReEncrypt, Vault rewrap: one call that
 * re-protects an entry under another key without the data key leaving the KMS), each
 * taking `latencyMs` like a network round trip. Not a real KMS: keys live in this process.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { KeyProvider, KeyRequest, WrappedKey } from "@envelope/core";

export interface SimKmsOptions {
  /** Milliseconds each call takes (default 10). */
  latencyMs?: number;
  /** Called before each call (e.g. to throw a throttling error); `op` names the call. */
  before?: (op: "wrap" | "unwrap" | "rewrap") => void;
  /** Sleep used for the latency (default setTimeout). */
  sleep?: (ms: number) => Promise<void>;
}

const ID = "sim-kms";

/** One simulated KMS account; `key(name)` gives a provider wrapping under that key. */
export class SimKms {
  readonly #keys = new Map<string, Buffer>();
  readonly #latency: number;
  readonly #before: SimKmsOptions["before"];
  readonly #sleep: (ms: number) => Promise<void>;
  readonly calls = { wrap: 0, unwrap: 0, rewrap: 0 };

  constructor(options: SimKmsOptions = {}) {
    this.#latency = options.latencyMs ?? 10;
    this.#before = options.before;
    this.#sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** A provider for key `name` (created on first use); `latency: false` = the same key, no delay (for seeding). */
  key(name: string, { latency = true }: { latency?: boolean } = {}): KeyProvider {
    if (!this.#keys.has(name)) this.#keys.set(name, randomBytes(32));
    const call = async <T>(op: "wrap" | "unwrap" | "rewrap", fn: () => T): Promise<T> => {
      if (latency) {
        this.calls[op]++;
        this.#before?.(op);
        if (this.#latency > 0) await this.#sleep(this.#latency);
      }
      return fn();
    };
    return {
      id: ID,
      keyRef: name,
      handles: (e) => e.providerId === ID && this.#keys.has(e.keyRef),
      wrap: (dataKey) => call("wrap", () => this.#wrap(name, dataKey)),
      unwrap: (entry) => call("unwrap", () => this.#unwrap(entry)),
      rewrap: (entry: WrappedKey, _request: KeyRequest) =>
        call("rewrap", () => {
          const dataKey = this.#unwrap(entry);
          try {
            return this.#wrap(name, dataKey);
          } finally {
            dataKey.fill(0);
          }
        }),
    };
  }

  #wrap(name: string, dataKey: Uint8Array): WrappedKey {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.#keys.get(name)!, iv);
    cipher.setAAD(Buffer.from(name));
    const body = Buffer.concat([cipher.update(dataKey), cipher.final()]);
    return {
      providerId: ID,
      keyRef: name,
      wrapped: Buffer.concat([iv, body, cipher.getAuthTag()]),
    };
  }

  #unwrap(entry: WrappedKey): Uint8Array {
    const key = this.#keys.get(entry.keyRef);
    if (!key) throw new Error("sim-kms: unknown key");
    const w = Buffer.from(entry.wrapped);
    const decipher = createDecipheriv("aes-256-gcm", key, w.subarray(0, 12));
    decipher.setAAD(Buffer.from(entry.keyRef));
    decipher.setAuthTag(w.subarray(w.length - 16));
    return Buffer.concat([decipher.update(w.subarray(12, w.length - 16)), decipher.final()]);
  }
}
