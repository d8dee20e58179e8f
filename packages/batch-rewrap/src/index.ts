/**
 * @envelope/batch-rewrap — crash-safe, resumable, multi-worker rewrap and migration of
 * encrypted columns in PostgreSQL, MySQL/MariaDB and PGlite.
 */
export { connect } from "./adapters/connect.js";
export { delegatingAdapter } from "./adapters/delegating.js";
export { type MysqlPoolLike, mysqlAdapter } from "./adapters/mysql.js";
export { type PGliteLike, pgliteAdapter } from "./adapters/pglite.js";
export { type PgPoolLike, postgresAdapter } from "./adapters/postgres.js";
export type {
  AdapterOptions,
  QueryResult,
  Row,
  SqlAdapter,
  SqlExecutor,
  SqlSession,
} from "./adapters/types.js";
export type { Counters } from "./engine/counters.js";
export {
  type LegacyDecoder,
  type LegacyFormat,
  type LegacyKeySource,
  type LegacyOptions,
  legacyDecoder,
  loadLegacyKey,
} from "./engine/legacy.js";
export { BACKOFF, type Clock, Limiter, type RateLimit } from "./engine/limiter.js";
export type {
  ColumnSpec,
  ContextBuilder,
  MigrateTableOptions,
  Progress,
  RewrapTableOptions,
  TableJobOptions,
} from "./engine/options.js";
export type {
  BlindIndexerLike,
  BlindIndexSpecLike,
  MigrateRecordsOptions,
  RecordSchemaLike,
} from "./engine/record-fields.js";
export { type JobReport, migrateTable, rewrapTable } from "./engine/run.js";
export { type CountKeyRefsOptions, countKeyRefs, type ScanResult } from "./engine/scan.js";
export { requireTableColumns } from "./sql/introspect.js";
export { stopJob } from "./state/job-status.js";
export { type JobSpec, planRangeCount } from "./state/jobs.js";
export { findJob, type JobState, jobIdFor, tableExists } from "./state/lookup.js";
export { dropStateTables } from "./state/tables.js";
export {
  DEFAULT_STALE_AFTER_SECONDS,
  type FindUnfinishedOptions,
  findUnfinishedJobs,
  type UnfinishedJob,
} from "./state/unfinished.js";
export { isThreadableSpec, MAX_THREADS, type RewrapThreads } from "./threads/options.js";
