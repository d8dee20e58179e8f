import { randomBytes } from "node:crypto";
import { type KeyProvider, localAesProvider } from "@envelope/core";

/** A local-aes master that counts its calls, with an optional native rewrap. */
export function countingMaster(options: { key?: Buffer; nativeRewrap?: boolean } = {}) {
  const inner = localAesProvider({ keys: options.key ?? randomBytes(32) });
  const calls = { wrap: 0, unwrap: 0, rewrap: 0 };
  const provider: KeyProvider = {
    id: inner.id,
    keyRef: inner.keyRef,
    handles: (e) => inner.handles(e),
    wrap: (k, r) => {
      calls.wrap++;
      return inner.wrap(k, r);
    },
    unwrap: (e, r) => {
      calls.unwrap++;
      return inner.unwrap(e, r);
    },
  };
  return { provider, calls, total: () => calls.wrap + calls.unwrap + calls.rewrap };
}

/** Two local-aes keys in one provider: `next` wraps under the new key and rewraps natively. */
export function rotatingMasters() {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const old = localAesProvider({ keys: [oldKey] });
  const both = localAesProvider({ keys: [newKey, oldKey] });
  const calls = { rewrap: 0 };
  const next: KeyProvider = {
    ...both,
    id: both.id,
    keyRef: both.keyRef,
    async rewrap(entry, request) {
      calls.rewrap++;
      const key = await both.unwrap(entry, request);
      try {
        return await both.wrap(key, request);
      } finally {
        key.fill(0);
      }
    },
  };
  const newOnly = localAesProvider({ keys: [newKey] });
  return { old, next, newOnly, calls };
}
