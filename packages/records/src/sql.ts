import { ConfigError } from "@envelope/core";

/**
 * Quotes an identifier (optionally schema-qualified: `app.users`) for PostgreSQL. Names
 * come from the schema and from record keys; values always travel as parameters.
 */
export function quoteIdent(name: string): string {
  if (typeof name !== "string" || name.length === 0 || name.length > 200 || name.includes("\0")) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `Not a usable SQL identifier: ${JSON.stringify(String(name).slice(0, 60))}.`,
    );
  }
  return name
    .split(".")
    .map((part) => `"${part.replaceAll('"', '""')}"`)
    .join(".");
}
