import { defineConfig } from "tsup";
import { packageBuild } from "../../tsup.base";

// index: the public API; internal: helpers for the sibling packages (not public).
export default defineConfig(packageBuild(["src/index.ts", "src/internal.ts"]));
