// Reads the tally the test run wrote (tally.mjs) and fails unless every registered test
// passed and at least `minimum` did. Usage: node check-tally.mjs <tally file> <minimum> <label>
import { existsSync, readFileSync } from "node:fs";

const [file, minimumText, label = "runtime tests"] = process.argv.slice(2);
const minimum = Number(minimumText);
if (!file || !Number.isInteger(minimum) || minimum < 1) {
  console.error("usage: node check-tally.mjs <tally file> <minimum> <label>");
  process.exit(2);
}

const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
const names = (kind) =>
  lines.filter((l) => l.startsWith(`${kind}\t`)).map((l) => l.slice(kind.length + 1));
const registered = names("registered");
const passed = new Set(names("passed"));
const skipped = names("skipped");
const missing = [...new Set(registered)].filter((n) => !passed.has(n));

const problems = [];
if (passed.size < minimum) problems.push(`${passed.size} tests passed, at least ${minimum} must`);
if (missing.length > 0) {
  problems.push(`${missing.length} registered tests did not pass: ${missing.join("; ")}`);
}
const summary = `${label}: ${passed.size} of ${registered.length} tests passed, ${skipped.length} not applicable`;
if (problems.length > 0) {
  console.error(`${summary}\n  FAILED: ${problems.join("\n  FAILED: ")}`);
  process.exit(1);
}
console.log(summary);
