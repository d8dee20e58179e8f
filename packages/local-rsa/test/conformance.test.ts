import { runProviderConformance } from "@envelope/core/testing";
import { localRsaProvider } from "@envelope/local-rsa";
import { describe, it } from "vitest";
import { rsaPem } from "./helpers.js";

// Local keys: no KMS to rotate in, no native rewrap, no network faults.
const fresh = () => localRsaProvider({ keys: { pem: rsaPem().privatePem } });

runProviderConformance({ describe, it }, { name: "local-rsa", provider: fresh, otherKey: fresh });
