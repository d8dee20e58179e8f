import { ConfigError } from "@envelope/core";
import { MAX_ID_BYTES } from "./names.js";

/**
 * Reads a record's id as a string (it is part of every field's encryption context): a
 * non-empty string of at most MAX_ID_BYTES, a safe integer or a bigint; anything else is a
 * typed error that says how to get an id before sealing. `what` names the call in errors.
 */
export function recordIdReader(
  table: string,
  idField: string,
): (row: Record<string, unknown>, what: string) => string {
  return (row: Record<string, unknown>, what: string): string => {
    const id = row?.[idField];
    if (typeof id === "string" && id.length > 0) {
      if (id.length > MAX_ID_BYTES || Buffer.byteLength(id, "utf8") > MAX_ID_BYTES) {
        throw new ConfigError(
          "ENVELOPE_BAD_INPUT",
          `${what}: the record's "${idField}" is longer than ${MAX_ID_BYTES} bytes (UTF-8), the limit of an encryption context value; the id is part of every field's context. Use a shorter id (a UUID, a number).`,
          { details: { table: table, field: idField } },
        );
      }
      return id;
    }
    if ((typeof id === "number" && Number.isSafeInteger(id)) || typeof id === "bigint") {
      return String(id);
    }
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `${what}: the record has no usable "${idField}" (got ${id === null ? "null" : typeof id}). The id is part of every field's encryption context, so it must be known before sealing: generate it (UUID) or reserve it (SELECT nextval(...)); encryptedPg().insert does this for serial ids.`,
      { details: { table: table, field: idField } },
    );
  };
}
