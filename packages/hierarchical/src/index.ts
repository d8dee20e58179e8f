/**
 * @envelope/hierarchical — per-record data keys wrapped locally by cached intermediate
 * keys; intermediate keys wrapped by the master key and kept in a pluggable key store.
 */

export type { IntermediateKeyCacheOptions, MissCacheOptions } from "./key-cache.js";
export {
  type HierarchicalOptions,
  type HierarchicalProvider,
  type HierarchicalStats,
  hierarchicalProvider,
  type RotateAfter,
} from "./provider.js";
export { IK_ID_PATTERN, type IntermediateKeyRecord, type StoredKeyRecord } from "./record.js";
export {
  type RotateMasterOptions,
  type RotateMasterReport,
  rotateMaster,
} from "./rotate-master.js";
export { type FileKeyStoreOptions, fileKeyStore } from "./store/file.js";
export { memoryKeyStore } from "./store/memory.js";
export {
  type PgQueryable,
  type PostgresKeyStoreOptions,
  postgresKeyStore,
} from "./store/postgres.js";
export type { KeyStore } from "./store/types.js";
export {
  formatVerifyReport,
  type VerifyOptions,
  type VerifyReport,
  verifyKeyStore,
} from "./verify.js";
