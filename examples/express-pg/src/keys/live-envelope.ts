import { unwatchFile, watchFile } from "node:fs";
import { join } from "node:path";
import type { Envelope } from "@envelope/core";
import { envelopeFromCurrentRing } from "./envelope-config.js";
import { KEY_RING_FILE } from "./key-ring.js";

/** Where request handlers get the envelope from: the current one, which may be replaced. */
export interface EnvelopeRef {
  current(): Envelope;
}

/**
 * Holds the envelope the app uses and lets a key-ring change replace it without a
 * restart: requests already running finish with the envelope they started with.
 *
 * @example
 * const live = new LiveEnvelope(envelope);
 * createApp({ pool, envelope: live, blindIndex, table });
 */
export class LiveEnvelope implements EnvelopeRef {
  #envelope: Envelope;

  constructor(envelope: Envelope) {
    this.#envelope = envelope;
  }

  current(): Envelope {
    return this.#envelope;
  }

  /** Switches to `next`; the old envelope's cached data keys are dropped a little later. */
  replace(next: Envelope): void {
    const old = this.#envelope;
    this.#envelope = next;
    if (old !== next) setTimeout(() => old.clearCaches(), 10_000).unref();
  }

  toJSON(): unknown {
    return this.#envelope.describe();
  }
}

/**
 * Polls `<keysDir>/keyring.json` and swaps in a new envelope when it changes (what
 * `rotate` relies on to move the running API to the new key). Polling, not fs.watch,
 * because the ring is replaced by rename. Returns a function that stops watching.
 */
export function watchKeyRing(
  keysDir: string,
  env: Readonly<Record<string, string | undefined>>,
  live: LiveEnvelope,
  onReload: (result: { ok: true; encrypt: string[] } | { ok: false; code: string }) => void,
  intervalMs = 250,
): () => void {
  const path = join(keysDir, KEY_RING_FILE);
  let chain = Promise.resolve();
  const listener = (now: { mtimeMs: number }, before: { mtimeMs: number }) => {
    if (now.mtimeMs === before.mtimeMs || now.mtimeMs === 0) return;
    chain = chain.then(async () => {
      try {
        const next = await envelopeFromCurrentRing(env, keysDir);
        live.replace(next);
        onReload({ ok: true, encrypt: next.describe().encrypt });
      } catch (error) {
        // Keep serving with the previous keys; a broken ring must not take the API down.
        onReload({ ok: false, code: (error as { code?: string }).code ?? "UNEXPECTED_ERROR" });
      }
    });
  };
  watchFile(path, { interval: intervalMs, persistent: false }, listener);
  return () => unwatchFile(path, listener);
}
