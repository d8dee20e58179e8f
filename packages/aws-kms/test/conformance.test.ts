import { runProviderConformance } from "@envelope/core/testing";
import { afterAll, beforeAll, describe, it } from "vitest";
import type { AwsKmsProvider } from "../src/index.js";
import { type Harness, harness } from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await harness();
});
afterAll(async () => {
  await h.close();
});

// Each test gets a fresh key, so a disabled or deleted key ends with its test. Only the
// timeout fault's test waits out `timeoutMs`; the others get room for a slow machine.
const keys = new WeakMap<AwsKmsProvider, string>();
const fresh = (test?: { fault?: string }) => {
  const key = h.kms.createKey({ region: "eu-west-1" });
  const provider = h.provider({
    keyId: key.arn,
    retry: {
      attempts: 2,
      baseDelayMs: 1,
      maxDelayMs: 2,
      timeoutMs: test?.fault === "timeout" ? 300 : 5000,
    },
  });
  keys.set(provider, key.arn);
  return provider;
};
const arnOf = (p: unknown) => keys.get(p as AwsKmsProvider)!;
const faults = (set: Partial<typeof h.kms.faults>) => () => {
  Object.assign(h.kms.faults, set);
  return () => {
    h.kms.faults = {};
  };
};

runProviderConformance(
  { describe, it },
  {
    name: "aws-kms against the KMS test server",
    provider: fresh,
    otherKey: fresh,
    bindsContext: true,
    nativeRewrap: true,
    // KMS rotation keeps the ARN (no version in entries): nothing for refreshKeys to move.
    faults: {
      throttle: faults({ throttleEvery: 1 }),
      "5xx": faults({ failEvery: 1 }),
      timeout: faults({ hang: true }),
      down: faults({ dropEvery: 1 }),
      disabled: (p) => {
        h.kms.disableKey(arnOf(p));
        return () => {};
      },
      deleted: (p) => {
        h.kms.deleteKeyNow(arnOf(p));
        return () => {};
      },
      denied: (p) => {
        h.kms.deny("Decrypt", arnOf(p));
        return () => h.kms.allowAll();
      },
    },
    get secrets() {
      return [h.kms.credentials.secretAccessKey];
    },
  },
);
