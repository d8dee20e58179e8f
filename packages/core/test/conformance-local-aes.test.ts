import { randomBytes } from "node:crypto";
import { describe, it } from "vitest";
import { localAesProvider } from "../src/index.js";
import { runProviderConformance } from "../src/testing/index.js";

// local-aes has no KMS: no rotation to re-read, no native rewrap, no network faults.
runProviderConformance(
  { describe, it },
  {
    name: "local-aes",
    provider: () => localAesProvider({ keys: randomBytes(32) }),
    otherKey: () => localAesProvider({ keys: randomBytes(32) }),
  },
);
