import { inspect } from "node:util";
import { EnvelopeError, type KeyProvider } from "@envelope/core";
import type { Limiter } from "./limiter.js";

/**
 * The same provider, with every KMS call paced and counted by `limiter`, and its outcome
 * fed back to it: a throttling answer cuts the adaptive rate, a success grows it back.
 * The engine builds its own Envelope from metered providers, so it knows how many calls
 * a job made.
 */
export function metered(provider: KeyProvider, limiter: Limiter): KeyProvider {
  const succeeded = <R>(result: R): R => {
    limiter.onSuccess();
    return result;
  };
  const failed = (error: unknown): never => {
    if (EnvelopeError.isInstance(error) && error.code === "ENVELOPE_KMS_THROTTLED")
      limiter.onThrottle();
    throw error;
  };
  // Not an async function: in the common case (no rate limit, no throttling pause) the
  // call goes out at once with one `then` around it, not two async frames and an await
  // of the limiter per KMS call (two calls per rewrapped value). No closure per call
  // either: the slow path alone makes one.
  const send = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, args: A): Promise<R> => {
    let sent: Promise<R>;
    try {
      sent = Promise.resolve(fn(...args));
    } catch (error) {
      sent = Promise.reject(error);
    }
    return sent.then(succeeded, failed);
  };
  const paced =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      limiter.takeNow() ? send(fn, args) : limiter.take().then(() => send(fn, args));
  const out: KeyProvider & { toJSON(): object; [inspect.custom](): string } = {
    id: provider.id,
    keyRef: provider.keyRef,
    handles: (entry) => provider.handles(entry),
    wrap: paced((dataKey, request) => provider.wrap(dataKey, request)),
    unwrap: paced((entry, request) => provider.unwrap(entry, request)),
    ...(provider.generateDataKey
      ? { generateDataKey: paced((request) => provider.generateDataKey!(request)) }
      : {}),
    ...(provider.rewrap
      ? { rewrap: paced((entry, request) => provider.rewrap!(entry, request)) }
      : {}),
    ...(provider.kmsContextKey
      ? { kmsContextKey: (context) => provider.kmsContextKey!(context) }
      : {}),
    toJSON: () => ({ provider: provider.id, keyRef: provider.keyRef }),
    [inspect.custom]: () => `Metered(${provider.id}:${provider.keyRef})`,
  };
  return out;
}
