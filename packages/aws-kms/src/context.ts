import {
  ConfigError,
  type EncryptionContext,
  encodeContext,
  READINESS_CONTEXT,
} from "@envelope/core";

/**
 * Which part of the caller's context becomes the KMS EncryptionContext: `"all"` (the
 * default), `"none"`, or the listed keys (those present; missing keys are left out).
 */
export type KmsContextMapping = "all" | "none" | readonly string[];

/** Checks a mapping from options or config; a ConfigError names the field on failure. */
export function checkMapping(mapping: unknown): KmsContextMapping {
  if (mapping === undefined) return "all";
  if (mapping === "all" || mapping === "none") return mapping;
  if (
    Array.isArray(mapping) &&
    mapping.length > 0 &&
    mapping.every((k) => typeof k === "string" && k.length > 0)
  ) {
    return Object.freeze([...mapping]);
  }
  throw new ConfigError(
    "ENVELOPE_BAD_CONFIG",
    'aws-kms: kmsContext must be "all", "none" or a non-empty array of context keys, e.g. ["table", "column"].',
    { details: { field: "kmsContext" } },
  );
}

// envelope.check()'s canary context. A list mapping passes it whole: the canary holds no
// application data, and a key policy can then allow the readiness probe by that pair alone
// (README, Permissions) whatever the list names. Only the canary's exact context, so that
// an application context that happens to use the same key maps as it always did (values
// sealed under it before must still decrypt).
const READINESS_ENTRIES = Object.entries(READINESS_CONTEXT);
const isReadinessCanary = (context: EncryptionContext) =>
  Object.keys(context).length === READINESS_ENTRIES.length &&
  READINESS_ENTRIES.every(([key, value]) => context[key] === value);

/**
 * The EncryptionContext sent to KMS, or undefined when it would be empty (KMS treats an
 * absent and an empty context alike). `envelope.check()`'s canary context is passed whole
 * under a list mapping too.
 *
 * @example
 * mapContext({ table: "users", id: "42" }, ["table"]) // { table: "users" }
 */
export function mapContext(
  context: EncryptionContext,
  mapping: KmsContextMapping,
): Record<string, string> | undefined {
  if (mapping === "none") return undefined;
  const out: Record<string, string> = {};
  const keys = mapping === "all" || isReadinessCanary(context) ? Object.keys(context) : mapping;
  for (const key of keys) {
    const value = context[key];
    if (typeof value === "string") out[key] = value;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** Canonical string of the mapped context: part of the unwrap-cache key. */
export function mappedContextKey(context: EncryptionContext, mapping: KmsContextMapping): string {
  const mapped = mapContext(context, mapping);
  return mapped ? encodeContext(mapped).toString("base64") : "";
}
