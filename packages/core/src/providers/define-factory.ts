import { redactUri } from "../config/uri.js";
import { ConfigError } from "../errors.js";
import type { KeyProvider, ProviderFactory } from "./types.js";

type Env = Readonly<Record<string, string | undefined>>;

/**
 * How one URI query parameter is read: `string` as given, `integer` a positive integer,
 * `boolean` exactly `true` or `false`, `list` comma-separated non-empty items, and
 * `kmsContext` the shared context-mapping vocabulary (`all`, `none`, or `field1,field2`).
 */
export type UriOptionType = "string" | "integer" | "boolean" | "list" | "kmsContext";

/** Values the URI option types parse to. */
export type UriOptionValue = string | number | boolean | readonly string[];

/** Everything a provider package says about its options; the core does the checking. */
export interface ProviderFactoryDefinition {
  /** URI scheme and provider id, e.g. `aws-kms`. */
  readonly scheme: string;
  /** Fields a config object `{ provider: "<scheme>", … }` may carry. */
  readonly options: readonly string[];
  /**
   * Old option names still accepted for one minor version, mapped to the new name (a
   * dotted path such as `retry.timeoutMs` puts the value into a nested object). Using one
   * emits a DeprecationWarning (`ENVELOPE_DEPRECATED_OPTION`) once per process.
   */
  readonly deprecatedOptions?: Readonly<Record<string, string>>;
  /** Query parameters a key URI may carry, by name. None: URIs take no query string. */
  readonly uriOptions?: Readonly<Record<string, UriOptionType>>;
  /** Old query parameter names, mapped to the new name (warned about like options). */
  readonly deprecatedUriOptions?: Readonly<Record<string, string>>;
  /** A one-line example of the URI shape, for error messages. */
  readonly uriShape: string;
  /**
   * Turns a key URI into a config object (the same field names as `options`). `location`
   * is the part between `<scheme>://` and `?`; `query` holds the parsed URI options.
   */
  fromUri(
    location: string,
    query: Readonly<Record<string, UriOptionValue>>,
    env: Env,
  ): Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Builds the provider from a checked config object (without `provider`). */
  create(options: Record<string, unknown>, env: Env): KeyProvider | Promise<KeyProvider>;
}

/**
 * Builds a ProviderFactory that owns the parts every provider repeats: the option
 * schema, "unknown option" errors that list the known ones, deprecated aliases, and the
 * parsing of URI query options (typed, repeated and unknown ones refused, values never
 * echoed). The provider package supplies only `fromUri` (the key location) and `create`.
 *
 * @example
 * export const providerFactory = defineProviderFactory({
 *   scheme: "my-kms",
 *   options: ["keyName", "retry"],
 *   uriOptions: { timeoutMs: "integer" },
 *   uriShape: "my-kms://<key name>[?timeoutMs=5000]",
 *   fromUri: (keyName, q) => ({ keyName, ...(q.timeoutMs ? { retry: { timeoutMs: q.timeoutMs } } : {}) }),
 *   create: (options) => myKmsProvider(options as MyKmsOptions),
 * });
 */
export function defineProviderFactory(definition: ProviderFactoryDefinition): ProviderFactory {
  const { scheme } = definition;
  const prefix = `${scheme}://`;
  return {
    scheme,
    async fromUri(uri, env = process.env) {
      if (typeof uri !== "string" || !uri.startsWith(prefix)) {
        throw new ConfigError(
          "ENVELOPE_BAD_CONFIG",
          `${scheme}: "${redactUri(String(uri))}" is not a ${prefix} URI. Use ${definition.uriShape}.`,
        );
      }
      const rest = uri.slice(prefix.length);
      const q = rest.indexOf("?");
      const location = q < 0 ? rest : rest.slice(0, q);
      const query = q < 0 ? {} : parseUriQuery(definition, rest.slice(q + 1));
      const config = await definition.fromUri(location, query, env);
      return definition.create(normalizeOptions(definition, config), env);
    },
    async fromConfig(config, env = process.env) {
      const { provider: _scheme, ...rest } = config;
      return definition.create(normalizeOptions(definition, rest), env);
    },
  };
}

