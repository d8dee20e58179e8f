/**
 * @envelope/records — encrypted PII columns: whole records sealed under one data key,
 * searchable blind indexes, and helpers for pg, Drizzle and Prisma.
 */

/** Re-exported: the per-row result type of `RecordCipher.openMany`. */
export type { BulkResult } from "@envelope/core";
export {
  type BlindIndexer,
  type BlindIndexerOptions,
  type BlindIndexKey,
  type BlindIndexSpec,
  blindIndexKeysFrom,
  createBlindIndexer,
  DEFAULT_BLIND_INDEX_BITS,
} from "./blind-index.js";
export { TAG as VALUE_TAGS } from "./codec.js";
export {
  type Normalizer,
  normalizeEmail,
  normalizePhone,
  normalizeTrimLower,
} from "./normalize.js";
export { type EncryptedPg, encryptedPg, type FindManyOptions, type Queryable } from "./pg.js";
export {
  type PrismaEncryptionOptions,
  type PrismaModelEncryption,
  prismaEncryption,
} from "./prisma.js";
export {
  createRecordCipher,
  type OpenManyOptions,
  type RecordCipher,
  type RecordCipherOptions,
  type RecordSchema,
  type SealedRecord,
  type SealedValue,
} from "./record-cipher.js";
export {
  isSealedValue,
  type LegacyReadEvent,
  type LegacyValueDecoder,
  type TransitionalOpened,
  type TransitionalRead,
  type TransitionalReadOptions,
  transitionalRead,
} from "./transitional.js";
