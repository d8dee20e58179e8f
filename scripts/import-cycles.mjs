#!/usr/bin/env node
// Import cycles in a package's src/, type-only imports included (a type cycle is still a
// design cycle). Two views: between files (what madge reports) and between layers, where
// a layer is a top-level folder (format/, crypto/, cache/, …) or a root file (errors.ts).
// Exits 1 when it finds a file-level cycle, or a layer cycle not listed in --allow.
//
//   node scripts/import-cycles.mjs packages/core/src [--allow providers:crypto,…]
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(process.argv[2] ?? "packages/core/src");
const allowArg = process.argv.indexOf("--allow");
const allowed = new Set(allowArg > 0 ? (process.argv[allowArg + 1] ?? "").split(",") : []);

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path);
    return name.endsWith(".ts") && !name.endsWith(".d.ts") ? [path] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["'](\.[^"']+)["']/g;
const graph = new Map();
for (const file of files(root)) {
  const source = readFileSync(file, "utf8");
  const targets = new Set();
  for (const [, spec] of source.matchAll(IMPORT)) {
    targets.add(resolve(dirname(file), spec.replace(/\.js$/, ".ts")));
  }
  graph.set(file, targets);
}

/** Strongly connected components with more than one node (Tarjan). */
function cycles(edges) {
  let index = 0;
  const stack = [];
  const meta = new Map();
  const out = [];
  const visit = (v) => {
    meta.set(v, { index, low: index, onStack: true });
    index++;
    stack.push(v);
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue;
      if (!meta.has(w)) {
        visit(w);
        meta.get(v).low = Math.min(meta.get(v).low, meta.get(w).low);
      } else if (meta.get(w).onStack) {
        meta.get(v).low = Math.min(meta.get(v).low, meta.get(w).index);
      }
    }
    if (meta.get(v).low === meta.get(v).index) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        meta.get(w).onStack = false;
        component.push(w);
      } while (w !== v);
      if (component.length > 1) out.push(component.sort());
    }
  };
  for (const v of edges.keys()) if (!meta.has(v)) visit(v);
  return out;
}

const layerOf = (file) => relative(root, file).split("/")[0].replace(/\.ts$/, "");
const layers = new Map();
const why = new Map();
for (const [from, targets] of graph) {
  for (const to of targets) {
    const [a, b] = [layerOf(from), layerOf(to)];
    if (a === b) continue;
    if (!layers.has(a)) layers.set(a, new Set());
    if (!layers.has(b)) layers.set(b, new Set());
    layers.get(a).add(b);
    why.set(`${a}>${b}`, `${relative(root, from)} -> ${relative(root, to)}`);
  }
}

const fileCycles = cycles(graph);
const layerCycles = cycles(layers);
console.log(`${graph.size} files in ${relative(process.cwd(), root) || "."}`);
console.log(`file cycles: ${fileCycles.length}`);
for (const c of fileCycles) console.log(`  ${c.map((f) => relative(root, f)).join(" <-> ")}`);
console.log(`layer cycles: ${layerCycles.length}`);
let failed = fileCycles.length > 0;
for (const c of layerCycles) {
  const key = c.join(":");
  const ok = allowed.has(key);
  if (!ok) failed = true;
  console.log(`  ${c.join(" <-> ")}${ok ? " (allowed)" : ""}`);
  for (const a of c) {
    for (const b of c) {
      if (why.has(`${a}>${b}`)) console.log(`      ${why.get(`${a}>${b}`)}`);
    }
  }
}
process.exit(failed ? 1 : 0);
