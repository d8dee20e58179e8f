import { defineConfig } from "tsup";
import { packageBuild } from "../../tsup.base";

// index: the public API; internal: helpers for the sibling packages (not public);
// testing: the provider conformance suite (tests only; no test framework imported).
export default defineConfig({
  ...packageBuild(),
  entry: { index: "src/index.ts", internal: "src/internal.ts", testing: "src/testing/index.ts" },
});