/** Renames deprecated options and refuses unknown ones; returns a fresh object. */
function normalizeOptions(
  definition: ProviderFactoryDefinition,
  config: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const deprecated = definition.deprecatedOptions ?? {};
  for (const [field, value] of Object.entries(config)) {
    if (Object.hasOwn(deprecated, field)) {
      const to = deprecated[field]!;
      warnDeprecated(definition.scheme, `option "${field}"`, `"${to}"`);
      if (value === undefined) continue;
      if (getPath(config, to) !== undefined) {
        throw new ConfigError(
          "ENVELOPE_BAD_CONFIG",
          `${definition.scheme}: give either "${to}" or its deprecated alias "${field}", not both.`,
          { details: { field } },
        );
      }
      setPath(out, to, value);
      continue;
    }
    if (!definition.options.includes(field)) {
      throw new ConfigError(
        "ENVELOPE_BAD_CONFIG",
        `${definition.scheme}: unknown option "${field}". Known options: ${definition.options.join(", ")}.`,
        { details: { field } },
      );
    }
    if (typeof value === "object" && value !== null && isPlainObject(out[field])) {
      out[field] = { ...(value as object), ...(out[field] as object) };
    } else {
      out[field] = value;
    }
  }
  return out;
}

/**
 * Parses the query string of a key URI (without `?`) against a definition's URI options:
 * deprecated names mapped (and warned about), unknown or repeated names refused, values
 * typed. The factory calls it; exported for providers that also parse URIs elsewhere.
 *
 * @example
 * parseUriQuery(definition, "kmsContext=table,column&timeoutMs=500");
 */
export function parseUriQuery(
  definition: Pick<
    ProviderFactoryDefinition,
    "scheme" | "uriOptions" | "deprecatedUriOptions" | "uriShape"
  >,
  query: string,
): Record<string, UriOptionValue> {
  const known = definition.uriOptions ?? {};
  const aliases = definition.deprecatedUriOptions ?? {};
  const names = Object.keys(known);
  const bad = (name: string, why: string) =>
    new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `${definition.scheme}: URI option "${name.slice(0, 40)}" ${why} ${names.length > 0 ? `Known URI options: ${names.join(", ")}.` : "This provider's URIs take no query string; pass options in a config object."} Shape: ${definition.uriShape}.`,
      { details: { field: name.slice(0, 40) } },
    );
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(query);
  } catch {
    throw bad("?", "could not be parsed.");
  }
  const out: Record<string, UriOptionValue> = {};
  for (const [given, raw] of params) {
    let name = given;
    if (Object.hasOwn(aliases, given)) {
      name = aliases[given]!;
      warnDeprecated(definition.scheme, `URI option "${given}"`, `"${name}"`);
    }
    if (!Object.hasOwn(known, name)) throw bad(given, "is unknown.");
    if (Object.hasOwn(out, name)) throw bad(given, "is given more than once.");
    out[name] = parseValue(known[name]!, raw, (why) => bad(given, why));
  }
  return out;
}

function parseValue(
  type: UriOptionType,
  raw: string,
  bad: (why: string) => ConfigError,
): UriOptionValue {
  switch (type) {
    case "string":
      return raw;
    case "integer": {
      if (!/^\d{1,15}$/.test(raw) || Number(raw) < 1) throw bad("must be a positive integer.");
      return Number(raw);
    }
    case "boolean":
      if (raw !== "true" && raw !== "false") throw bad("must be true or false.");
      return raw === "true";
    case "list":
    case "kmsContext": {
      if (type === "kmsContext" && (raw === "all" || raw === "none")) return raw;
      const items = raw
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item.length > 0);
      if (items.length === 0) {
        throw bad(
          type === "kmsContext"
            ? "must be all, none, or comma-separated context fields (table,column)."
            : "must list at least one comma-separated item.",
        );
      }
      return items;
    }
  }
}

const warned = new Set<string>();

function warnDeprecated(scheme: string, what: string, replacement: string): void {
  const key = `${scheme}:${what}`;
  if (warned.has(key)) return;
  warned.add(key);
  process.emitWarning(
    `${scheme}: ${what} is deprecated; use ${replacement}. The old name is accepted until the next minor version.`,
    { type: "DeprecationWarning", code: "ENVELOPE_DEPRECATED_OPTION" },
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function getPath(object: Readonly<Record<string, unknown>>, path: string): unknown {
  let current: unknown = object;
  for (const part of path.split(".")) {
    if (!isPlainObject(current)) return undefined;
    current = current[part];
  }
  return current;
}

function setPath(object: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  let current = object;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(current[part])) current[part] = {};
    else current[part] = { ...(current[part] as object) };
    current = current[part] as Record<string, unknown>;
  }
  current[parts.at(-1)!] = value;
}
