// Runtime smoke test: imports the BUILT packages (dist, through their `exports` maps) the way
// an application does, and runs the same checks on Node, Bun and Deno. Build first
// (`pnpm build`), then from the repository root:
//   node scripts/runtime-smoke/run.mjs
//   bun scripts/runtime-smoke/run.mjs
//   deno run --allow-read --allow-write --allow-env --allow-net=127.0.0.1 --allow-sys scripts/runtime-smoke/run.mjs
// Exit code 0 = every check passed. Only error codes and messages are printed, never a key
// or a plaintext. ENVELOPE_SMOKE_PG_URL (default postgres://postgres@127.0.0.1:5432/test)
// adds a real-PostgreSQL check; ENVELOPE_SMOKE_PG=off skips it, ENVELOPE_SMOKE_PGLITE=off the
// PGlite one.

import { cjsChecks } from "./checks/cjs.mjs";
import { coreChecks } from "./checks/core.mjs";
import { hierarchicalChecks } from "./checks/hierarchical.mjs";
import { localRsaChecks } from "./checks/local-rsa.mjs";
import { recordsChecks } from "./checks/records.mjs";
import { signedChecks } from "./checks/signed.mjs";
import { streamChecks } from "./checks/streams.mjs";
import { runtimeName } from "./runtime.mjs";

const checks = [
  ...coreChecks,
  ...signedChecks,
  ...streamChecks,
  ...localRsaChecks,
  ...recordsChecks,
  ...hierarchicalChecks,
  ...cjsChecks,
];

console.log(`runtime smoke on ${runtimeName()}`);
let failed = 0;
for (const [name, check] of checks) {
  const started = performance.now();
  try {
    const note = await check();
    const ms = Math.round(performance.now() - started);
    console.log(`  ok    ${name} (${ms} ms)${note ? ` — ${note}` : ""}`);
  } catch (error) {
    failed++;
    console.log(`  FAIL  ${name}: ${describeError(error)}`);
  }
}
console.log(
  failed === 0
    ? `all ${checks.length} checks passed`
    : `${failed} of ${checks.length} checks failed`,
);
// Explicit exit: a runtime that keeps a handle open (a pool, a worker) must not hang CI.
process.exit(failed === 0 ? 0 : 1);

/** Name, code and message only: an error's other fields could hold anything. */
function describeError(error) {
  if (!(error instanceof Error)) return String(error).slice(0, 300);
  const code = typeof error.code === "string" ? ` [${error.code}]` : "";
  const cause =
    error.cause instanceof Error
      ? ` (cause: ${error.cause.name}: ${String(error.cause.message).slice(0, 200)})`
      : "";
  return `${error.name}${code}: ${error.message.slice(0, 400)}${cause}`;
}
