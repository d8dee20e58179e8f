// Most tests run against the TypeScript sources (vitest.config.ts aliases), but a few run
// the built `envelope` command as an operator would (the CLI bin tests, the takeover
// example), and that command loads the packages' dist/. On a fresh clone after
// `pnpm install && pnpm demo`, only the demo's packages are built: build the rest first,
// once, so `pnpm test` works exactly as the README says. A no-op when dist/ is current.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGES = fileURLToPath(new URL("../packages/", import.meta.url));

/** Newest modification time of any file under `dir` (0 when it does not exist). */
function newest(dir: string): number {
  if (!existsSync(dir)) return 0;
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return latest;
}

function stalePackages(): string[] {
  return readdirSync(PACKAGES).filter((name) => {
    const src = join(PACKAGES, name, "src");
    if (!existsSync(src)) return false;
    const built = newest(join(PACKAGES, name, "dist"));
    return built === 0 || newest(src) > built;
  });
}

export default function setup(): void {
  const stale = stalePackages();
  if (stale.length === 0) return;
  console.log(`\nBuilding packages first (dist/ missing or older than src/: ${stale.join(", ")})…`);
  const run = spawnSync("pnpm", ["build"], {
    stdio: "inherit",
    shell: process.platform === "win32",
  });
  if (run.status !== 0) {
    throw new Error(
      `pnpm build failed (exit ${run.status ?? run.signal}); fix the build, then run the tests again.`,
    );
  }
}
