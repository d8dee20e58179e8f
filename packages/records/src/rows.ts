import { type BulkResult, ConfigError } from "@envelope/core";
import { mapLimit } from "@envelope/core/internal";
import { shown } from "./names.js";
import type { RecordCipher } from "./record-cipher.js";

/**
 * Row helpers shared by the pg and Drizzle repositories: the query layer differs, the
 * steps around the record cipher do not.
 */

type Row = Record<string, unknown>;
type AnyCipher = RecordCipher<string, "text" | "binary">;

/** Records sealed at once: enough to overlap KMS round trips, few enough not to flood the KMS. */
const SEAL_CONCURRENCY = 16;

/**
 * Opens the rows of a list read with `cipher.openMany` (one unwrap per record at most, the
 * cipher's `concurrency` at a time). All or nothing: when a row does not open, the read
 * rejects with the typed error of the first such row, never a list that silently lacks it.
 */
export async function openAll<T>(cipher: AnyCipher, rows: readonly Row[]): Promise<T[]> {
  return valuesOrThrow(await cipher.openMany<T>(rows));
}

/** The values of per-row results, or the error of the first row that failed. */
export function valuesOrThrow<T>(results: readonly BulkResult<T>[]): T[] {
  return results.map((r) => {
    if (!r.ok) throw r.error;
    return r.value;
  });
}

/** Seals records (one data key, hence one KMS call, per record). */
export function sealAll(cipher: AnyCipher, records: readonly Row[]): Promise<Row[]> {
  return mapLimit(records, SEAL_CONCURRENCY, (r) => cipher.seal(r) as Promise<Row>);
}

/** The blind index column of `field`, or a clear error when it has none. */
export function blindIndexColumn(cipher: AnyCipher, field: string): string {
  const column = cipher.indexColumn(field);
  if (column) return column;
  if (!cipher.schema.encrypted.includes(field)) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `"${shown(field)}" is not an encrypted field of "${cipher.schema.table}" (encrypted: ${cipher.schema.encrypted.join(", ")}), so it has no blind index: match a plain column with an ordinary WHERE (encryptedPg's findMany({ where })).`,
      { details: { table: cipher.schema.table, field: shown(field) } },
    );
  }
  throw new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `Field "${shown(field)}" of "${cipher.schema.table}" has no blind index: declare it in the schema's blindIndexes.`,
    { details: { table: cipher.schema.table, field: shown(field) } },
  );
}

/**
 * Opens the rows a blind index lookup returned and keeps those whose `field` really equals
 * `value` after normalization: a truncated index has false positives.
 */
export async function openMatching<T>(
  cipher: AnyCipher,
  rows: readonly Row[],
  field: string,
  value: string,
): Promise<T[]> {
  const opened = await openAll<Row>(cipher, rows);
  return opened.filter((row) => cipher.matches(field, row[field], value)) as T[];
}

/**
 * The id reserved by `SELECT nextval(pg_get_serial_sequence(table, column))::text AS id`,
 * or a clear error when the id column has no sequence. The id is part of every field's
 * context, so a serial id must be known before sealing.
 */
export function reservedId(rows: readonly Row[], table: string, idField: string): string {
  const id = rows[0]?.id;
  if (typeof id === "string") return id;
  throw new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `insert into "${table}": the record has no "${idField}" and the column has no sequence. Give the id (e.g. randomUUID()) before inserting: it is part of each field's encryption context.`,
    { details: { table, field: idField } },
  );
}
