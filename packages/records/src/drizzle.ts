import { ConfigError, decodeEnvelope, fromText, isTextForm } from "@envelope/core";
import { customType } from "drizzle-orm/pg-core";

/**
 * Drizzle column types for encrypted fields (import from `@envelope/records/drizzle`).
 *
 * Why the column does not encrypt by itself: Drizzle's `toDriver` / `fromDriver` are
 * synchronous, while sealing needs the KMS (asynchronous) and the row id (the context
 * `{ table, column, id }`). So the record cipher seals before `insert` / `update` and
 * opens after `select`, and these columns are the safety net: writing anything that is
 * not a sealed value throws instead of storing plaintext.
 *
 * @example
 * const users = pgTable("users", {
 *   id: text("id").primaryKey(),
 *   email: encryptedText("email"),
 *   email_idx: text("email_idx"),
 * });
 * await db.insert(users).values(await cipher.seal({ id: randomUUID(), email }));
 * const [row] = await db.select().from(users).where(inArray(users.email_idx, cipher.candidatesFor("email", email)));
 * const user = await cipher.open(row);
 */
export const encryptedText = customType<{ data: string; driverData: string }>({
  dataType: () => "text",
  toDriver(value) {
    if (typeof value !== "string" || !isTextForm(value)) throw plaintextWrite();
    decodeEnvelope(fromText(value)); // throws a FormatError on anything malformed
    return value;
  },
  fromDriver: (value) => value,
});

/** Like `encryptedText` for `bytea` columns; use with a cipher created with `output: "binary"`. */
export const encryptedBytes = customType<{ data: Buffer; driverData: Buffer }>({
  dataType: () => "bytea",
  toDriver(value) {
    if (!(value instanceof Uint8Array)) throw plaintextWrite();
    decodeEnvelope(value);
    return Buffer.from(value.buffer, value.byteOffset, value.length);
  },
  fromDriver: (value) => value,
});

function plaintextWrite(): ConfigError {
  return new ConfigError(
    "ENVELOPE_BAD_INPUT",
    "Refusing to write a value that is not sealed into an encrypted column: seal the record first (await cipher.seal(record) / cipher.update(row, changes)).",
  );
}
