import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  defineFamily,
  type Family,
  loadFamily,
  parseDecryptVector,
  VECTORS_DIR,
} from "./vectors/harness.js";
import { padded } from "./vectors/padded/family.js";
import { signed } from "./vectors/signed/family.js";
import { stream } from "./vectors/stream/family.js";
import { suite3 } from "./vectors/suite3/family.js";
import { v1 } from "./vectors/v1/family.js";

/** Registers one family's tests on its loaded vectors; returns its folder. */
function runFamily<V>(family: Family<V>): string {
  describe(`${family.folder}: ${family.title}`, () => {
    family.tests(loadFamily(family));
  });
  return family.folder;
}

/**
 * The one runner for every vector family in ./vectors/ (see vectors/README.md). A family
 * is a folder (vector files, their generator, and a family.ts saying how to run them) plus
 * one line here.
 */
const FOLDERS = [
  runFamily(v1),
  runFamily(padded),
  runFamily(signed),
  runFamily(stream),
  runFamily(suite3),
];

describe("the vector runner", () => {
  it("runs every folder in vectors/, each once", () => {
    const folders = readdirSync(VECTORS_DIR)
      .filter((name) => statSync(join(VECTORS_DIR, name)).isDirectory())
      .sort();
    expect([...FOLDERS].sort()).toEqual(folders);
  });

  const probe = defineFamily({
    folder: "probe",
    title: "probe",
    files: /^pos-.*\.json$/,
    parse: parseDecryptVector,
    tests() {},
  });
  const made: string[] = [];
  afterAll(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });
  const root = () => {
    const dir = mkdtempSync(join(tmpdir(), "envelope-vectors-"));
    made.push(dir);
    mkdirSync(join(dir, "probe"));
    return dir;
  };

  it("fails on a family folder with no vector file", () => {
    const dir = root();
    writeFileSync(join(dir, "probe", "generate.ts"), "");
    expect(() => loadFamily(probe, dir)).toThrow(/no file matching/);
  });

  it("fails on a vector file that is not JSON, or not a vector", () => {
    const dir = root();
    writeFileSync(join(dir, "probe", "pos-01-a.json"), "{ not json");
    expect(() => loadFamily(probe, dir)).toThrow(/pos-01-a\.json is not valid JSON/);
    writeFileSync(join(dir, "probe", "pos-01-a.json"), JSON.stringify({ id: "pos-02-b" }));
    expect(() => loadFamily(probe, dir)).toThrow(/does not match the file name/);
  });
});
