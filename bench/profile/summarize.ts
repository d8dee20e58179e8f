// Summarises a V8 .cpuprofile (node --cpu-prof) into self time by function, for
// docs/PERFORMANCE.md. Usage: node --import tsx bench/profile/summarize.ts <dir> [rows]
// (the largest profile in <dir>: tsx's loader thread writes a small second one).
// With "categories" as [rows], self time is grouped by what the code does instead.
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

// Self time grouped by job; the first matching rule wins. Native frames carry no url.
const CATEGORIES: [string, RegExp][] = [
  [
    "AES-GCM (node:crypto cipher: create, setAAD, update, final)",
    /crypto\/cipher|^(initiv|CipherBase|update|final|setAAD|setAuthTag|getAuthTag) ?$/,
  ],
  ["HKDF / HMAC (message key + commitment)", /crypto\/hash|kdf\.ts|^(Hmac|init|digest) ?$/],
  ["garbage collector", /garbage collector/],
  ["context snapshot + canonical encoding", /format\/context\.ts|context-memo/],
  ["parsing (decode, reader, AAD)", /decode\.ts|parse\.ts|reader\.ts|aad\.ts/],
  [
    "unwrap cache + keyring lookups (LRU, message keys, cache keys)",
    /cache\/|warm-path|cache-keys|candidates|lru-cache|index\.min\.js|seal\.ts|^latin1/,
  ],
  [
    "Buffer allocation and views",
    /node:buffer|internal\/buffer|^(FastBuffer|createUnsafeBuffer|allocate|subarray|slice|latin1Slice|latin1Write|base64Slice|compare|from)/,
  ],
  [
    "client, keyring, async glue, loop",
    /client\.ts|key-ring|entry-key|audit\.ts|loop\.ts|profile\/|\(program\)|processTicksAndRejections|runMicrotasks/,
  ],
];
if (rowsArg === "categories") {
  const groups = new Map<string, number>();
  for (const [name, count] of self) {
    const hit = CATEGORIES.find(([, re]) => re.test(name));
    const group = hit ? hit[0] : "other";
    groups.set(group, (groups.get(group) ?? 0) + count);
  }
  console.log(`| where (self time) | % of CPU samples |\n| --- | ---: |`);
  for (const [group, count] of [...groups].sort((a, b) => b[1] - a[1])) {
    console.log(`| ${group} | ${((count / total) * 100).toFixed(1)} |`);
  }
  console.log(`\n${total} samples`);
  process.exit(0);
}
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(rowsArg ?? 25));
console.log(`| function (self time) | % of samples |\n| --- | ---: |`);
for (const [name, count] of rows)
  console.log(`| ${name} | ${((count / total) * 100).toFixed(1)} |`);
console.log(`\n${total} samples (${idle} idle left out)`);
