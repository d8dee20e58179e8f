import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const pkg = (name: string, entry = "index.ts") =>
  fileURLToPath(new URL(`./packages/${name}/src/${entry}`, import.meta.url));

// Tests run against the TypeScript sources, so `pnpm test` needs no build first.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@envelope\/core$/, replacement: pkg("core") },
      { find: /^@envelope\/core\/internal$/, replacement: pkg("core", "internal.ts") },
      { find: /^@envelope\/local-rsa$/, replacement: pkg("local-rsa") },
      { find: /^@envelope\/aws-kms$/, replacement: pkg("aws-kms") },
      { find: /^@envelope\/azure-keyvault$/, replacement: pkg("azure-keyvault") },
      { find: /^@envelope\/vault$/, replacement: pkg("vault") },
      { find: /^@envelope\/batch-rewrap$/, replacement: pkg("batch-rewrap") },
      { find: /^@envelope\/cli$/, replacement: pkg("cli") },
      { find: /^@envelope\/hierarchical$/, replacement: pkg("hierarchical") },
      { find: /^@envelope\/otel$/, replacement: pkg("otel") },
      { find: /^@envelope\/records$/, replacement: pkg("records") },
    ],
  },
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "examples/*/test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
