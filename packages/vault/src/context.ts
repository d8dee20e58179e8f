import { ConfigError, type EncryptionContext, encodeContext } from "@envelope/core";
import { PROVIDER_ID } from "./key-ref.js";

/**
 * Which part of the caller's encryption context is sent to Vault as the transit `context`
 * of a derived key: all of it, none, or the listed field names. Non-derived keys never
 * get a context (Vault would ignore it anyway).
 */
export type ContextMapping = "all" | "none" | readonly string[];

export function checkMapping(mapping: unknown): ContextMapping {
  if (mapping === undefined) return "all";
  if (mapping === "all" || mapping === "none") return mapping;
  if (Array.isArray(mapping) && mapping.every((k) => typeof k === "string" && k.length > 0))
    return [...mapping];
  throw new ConfigError(
    "ENVELOPE_BAD_CONFIG",
    `${PROVIDER_ID}: kmsContext must be "all", "none" or an array of context field names.`,
    {
      details: { field: "kmsContext" },
    },
  );
}

/**
 * The base64 transit context for a derived key: the canonical Envelope encoding of the
 * selected fields. Always non-empty (an empty selection encodes to two zero bytes), so a
 * derived key works with mapping "none" too, with one fixed context.
 */
export function transitContext(mapping: ContextMapping, context: EncryptionContext): string {
  let selected: Record<string, string> = {};
  if (mapping === "all") selected = { ...context };
  else if (mapping !== "none") {
    for (const key of mapping) if (Object.hasOwn(context, key)) selected[key] = context[key]!;
  }
  return encodeContext(selected).toString("base64");
}
