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
  const paced =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      await limiter.take();
      let result: R;
      try {
        result = await fn(...args);
      } catch (error) {
        if (EnvelopeError.isInstance(error) && error.code === "ENVELOPE_KMS_THROTTLED")
          limiter.onThrottle();
        throw error;
      }
      limiter.onSuccess();
      return result;
    };
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
