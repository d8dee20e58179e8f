import { defineConfig } from "tsup";

export default defineConfig({
  // index: the library (main(), EXIT_CODES…); cli: the `envelope` bin (keeps its shebang).
  entry: ["src/index.ts", "src/cli.ts"],
  format: ["esm", "cjs"],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "node20",
});
