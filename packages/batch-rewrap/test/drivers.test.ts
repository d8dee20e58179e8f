import { ConfigError } from "@envelope/core";
import { describe, expect, it } from "vitest";
import { loadDriver } from "../src/adapters/driver.js";

// pg, mysql2 and @electric-sql/pglite are optional peer dependencies: a user who has not
// installed the one their database URL needs gets a typed error naming it.
describe("loadDriver", () => {
  it("a package that is not installed: ENVELOPE_PROVIDER_NOT_INSTALLED naming it and the install command", async () => {
    const pkg = "envelope-test-driver-that-is-not-installed";
    const error = await loadDriver(pkg, "A test:// database", () => import(pkg)).catch((e) => e);
    expect(ConfigError.isInstance(error)).toBe(true);
    expect(error.code).toBe("ENVELOPE_PROVIDER_NOT_INSTALLED");
    expect(error.message).toContain(`npm install ${pkg}`);
    expect(error.message).toContain("A test:// database needs");
    expect(error.details).toEqual({ package: pkg });
  });

  it("a subpath import of a missing package (mysql2/promise) names the package", async () => {
    const pkg = "envelope-test-missing-driver";
    const error = await loadDriver(pkg, "A test:// database", () => import(`${pkg}/promise`)).catch(
      (e) => e,
    );
    expect(error.code).toBe("ENVELOPE_PROVIDER_NOT_INSTALLED");
    expect(error.message).toContain(`npm install ${pkg}`);
  });

  it("any other failure while loading is passed on unchanged", async () => {
    const boom = new Error("driver failed to initialise");
    const error = await loadDriver("pg", "A postgres:// database", () =>
      Promise.reject(boom),
    ).catch((e) => e);
    expect(error).toBe(boom);
  });

  it("an installed driver loads", async () => {
    const pg = await loadDriver("pg", "A postgres:// database", () => import("pg"));
    expect(typeof (pg.default?.Pool ?? (pg as { Pool?: unknown }).Pool)).toBe("function");
  });
});
