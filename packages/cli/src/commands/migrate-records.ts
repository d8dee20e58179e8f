import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { MigrateRecordsOptions } from "@envelope/batch-rewrap";
import { ConfigError } from "@envelope/core";
import { importTs, loadTsx } from "../config/typescript-config.js";

const bad = (message: string, cause?: unknown) =>
  new ConfigError("ENVELOPE_BAD_CONFIG", message, {
    ...(cause ? { cause } : {}),
    details: { field: "recordsConfig" },
  });

/**
 * `--records-config <module>`: the app's `@envelope/records` field config for `migrate`. The
 * module (.mjs, .js or .ts) exports `records` (or a default export) =
 * `{ schema, blindIndex?, valueType?, pad?, fieldOfColumn? }`: the very schema and blind
 * indexer the app gives `createRecordCipher`, so migrated values carry the same padding and
 * blind indexes as the app's writes. `fieldOfColumn` maps each database column whose name is
 * not its record property's (the app's ORM maps `ssn` to `ssn_enc`) to that property, so
 * the value is sealed under the context the app opens it with. Nothing of it is printed
 * (the blind indexer holds its keys).
 *
 * @example
 * // migrate-records.mjs
 * import { blindIndexKeysFrom, createBlindIndexer } from "@envelope/records";
 * import { usersSchema } from "./src/users-schema.js";
 * export const records = {
 *   schema: usersSchema,
 *   blindIndex: createBlindIndexer({ keys: blindIndexKeysFrom({ env: "USERS_INDEX_KEYS" }) }),
 *   // Only where the ORM stores a property under another column name:
 *   fieldOfColumn: { ssn_enc: "ssn", ssn_bidx: "ssn_idx" },
 * };
 */
export async function loadRecordsConfig(path: string, cwd: string): Promise<MigrateRecordsOptions> {
  const file = resolve(cwd, path);
  if (/\.json$/i.test(file)) {
    throw bad(
      `--records-config ${path}: give a JavaScript or TypeScript module (.mjs, .js, .ts) that exports { schema, blindIndex }; a blind indexer cannot be written in JSON.`,
    );
  }
  const ts = /\.[cm]?ts$/.test(file);
  const tsImport = ts ? await loadTsx(file) : undefined;
  let mod: Record<string, unknown>;
  try {
    mod = (
      tsImport ? await importTs(file, tsImport) : await import(pathToFileURL(file).href)
    ) as Record<string, unknown>;
  } catch (cause) {
    throw bad(
      `Cannot load --records-config ${path}: ${String((cause as Error)?.message ?? cause).slice(0, 300)}`,
      cause,
    );
  }
  const inner = mod.default as Record<string, unknown> | undefined;
  const value = mod.records ?? inner?.records ?? inner;
  const schema = (value as { schema?: { table?: unknown; encrypted?: unknown } } | undefined)
    ?.schema;
  if (!schema || typeof schema.table !== "string" || !Array.isArray(schema.encrypted)) {
    throw bad(
      `--records-config ${path} must export records = { schema, blindIndex } (the schema and blind indexer the app gives createRecordCipher).`,
    );
  }
  return value as MigrateRecordsOptions;
}
