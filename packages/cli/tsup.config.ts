import { defineConfig } from "tsup";
import { packageBuild } from "../../tsup.base";

// index: the library (main(), EXIT_CODES…); cli: the `envelope` bin (keeps its shebang).
export default defineConfig(packageBuild(["src/index.ts", "src/cli.ts"]));
