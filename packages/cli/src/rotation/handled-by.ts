import type { KeyProvider } from "@envelope/core";

/** True when one of `providers` can open an entry under `ref` (`provider:keyRef` as counted). */
export function handledBy(providers: readonly KeyProvider[], ref: string): boolean {
  const colon = ref.indexOf(":");
  const entry = {
    providerId: ref.slice(0, colon),
    keyRef: ref.slice(colon + 1),
    wrapped: new Uint8Array(0),
  };
  return providers.some((p) => p.handles(entry));
}
