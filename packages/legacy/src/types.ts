/** The legacy value formats this package decodes. */
export type LegacyFormat =
  | "plaintext"
  | "aes-256-gcm-json"
  | "aes-256-cbc"
  | "fernet"
  | "pgcrypto"
  | "versioned"
  | "mixed";

/** The row a value was read from (only decoders that declare `columns` look at it). */
export type LegacyRow = Readonly<Record<string, unknown>>;

/**
 * Turns one legacy column value into plaintext bytes, synchronously.
 *
 * `matches` is a cheap shape test (no key, no decryption): true when the value looks like
 * this format, so a column holding several formats can be classified. A value that
 * matches may still fail to decode (wrong key, damaged value); `decode` then throws a
 * typed error and never returns the raw value.
 */
export interface LegacyDecoder {
  readonly format: LegacyFormat;
  /** Other columns of the row `decode` reads (e.g. a key-version column). */
  readonly columns?: readonly string[];
  matches(value: string | Buffer): boolean;
  decode(value: string | Buffer, row?: LegacyRow): Buffer;
  /** Mixed decoders: the format a value would be decoded as (undefined: unrecognized). */
  formatOf?(value: string | Buffer): LegacyFormat | undefined;
}

/**
 * A decoder that needs a round trip (pgcrypto decrypts in PostgreSQL). `migrateTable`
 * accepts both kinds.
 */
export interface AsyncLegacyDecoder {
  readonly format: LegacyFormat;
  readonly columns?: readonly string[];
  readonly async: true;
  matches(value: string | Buffer): boolean;
  decode(value: string | Buffer, row?: LegacyRow): Promise<Buffer>;
  formatOf?(value: string | Buffer): LegacyFormat | undefined;
}

/** Either kind of decoder. */
export type AnyLegacyDecoder = LegacyDecoder | AsyncLegacyDecoder;
