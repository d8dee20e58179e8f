import { ConfigError, DecryptionError, FormatError } from "@envelope/core";
import { asText } from "../errors.js";
import { tag } from "../tag.js";
import type { AnyLegacyDecoder, AsyncLegacyDecoder, LegacyDecoder, LegacyRow } from "../types.js";

/** The default version prefix: `v2:<inner value>`. */
export const DEFAULT_VERSION_PREFIX = "^v(\\d+):";

export interface VersionedOptions<D extends AnyLegacyDecoder> {
  /** One decoder per version, each with that version's legacy key (any legacy cipher). */
  versions: Readonly<Record<string, D>>;
  /**
   * Where the version is:
   * - `{ prefix }` (default `{ prefix: "^v(\\d+):" }`): a regular expression matched at the
   *   start of the value whose first capture group is the version; the rest of the value
   *   is the inner legacy value;
   * - `{ column }`: a column of the same row holds the version and the value is the inner
   *   legacy value (the engine reads that column too).
   */
  tag?: { prefix: string | RegExp } | { column: string };
}

/** Longest version string accepted (a value chooses it; an attacker may write the table). */
const MAX_VERSION_CHARS = 64;

/**
 * Key-versioned values: a version stored with each value (`v2:…`, or a version column)
 * and one legacy key per version. Each version's decoder is any legacy decoder (GCM JSON,
 * CBC `iv:ct`, Fernet, …), so a key rotation that also changed the cipher is covered.
 *
 * @example
 * const from = versionedDecoder({
 *   versions: { "1": cbcDecoder(keyV1), "2": gcmJsonDecoder(keyV2) },
 *   tag: { prefix: "^v(\\d+):" },
 * });
 */
export function versionedDecoder(options: VersionedOptions<LegacyDecoder>): LegacyDecoder;
export function versionedDecoder(
  options: VersionedOptions<AnyLegacyDecoder>,
): LegacyDecoder | AsyncLegacyDecoder;
export function versionedDecoder(
  options: VersionedOptions<AnyLegacyDecoder>,
): LegacyDecoder | AsyncLegacyDecoder {
  const versions = new Map(Object.entries(options.versions ?? {}));
  if (versions.size === 0) {
    throw new ConfigError("ENVELOPE_BAD_CONFIG", "versioned: give at least one version's key.", {
      details: { field: "versions" },
    });
  }
  const where = options.tag ?? { prefix: DEFAULT_VERSION_PREFIX };
  const split = "column" in where ? byColumn(where.column) : byPrefix(where.prefix);
  const decoderFor = (version: string): AnyLegacyDecoder => {
    const d = versions.get(version);
    if (!d) {
      throw new DecryptionError(
        "ENVELOPE_NO_MATCHING_KEY",
        `Legacy value is tagged with key version "${version.slice(0, MAX_VERSION_CHARS)}", for which no legacy key is configured. Add that version's key (known: ${[...versions.keys()].join(", ")}).`,
        { details: { field: "legacyVersion" } },
      );
    }
    return d;
  };
  const all = [...versions.values()];
  const base = {
    format: "versioned" as const,
    ...("column" in where ? { columns: [where.column] } : {}),
    matches: (value: string | Buffer) =>
      "column" in where ? all.some((d) => d.matches(value)) : split(value) !== undefined,
  };
  const decode = (value: string | Buffer, row?: LegacyRow) => {
    const parts = split(value, row);
    if (!parts) {
      throw new FormatError(
        "ENVELOPE_BAD_FORMAT",
        "column" in where
          ? `Value is not in the legacy versioned format: the row's version column "${where.column}" is empty.`
          : "Value is not in the legacy versioned format: no version prefix.",
        { details: { field: "column" in where ? "legacyVersion" : "legacyValue" } },
      );
    }
    return decoderFor(parts.version).decode(parts.inner);
  };
  if (all.some((d) => "async" in d && d.async))
    return tag({ ...base, async: true as const, decode: async (v, r) => decode(v, r) });
  return tag({ ...base, decode: (v, r) => decode(v, r) as Buffer });
}

type Split = (
  value: string | Buffer,
  row?: LegacyRow,
) => { version: string; inner: string | Buffer } | undefined;

function byPrefix(pattern: string | RegExp): Split {
  let re: RegExp;
  try {
    const source = typeof pattern === "string" ? pattern : pattern.source;
    re = new RegExp(source.startsWith("^") ? source : `^(?:${source})`);
  } catch (cause) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "versioned: prefix is not a valid regular expression.",
      {
        cause,
        details: { field: "prefix" },
      },
    );
  }
  if (new RegExp(`${re.source}|`).exec("")!.length < 2) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      'versioned: prefix needs one capture group for the version, e.g. "^v(\\\\d+):".',
      { details: { field: "prefix" } },
    );
  }
  return (value) => {
    const text = asText(value);
    const m = re.exec(text.slice(0, 256));
    if (!m || m[1] === undefined || m[1].length > MAX_VERSION_CHARS) return undefined;
    return { version: m[1], inner: text.slice(m[0].length) };
  };
}

function byColumn(column: string): Split {
  return (value, row) => {
    if (!row || !(column in row)) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `versioned: the row's version column "${column}" was not read; pass the row to decode().`,
        { details: { field: "column" } },
      );
    }
    const v = row[column];
    if (v === null || v === undefined) return undefined;
    return { version: String(v).slice(0, MAX_VERSION_CHARS + 1), inner: value };
  };
}
