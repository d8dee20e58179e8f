import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError } from "@envelope/core";

/** What `new Worker(entry, { eval })` starts a rewrap thread with. */
export interface ThreadEntry {
  entry: URL | string;
  eval: boolean;
}

let cached: ThreadEntry | undefined;

/**
 * Where the rewrap thread's entry is, and how to start it. Built package: `rewrap-thread.js`
 * beside this module's bundle in dist/ (an ES module, whichever build imported us). From the
 * TypeScript sources (tests, benches): `rewrap-thread.ts` beside this file, loaded after
 * tsx's hooks are registered in the thread (on Node 20 a worker's `--import tsx` does not
 * apply to its own entry).
 */
export function threadEntry(): ThreadEntry {
  if (cached) return cached;
  const here = import.meta.url;
  if (!/\.[cm]?ts$/.test(new URL(here).pathname)) {
    cached = { entry: new URL("./rewrap-thread.js", here), eval: false };
    return cached;
  }
  let api: string;
  try {
    const pkg = createRequire(here).resolve("tsx/package.json");
    const { exports } = JSON.parse(readFileSync(pkg, "utf8"));
    api = pathToFileURL(join(dirname(pkg), exports["./esm/api"].import.default)).href;
  } catch (cause) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "Rewrap threads started from the TypeScript sources need tsx (a dev dependency) to load their entry; install it, use the built package, or leave threads out.",
      { cause, details: { field: "threads" } },
    );
  }
  const entry = new URL("./rewrap-thread.ts", here).href;
  const code = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  cached = { entry: code, eval: true };
  return cached;
}
