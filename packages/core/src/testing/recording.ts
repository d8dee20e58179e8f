import type { WrappedKey } from "../format/envelope.js";
import type { KeyProvider } from "../providers/types.js";

/**
 * A view of `provider` that records the entries passed to `unwrap` and `rewrap`, and
 * otherwise behaves exactly like it (getters such as a live `keyRef` included).
 *
 * @example
 * const { provider, unwrapped } = recordingProvider(kmsProvider);
 */
export function recordingProvider(inner: KeyProvider): {
  provider: KeyProvider;
  unwrapped: WrappedKey[];
  rewrapped: WrappedKey[];
} {
  const unwrapped: WrappedKey[] = [];
  const rewrapped: WrappedKey[] = [];
  const provider = new Proxy(inner, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== "function") return value;
      if (property === "unwrap" || property === "rewrap") {
        const log = property === "unwrap" ? unwrapped : rewrapped;
        return (entry: WrappedKey, ...rest: unknown[]) => {
          log.push(entry);
          return (value as (...args: unknown[]) => unknown).call(target, entry, ...rest);
        };
      }
      return (value as (...args: unknown[]) => unknown).bind(target);
    },
  });
  return { provider, unwrapped, rewrapped };
}
