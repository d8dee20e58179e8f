import { ConfigError, decodeEnvelope, fromText, isTextForm } from "@envelope/core";
import { is } from "drizzle-orm";
import { customType, type PgColumn, PgCustomColumn } from "drizzle-orm/pg-core";

/**
 * Drizzle column types for encrypted fields (import from `@envelope/records/drizzle`).
 *
 * Why the column does not encrypt by itself: Drizzle's `toDriver` / `fromDriver` are
 * synchronous, while sealing needs the KMS (asynchronous) and the row id (the context
 * `{ table, column, id }`). So {@link encryptedRepository} seals before `insert` / `update`
 * and opens after `select`, and these columns are the safety net: writing anything that is
 * not a sealed value throws instead of storing plaintext.
 *
 * The column's TypeScript type is the plaintext type the repository reads and writes
 * (`string` by default); declare another with `.$type<T>()`, e.g.
 * `encryptedText("born").$type<Date>()`.
 *
 * @example
 * const usersTable = pgTable("users", {
 *   id: text("id").primaryKey(),
 *   email: encryptedText("email"),
 *   email_idx: text("email_idx"),
 * });
 * const users = encryptedRepository(db, usersTable, cipher);
 * await users.insert({ id: randomUUID(), email: "ann@example.com" });
 */
export const encryptedText = customType<{ data: string; driverData: string }>({
  dataType: () => "text",
  toDriver: sealedTextOnly,
  fromDriver: (value) => value,
});

/** Like `encryptedText` for `bytea` columns; use with a cipher created with `output: "binary"`. */
export const encryptedBytes = customType<{ data: Buffer; driverData: Buffer }>({
  dataType: () => "bytea",
  toDriver: sealedBytesOnly,
  fromDriver: (value) => value,
});

function sealedTextOnly(value: string): string {
  if (typeof value !== "string" || !isTextForm(value)) throw plaintextWrite();
  decodeEnvelope(fromText(value)); // throws a FormatError on anything malformed
  return value;
}

function sealedBytesOnly(value: Buffer): Buffer {
  if (!(value instanceof Uint8Array)) throw plaintextWrite();
  decodeEnvelope(value);
  return Buffer.from(value.buffer, value.byteOffset, value.length);
}

/**
 * Whether a table's column was declared with {@link encryptedText} / {@link encryptedBytes}.
 * Drizzle keeps a custom column's `toDriver` in a field it does not type (`mapTo`); the
 * check compares it with ours, so a Drizzle that renamed the field makes every column fail
 * the check (the repository then refuses to start) rather than pass it.
 */
export function isEncryptedColumn(column: PgColumn): boolean {
  if (!is(column, PgCustomColumn)) return false;
  const toDriver = (column as unknown as { mapTo?: unknown }).mapTo;
  return toDriver === sealedTextOnly || toDriver === sealedBytesOnly;
}

function plaintextWrite(): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    "Refusing to send a value that is not sealed to an encrypted column: write through encryptedRepository (or seal first: await cipher.seal(record) / cipher.update(row, changes)); look rows up by an encrypted field with repository.findBy, not a WHERE on the column.",
  );
}
