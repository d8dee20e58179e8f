// What the runtime's node:test really ran, written outside the runner: a runtime whose
// node:test registers the tests but never runs them (`deno run` does that: zero tests, exit
// code 0) must fail CI, and so must one that drops some. Every test appends a line to the
// file named by ENVELOPE_RUNTIME_TALLY when it is registered, skipped, and when its body
// finished without throwing; check-tally.mjs compares the counts afterwards.
import { appendFileSync } from "node:fs";

const TALLY = process.env.ENVELOPE_RUNTIME_TALLY;
let registered = 0;
// Every test gets one, so a hang fails the test everywhere; and Bun's own default (5 s) is
// too short for PGlite's first start on a loaded CI machine.
const DEFAULT_TIMEOUT_MS = 60_000;

function note(kind, name) {
  // Test names only: no key, no plaintext. Tabs and newlines would break the line format.
  if (TALLY) appendFileSync(TALLY, `${kind}\t${name.replace(/\s+/g, " ")}\n`);
}

/**
 * `{ describe, it }` of node:test with every test counted. `it(name, fn, timeoutMs)` is the
 * shape the conformance suite calls (vitest's); node:test takes the timeout as an option.
 */
export function countedTests({ describe, it }) {
  const counted = (name, fn, timeoutMs) => {
    // Numbered: the conformance suite gives every provider's tests the same names.
    const entry = `#${++registered} ${name}`;
    note("registered", entry);
    it(name, { timeout: timeoutMs ?? DEFAULT_TIMEOUT_MS }, async () => {
      await fn();
      note("passed", entry);
    });
  };
  counted.skip = (name, fn) => {
    note("skipped", name);
    it.skip(name, fn);
  };
  return { describe, it: counted };
}
