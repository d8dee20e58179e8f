import type { AccessToken } from "@azure/core-auth";
import type { KeyProvider } from "@envelope/core";
import { runProviderConformance } from "@envelope/core/testing";
import { afterAll, beforeAll, describe, it } from "vitest";
import { type Harness, startHarness, TOKEN } from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

// Each test gets a fresh RSA key and a credential whose token a "denied" fault can spoil.
let counter = 0;
const made = new WeakMap<KeyProvider, { name: string; token: { value: string } }>();
// Only the timeout fault's test waits out `timeoutMs`; the others get room for a slow machine.
const fresh = async (test?: { fault?: string }) => {
  const name = `conf-${++counter}`;
  await h.admin.createRsaKey(name);
  const token = { value: TOKEN };
  const credential = {
    getToken: async (): Promise<AccessToken> => ({
      token: token.value,
      expiresOnTimestamp: Date.now() + 3_600_000,
    }),
  };
  const provider = h.provider(`${h.kv.url}/keys/${name}`, {
    credential,
    retry: {
      attempts: 2,
      baseDelayMs: 1,
      maxDelayMs: 2,
      timeoutMs: test?.fault === "timeout" ? 500 : 5000,
    },
  });
  made.set(provider, { name, token });
  return provider;
};
const of = (p: KeyProvider) => made.get(p)!;
const faults = (set: Partial<typeof h.kv.faults>) => () => {
  Object.assign(h.kv.faults, set);
  return () => {
    Object.assign(h.kv.faults, { throttleEvery: 0, failEvery: 0, dropEvery: 0, hang: false });
  };
};

runProviderConformance(
  { describe, it },
  {
    name: "azure-kv against the Key Vault test server",
    provider: fresh,
    otherKey: fresh,
    // Key Vault binds no context and has no native rewrap; the core binds the context (AAD).
    rotate: async (p) => {
      await h.admin.rotateKey(of(p).name);
    },
    faults: {
      throttle: faults({ throttleEvery: 1 }),
      "5xx": faults({ failEvery: 1 }),
      timeout: faults({ hang: true }),
      down: faults({ dropEvery: 1 }),
      disabled: async (p) => {
        await h.admin.updateKeyProperties(of(p).name, { enabled: false });
        return () => {};
      },
      deleted: async (p) => {
        await (await h.admin.beginDeleteKey(of(p).name)).pollUntilDone();
        return () => {};
      },
      denied: (p) => {
        of(p).token.value = "not-a-valid-token";
        return () => {};
      },
    },
    secrets: [TOKEN],
  },
);
