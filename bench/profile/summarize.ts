// Summarises a V8 .cpuprofile (node --cpu-prof) into self time by function, for
// docs/PERFORMANCE.md. Usage: node --import tsx bench/profile/summarize.ts <dir> [rows]
// (the largest profile in <dir>: tsx's loader thread writes a small second one).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
const [dir, rowsArg] = process.argv.slice(2);
const files = statSync(dir!).isDirectory() ? readdirSync(dir!).map((f) => join(dir!, f)) : [dir!];
const file = files.sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
const profile = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[] };
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
for (const id of profile.samples) {
  const n = byId.get(id)!;
  const url = n.callFrame.url
    .replace(/^.*\/(packages|node_modules)\//, "")
    .replace(/^file:\/\//, "");
  const name =
    `${n.callFrame.functionName || "(anonymous)"} ${url ? `(${url.split("/").slice(-2).join("/")})` : ""}`.trim();
  self.set(name, (self.get(name) ?? 0) + 1);
}
// Idle samples are time the loop waited, not CPU it spent: left out of the shares.
const idle = self.get("(idle)") ?? 0;
self.delete("(idle)");
const total = profile.samples.length - idle;
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(rowsArg ?? 25));
console.log(`| function (self time) | % of samples |\n| --- | ---: |`);
for (const [name, count] of rows)
  console.log(`| ${name} | ${((count / total) * 100).toFixed(1)} |`);
console.log(`\n${total} samples (${idle} idle left out)`);
