import { randomBytes } from "node:crypto";
import { type KeyProvider, localAesProvider, type WrappedKey } from "@envelope/core";

/**
 * A simulated remote KMS: local AES key wrap behind a fixed latency per call (setTimeout),
 * with a call counter and a native rewrap (one call, like AWS ReEncrypt or Vault rewrap).
 * Several instances can share `counter` so one number covers old and new master keys.
 */
export function simulatedKms(options: {
  latencyMs: number;
  key?: Buffer;
  oldKeys?: Buffer[];
  counter?: { calls: number };
}) {
  const key = options.key ?? randomBytes(32);
  const inner = localAesProvider({ keys: [key, ...(options.oldKeys ?? [])] });
  const counter = options.counter ?? { calls: 0 };
  const delay = () =>
    options.latencyMs > 0
      ? new Promise((resolve) => setTimeout(resolve, options.latencyMs))
      : Promise.resolve();
  const relabel = (e: WrappedKey): WrappedKey => ({ ...e, providerId: "sim-kms" });
  const unlabel = (e: WrappedKey): WrappedKey => ({ ...e, providerId: inner.id });
  const provider: KeyProvider = {
    id: "sim-kms",
    keyRef: inner.keyRef,
    handles: (e) => e.providerId === "sim-kms" && inner.handles(unlabel(e)),
    async wrap(dataKey, request) {
      counter.calls++;
      await delay();
      return relabel(await inner.wrap(dataKey, request));
    },
    async unwrap(entry, request) {
      counter.calls++;
      await delay();
      return inner.unwrap(unlabel(entry), request);
    },
    async rewrap(entry, request) {
      counter.calls++;
      await delay();
      const dataKey = await inner.unwrap(unlabel(entry), request);
      try {
        return relabel(await inner.wrap(dataKey, request));
      } finally {
        dataKey.fill(0);
      }
    },
  };
  return { provider, counter, key };
}
