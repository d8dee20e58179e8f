import { ConfigError } from "@envelope/core";
import type { Row } from "../adapters/types.js";
import type { Runtime } from "./runtime.js";

/** The encryption context of one value, from the job's context builder (checked to be an object). */
export function buildContext(rt: Runtime, row: Row, column: string) {
  const context = rt.context(row, column);
  if (typeof context !== "object" || context === null) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      "The context builder must return an object of strings.",
      { details: { column } },
    );
  }
  return context;
}
