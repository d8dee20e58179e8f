import { describe, expect, it } from "vitest";
import { poolSizeFor } from "../src/db/open-db.js";

// Each --workers loop keeps a connection for its range claim (batch-rewrap refuses a pool
// with no more connections than workers): the CLI opens enough for them.
describe("the CLI sizes its pool from --workers", () => {
  it("2 × workers + 1, at least 8; an invalid count leaves the default (refused later)", () => {
    expect(poolSizeFor(undefined)).toBe(8);
    expect(poolSizeFor("1")).toBe(8);
    expect(poolSizeFor("8")).toBe(17);
    expect(poolSizeFor("x")).toBe(8);
    expect(poolSizeFor("0")).toBe(8);
  });
});
