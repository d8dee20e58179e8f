import { randomBytes } from "node:crypto";
import { localAesProvider } from "@envelope/core";
import { runProviderConformance } from "@envelope/core/testing";
import { hierarchicalProvider, memoryKeyStore } from "@envelope/hierarchical";
import { describe, it } from "vitest";

// Each provider has its own master key and key store. Unwrap is local once the
// intermediate key is cached, so the KMS faults belong to the master's own suite.
const fresh = () =>
  hierarchicalProvider({
    master: localAesProvider({ keys: randomBytes(32) }),
    store: memoryKeyStore(),
  });

runProviderConformance(
  { describe, it },
  { name: "hierarchical over local-aes", provider: fresh, otherKey: fresh },
);
