import type { KeyProvider } from "@envelope/core";
import { runProviderConformance } from "@envelope/core/testing";
import { afterAll, beforeAll, describe, it } from "vitest";
import { type Harness, harness } from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await harness();
});
afterAll(async () => {
  await h.close();
});

// Each test gets a fresh derived key (so the context is bound in Vault) and its own token.
let counter = 0;
const made = new WeakMap<KeyProvider, { name: string; token: string }>();
// Only the timeout fault's test waits out `timeoutMs`; the others get room for a slow machine.
const fresh = async (test?: { fault?: string }) => {
  const name = `conf-${++counter}`;
  await h.admin.write(`transit/keys/${name}`, { derived: true });
  const token = h.vault.createToken({ policies: ["root"] });
  const provider = h.provider({
    keyName: name,
    auth: { token },
    retry: {
      attempts: 2,
      baseDelayMs: 1,
      maxDelayMs: 2,
      timeoutMs: test?.fault === "timeout" ? 300 : 5000,
    },
  });
  await provider.init();
  made.set(provider, { name, token });
  return provider;
};
const of = (p: KeyProvider) => made.get(p)!;
const faults = (set: Partial<typeof h.vault.faults>) => () => {
  Object.assign(h.vault.faults, set);
  return () => {
    for (const k of Object.keys(h.vault.faults))
      delete (h.vault.faults as Record<string, unknown>)[k];
  };
};

runProviderConformance(
  { describe, it },
  {
    name: "vault-transit against the Vault test server",
    provider: fresh,
    otherKey: fresh,
    bindsContext: true,
    nativeRewrap: true,
    rotate: async (p) => {
      await h.admin.write(`transit/keys/${of(p).name}/rotate`, {});
    },
    faults: {
      throttle: faults({ throttleEvery: 1 }),
      "5xx": faults({ failEvery: 1 }),
      timeout: faults({ hang: true }),
      down: faults({ dropEvery: 1 }),
      // Transit has no "disabled" state: raising min_decryption_version past the entry's
      // version is how a key version is taken out of use.
      disabled: async (p) => {
        const { name } = of(p);
        await h.admin.write(`transit/keys/${name}/rotate`, {});
        await h.admin.write(`transit/keys/${name}/config`, { min_decryption_version: 2 });
        return () => {};
      },
      deleted: async (p) => {
        const { name } = of(p);
        await h.admin.write(`transit/keys/${name}/config`, { deletion_allowed: true });
        await h.admin.delete(`transit/keys/${name}`);
        return () => {};
      },
      denied: (p) => {
        h.vault.revokeToken(of(p).token);
        return () => {};
      },
    },
    get secrets() {
      return [h.vault.rootToken];
    },
  },
);
