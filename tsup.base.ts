import type { Options } from "tsup";

/** Build settings every package shares: ESM + CJS + .d.ts for Node 20, with source maps. */
export function packageBuild(entry: string[] = ["src/index.ts"]): Options {
  return {
    entry,
    format: ["esm", "cjs"],
    dts: true,
    clean: true,
    sourcemap: true,
    target: "node20",
  };
}
