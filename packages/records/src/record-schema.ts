import { ConfigError } from "@envelope/core";
import { padRule } from "@envelope/core/internal";
import { type BlindIndexSpec, DEFAULT_BLIND_INDEX_BITS, validBits } from "./blind-index.js";
import { didYouMean, nameProblem, shown } from "./names.js";
import { NORMALIZER_NAMES } from "./normalize.js";
import type { RecordCipherOptions, RecordSchema } from "./record-types.js";

/** Checks a record schema and the cipher options that depend on it; a frozen copy. */
export function checkSchema<F extends string>(
  schema: RecordSchema<F>,
  options: RecordCipherOptions<"text" | "binary">,
): Readonly<RecordSchema<F>> {
  const bad = (field: string, problem: string) =>
    new ConfigError("ENVELOPE_BAD_CONFIG", `Record schema: ${field} ${problem}.`, {
      details: { field },
    });
  if (!schema || typeof schema.table !== "string" || schema.table.length === 0) {
    throw bad("table", "must be the table name (a non-empty string)");
  }
  // A misspelt key would otherwise be ignored: `blindIndex:` for `blindIndexes:` leaves a
  // field unindexed, `ouput:` leaves the output as text.
  unknownKeys(schema, SCHEMA_KEYS, OPTION_KEYS, "the record schema", "an option (third argument)");
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", "createRecordCipher: options must be an object.", {
      details: { field: "options" },
    });
  }
  unknownKeys(
    options ?? {},
    OPTION_KEYS,
    SCHEMA_KEYS,
    "the options",
    "a schema key (second argument)",
  );
  // Names go into contexts, blind index key derivation and SQL: one limit for all of them.
  const checkName = (field: string, name: unknown) => {
    const problem = nameProblem(name);
    if (problem) throw bad(field, problem);
  };
  checkName("table", schema.table);
  const idField = schema.idField ?? "id";
  if (typeof idField !== "string" || idField.length === 0) {
    throw bad("idField", "must be a non-empty string");
  }
  checkName("idField", idField);
  if (!Array.isArray(schema.encrypted) || schema.encrypted.length === 0) {
    throw bad("encrypted", 'must list at least one field, e.g. ["email", "phone"]');
  }
  const seen = new Set<string>();
  for (const f of schema.encrypted) {
    if (typeof f !== "string" || f.length === 0) throw bad("encrypted", "holds a non-string name");
    checkName(`encrypted field "${shown(f)}"`, f);
    if (f === idField) throw bad("encrypted", `cannot include the id field "${idField}"`);
    if (seen.has(f)) throw bad("encrypted", `lists "${f}" twice`);
    seen.add(f);
  }
  const indexes = Object.entries(schema.blindIndexes ?? {}) as [string, BlindIndexSpec][];
  for (const [field, spec] of indexes) {
    if (!seen.has(field)) {
      throw bad(`blindIndexes.${shown(field)}`, "names a field that is not encrypted");
    }
    checkSpec(field, spec);
    const column = spec?.column ?? `${field}_idx`;
    checkName(`blindIndexes.${field}.column`, column);
    if (seen.has(column) || column === idField) {
      throw bad(`blindIndexes.${field}.column`, `"${column}" is already a field of the record`);
    }
  }
  const pads = schema.pad ?? {};
  if (typeof pads !== "object" || pads === null || Array.isArray(pads)) {
    throw bad(
      "pad",
      'must map encrypted fields to a padding option, e.g. { email: 32, ssn: "pii" }',
    );
  }
  for (const [field, option] of Object.entries(pads)) {
    if (!seen.has(field)) throw bad(`pad.${shown(field)}`, "names a field that is not encrypted");
    padRule(option, `pad.${field}`);
  }
  if (indexes.length > 0 && !options.blindIndex) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "The schema declares blind indexes: pass options.blindIndex = createBlindIndexer({ keys }).",
      { details: { field: "blindIndex" } },
    );
  }
  if (options.transitional !== undefined && typeof options.transitional?.open !== "function") {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "options.transitional must be made by transitionalRead({ decoders, onLegacyRead }).",
      { details: { field: "transitional" } },
    );
  }
  const asData = options.allowEnvelopePlaintext;
  if (asData !== undefined && typeof asData !== "boolean") {
    if (!Array.isArray(asData) || asData.some((f) => typeof f !== "string" || !seen.has(f))) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        "options.allowEnvelopePlaintext must be true, false, or a list of encrypted fields whose plaintext may be an Envelope value.",
        { details: { field: "allowEnvelopePlaintext" } },
      );
    }
  }
  if (options.output !== undefined && options.output !== "text" && options.output !== "binary") {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", 'output must be "text" or "binary".', {
      details: { field: "output" },
    });
  }
  return Object.freeze({
    ...schema,
    encrypted: Object.freeze([...schema.encrypted]),
    ...(schema.pad ? { pad: Object.freeze({ ...schema.pad }) } : {}),
  });
}

const SCHEMA_KEYS = ["table", "idField", "encrypted", "blindIndexes", "pad"] as const;
const OPTION_KEYS = [
  "blindIndex",
  "output",
  "transitional",
  "concurrency",
  "allowEnvelopePlaintext",
] as const;
const SPEC_KEYS = ["normalize", "bits", "column"] as const;

/** Refuses a key not in `known` (undefined values are ignored), with a "did you mean". */
function unknownKeys(
  given: object,
  known: readonly string[],
  other: readonly string[],
  where: string,
  otherIs: string,
): void {
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined || known.includes(key)) continue;
    const hint = other.includes(key) ? ` "${key}" is ${otherIs}.` : "";
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `createRecordCipher: unknown key "${shown(key)}" in ${where}.${didYouMean(key, known)}${hint} Known keys: ${known.join(", ")}.`,
      { details: { field: shown(key) } },
    );
  }
}

/** Checks a blind index spec when the cipher is created, not at the first seal. */
function checkSpec(field: string, spec: unknown): void {
  const at = `blindIndexes.${shown(field)}`;
  const bad = (name: string, problem: string) =>
    new ConfigError("ENVELOPE_BAD_CONFIG", `Record schema: ${name} ${problem}.`, {
      details: { field: name },
    });
  if (spec === undefined) return;
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw bad(at, 'must be an object, e.g. { normalize: "email" } ({} for the defaults)');
  }
  for (const [key, value] of Object.entries(spec)) {
    if (value === undefined || (SPEC_KEYS as readonly string[]).includes(key)) continue;
    throw bad(
      `${at}.${shown(key)}`,
      `is not a blind index option.${didYouMean(key, SPEC_KEYS)} Known: ${SPEC_KEYS.join(", ")}`,
    );
  }
  const { normalize, bits } = spec as BlindIndexSpec;
  if (
    normalize !== undefined &&
    typeof normalize !== "function" &&
    !(typeof normalize === "string" && NORMALIZER_NAMES.includes(normalize))
  ) {
    const hint = typeof normalize === "string" ? didYouMean(normalize, NORMALIZER_NAMES) : "";
    throw bad(
      `${at}.normalize`,
      `must be "email", "phone", "trim-lower" or a function (got ${typeof normalize === "string" ? `"${shown(normalize)}"` : typeof normalize}).${hint}`,
    );
  }
  if (!validBits(bits)) {
    throw bad(
      `${at}.bits`,
      `must be a multiple of 8 from 8 to 256 (got ${shown(bits)}); the default is ${DEFAULT_BLIND_INDEX_BITS}`,
    );
  }
}
