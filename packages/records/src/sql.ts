import { ConfigError } from "@envelope/core";
import { MAX_NAME_BYTES, nameProblem, shown } from "./names.js";

/**
 * Quotes an identifier (optionally schema-qualified: `app.users`) for PostgreSQL. Names
 * come from the schema and from record keys; values always travel as parameters. A name
 * is at most 255 bytes (UTF-8), non-empty, without NUL.
 */
export function quoteIdent(name: string): string {
  const problem =
    typeof name === "string" && name.includes("\0") ? "contains NUL" : nameProblem(name);
  if (problem) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `Not a usable SQL identifier: "${shown(name)}" ${problem}. Table and column names are at most ${MAX_NAME_BYTES} bytes, non-empty, without NUL.`,
      { details: { field: "identifier" } },
    );
  }
  return name
    .split(".")
    .map((part) => `"${part.replaceAll('"', '""')}"`)
    .join(".");
}
