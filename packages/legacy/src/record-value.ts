import { ConfigError, FormatError } from "@envelope/core";
import { tag } from "./tag.js";
import type { AnyLegacyDecoder, AsyncLegacyDecoder, LegacyDecoder, LegacyRow } from "./types.js";

/**
 * The type tag byte `@envelope/records` puts before a field's plaintext (its codec.ts:
 * 0x01 string, 0x06 bytes). A test checks these against the records package's `VALUE_TAGS`.
 */
export const RECORD_VALUE_TAGS = { string: 0x01, bytes: 0x06 } as const;

/** How a legacy plaintext becomes a records field value: UTF-8 text (default) or bytes. */
export type RecordValueType = keyof typeof RECORD_VALUE_TAGS;

/** The layout a decoder made by {@link recordValueDecoder} returns (migrate reads it to avoid tagging twice). */
export function recordValueTypeOf(decoder: AnyLegacyDecoder): RecordValueType | undefined {
  const as = (decoder as { recordValue?: unknown }).recordValue;
  return as === "string" || as === "bytes" ? as : undefined;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Wraps a legacy decoder so the plaintext it returns is laid out as an `@envelope/records`
 * field (one type tag byte, then the value): what `envelope migrate --records` seals, so a
 * `RecordCipher` (and the Sequelize / TypeORM / Drizzle / Prisma integrations) opens the
 * migrated values. `string`, the default, matches `transitionalRead`'s default `legacyAs`:
 * a legacy plaintext that is not UTF-8 is an `ENVELOPE_BAD_FORMAT` failure for that value
 * (left unchanged); `bytes` seals it as a Buffer field.
 *
 * @example
 * migrateTable({ …, from: recordValueDecoder(gcmJsonDecoder(key)) });
 */
export function recordValueDecoder<D extends AnyLegacyDecoder>(
  decoder: D,
  as: RecordValueType = "string",
): D {
  if (as !== "string" && as !== "bytes") {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      'records value type must be "string" or "bytes".',
      {
        details: { field: "records" },
      },
    );
  }
  const toField = (plaintext: Buffer): Buffer => {
    try {
      if (as === "string") strictUtf8.decode(plaintext);
      const out = Buffer.allocUnsafe(1 + plaintext.length);
      out[0] = RECORD_VALUE_TAGS[as];
      plaintext.copy(out, 1);
      return out;
    } catch (cause) {
      throw new FormatError(
        "ENVELOPE_BAD_FORMAT",
        `A legacy ${decoder.format} value decrypted to bytes that are not UTF-8 text; migrate the column with --records bytes if it holds bytes (the records field then reads back as a Buffer).`,
        { cause, details: { field: "legacyValue" } },
      );
    } finally {
      plaintext.fill(0);
    }
  };
  const base = {
    format: decoder.format,
    recordValue: as,
    ...(decoder.columns ? { columns: decoder.columns } : {}),
    matches: (value: string | Buffer) => decoder.matches(value),
    ...(decoder.formatOf ? { formatOf: decoder.formatOf.bind(decoder) } : {}),
  };
  if ("async" in decoder && decoder.async) {
    const d = decoder as AsyncLegacyDecoder;
    return tag({
      ...base,
      async: true as const,
      decode: async (v: string | Buffer, r?: LegacyRow) => toField(await d.decode(v, r)),
    }) as unknown as D;
  }
  const d = decoder as LegacyDecoder;
  return tag({
    ...base,
    decode: (v: string | Buffer, r?: LegacyRow) => toField(d.decode(v, r)),
  }) as unknown as D;
}
