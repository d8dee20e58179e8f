import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const pkg = (name: string, entry = "index.ts") =>
  fileURLToPath(new URL(`./packages/${name}/src/${entry}`, import.meta.url));

// Tests run against the TypeScript sources. The few that run the built `envelope` command
// get their dist/ from test/global-setup.ts, which builds first when dist/ is missing or stale.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@envelope\/core$/, replacement: pkg("core") },
      { find: /^@envelope\/core\/internal$/, replacement: pkg("core", "internal.ts") },
      { find: /^@envelope\/core\/testing$/, replacement: pkg("core", "testing/index.ts") },
      { find: /^@envelope\/local-rsa$/, replacement: pkg("local-rsa") },
      { find: /^@envelope\/aws-kms$/, replacement: pkg("aws-kms") },
      { find: /^@envelope\/azure-keyvault$/, replacement: pkg("azure-keyvault") },
      { find: /^@envelope\/vault$/, replacement: pkg("vault") },
      { find: /^@envelope\/batch-rewrap$/, replacement: pkg("batch-rewrap") },
      { find: /^@envelope\/cli$/, replacement: pkg("cli") },
      { find: /^@envelope\/hierarchical$/, replacement: pkg("hierarchical") },
      { find: /^@envelope\/otel$/, replacement: pkg("otel") },
      { find: /^@envelope\/records$/, replacement: pkg("records") },
      { find: /^@envelope\/legacy$/, replacement: pkg("legacy") },
    ],
  },
  test: {
    globalSetup: ["test/global-setup.ts"],
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "examples/*/test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    poolOptions: {
      forks: {
        // PGlite is a 9 MB WebAssembly build of PostgreSQL, started afresh in each test
        // file's process. V8's default tiering recompiles its hot functions with TurboFan
        // in the background, which costs more CPU than a short-lived test database saves:
        // Liftoff alone cut the PGlite-heavy test files from 138 s to 98 s of CPU.
        execArgv: ["--liftoff-only"],
      },
    },
    // Most test files wait (on PostgreSQL, MariaDB, child processes, the KMS test servers)
    // far more than they compute. vitest's default, one worker fewer than the cores, is a
    // single worker on the 2-core CI machine: the suite took 7 min 55 s there, and 2 min 55 s
    // with 3 workers (4: 2 min 40 s). Every test file uses tables and directories of its own.
    maxWorkers: Math.max(3, availableParallelism() - 1),
    minWorkers: 1,
    // On Node 20 the AWS SDK warns once per process (so once per test file here) that its
    // releases after January 2027 need Node 22. Known and documented in docs/RUNTIMES.md;
    // the library itself never silences it for users.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  },
});
