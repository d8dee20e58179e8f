import { describe, expect, it } from "vitest";
import { selectDatabases } from "./databases.js";

const objects = [{ name: "postgresql" }, { name: "mariadb" }] as const;
const tuples = [
  ["PostgreSQL", "postgres://x"],
  ["MariaDB", "mysql://x"],
  ["PGlite", "pglite://x"],
] as const;

describe("selectDatabases (ENVELOPE_TEST_DATABASES)", () => {
  it("keeps every case when the variable is unset or empty", () => {
    expect(selectDatabases(objects, {})).toEqual(objects);
    expect(selectDatabases(tuples, { ENVELOPE_TEST_DATABASES: "" })).toEqual(tuples);
  });

  it("keeps the named ones, by name or by a tuple's first label, in any case", () => {
    expect(selectDatabases(objects, { ENVELOPE_TEST_DATABASES: "postgresql" })).toEqual([
      { name: "postgresql" },
    ]);
    expect(selectDatabases(tuples, { ENVELOPE_TEST_DATABASES: " PostgreSQL , pglite" })).toEqual([
      tuples[0],
      tuples[2],
    ]);
  });

  it("refuses an unknown name instead of running nothing", () => {
    expect(() => selectDatabases(tuples, { ENVELOPE_TEST_DATABASES: "postgres" })).toThrow(
      /ENVELOPE_TEST_DATABASES: unknown postgres; use postgresql, mariadb, pglite/,
    );
  });
});
