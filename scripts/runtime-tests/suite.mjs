// The runtime test suite: the provider conformance suite and @envelope/records tests against
// the BUILT packages (run `pnpm build` first), with node:test as the runner, which Node, Bun
// and Deno all provide. Each runtime runs node:test files its own way:
//   node scripts/runtime-tests/suite.mjs
//   bun test ./scripts/runtime-tests/suite.mjs
//   deno test --allow-read --allow-write --allow-env --allow-net=127.0.0.1 scripts/runtime-tests/suite.mjs
// (`bun run` refuses describe outside `bun test`; `deno run` runs no test at all and exits 0.)
// .ci/runtimes runs it on every runtime and checks the tally (tally.mjs) it writes.
// ENVELOPE_SMOKE_PG_URL / ENVELOPE_SMOKE_PG=off: as for the smoke (scripts/runtime-smoke).
import { after, before, describe, it } from "node:test";
import { providerConformance } from "./providers.mjs";
import { recordsTests } from "./records.mjs";
import { countedTests } from "./tally.mjs";

const api = { ...countedTests({ describe, it }), before, after };
providerConformance(api);
recordsTests(api);
