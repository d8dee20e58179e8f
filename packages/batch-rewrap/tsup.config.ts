import { defineConfig } from "tsup";
import { packageBuild } from "../../tsup.base";

// rewrap-thread: the entry of the rewrap worker threads (`threads`), found beside the
// bundle that starts them (threads/locate.ts); shims give the CJS build its import.meta.url.
export default defineConfig({
  ...packageBuild(),
  entry: { index: "src/index.ts", "rewrap-thread": "src/threads/rewrap-thread.ts" },
  shims: true,
});
