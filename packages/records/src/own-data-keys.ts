import { createHmac, randomBytes } from "node:crypto";
import type { Envelope } from "@envelope/core";

/** Data keys generated per Envelope remembered at most (oldest forgotten first). */
const OWN_DATA_KEYS_MAX = 10_000;

/**
 * The data keys record ciphers generated through one Envelope, each bound to its table and
 * record id: the only keys `update` seals new data under. Holds a keyed fingerprint
 * (HMAC-SHA256 under a random per-Envelope secret, cut to 16 bytes), never a key. Bounded:
 * a forgotten key only costs the next update of that record a fresh data key.
 */
export class OwnDataKeys {
  readonly #secret = randomBytes(32);
  readonly #seen = new Map<string, true>();

  #tag(table: string, id: string, dataKey: Uint8Array): string {
    return createHmac("sha256", this.#secret)
      .update(JSON.stringify([table, id]))
      .update(dataKey)
      .digest()
      .subarray(0, 16)
      .toString("base64");
  }

  add(table: string, id: string, dataKey: Uint8Array): void {
    const tag = this.#tag(table, id, dataKey);
    this.#seen.delete(tag);
    this.#seen.set(tag, true);
    if (this.#seen.size > OWN_DATA_KEYS_MAX) {
      this.#seen.delete(this.#seen.keys().next().value!);
    }
  }

  has(table: string, id: string, dataKey: Uint8Array): boolean {
    const tag = this.#tag(table, id, dataKey);
    if (!this.#seen.has(tag)) return false;
    this.#seen.delete(tag); // most recently used last
    this.#seen.set(tag, true);
    return true;
  }
}

const ownByEnvelope = new WeakMap<Envelope, OwnDataKeys>();

export function ownDataKeys(envelope: Envelope): OwnDataKeys {
  let own = ownByEnvelope.get(envelope);
  if (!own) {
    own = new OwnDataKeys();
    ownByEnvelope.set(envelope, own);
  }
  return own;
}
