import type { EncryptionContext, KeyProvider } from "@envelope/core";
import type { Row, SqlAdapter } from "../adapters/types.js";
import type { RewrapThreads } from "../threads/options.js";
import type { AnyLegacyDecoder } from "./legacy.js";
import type { Limiter, RateLimit } from "./limiter.js";
import type { MigrateRecordsOptions } from "./record-fields.js";

/**
 * Builds a row's encryption context for one column: it must return exactly the context
 * the application used when it sealed the value. Default:
 * `{ table, column, id: String(row[primaryKey]) }`.
 */
export type ContextBuilder = (row: Readonly<Row>, column: string) => EncryptionContext;

/** An encrypted column; `form` overrides detection from the SQL type (bytea/BLOB = binary, text types = `ev1:` text). */
export interface ColumnSpec {
  name: string;
  form?: "binary" | "text";
}

/** Live counters, passed to `onProgress` after every batch. */
export interface Progress {
  jobId: string;
  scanned: number;
  rewrapped: number;
  skipped: number;
  failed: number;
  conflicts: number;
  /** Estimated rows in the table (for a progress bar; may be approximate). */
  estimatedRows: number;
  elapsedMs: number;
}

/** Options shared by `rewrapTable`, `migrateTable` and their dry runs. */
export interface TableJobOptions {
  db: SqlAdapter;
  /** `table` or `schema.table`. */
  table: string;
  /** Single-column primary key (integer, text or uuid). */
  primaryKey: string;
  /** The encrypted column(s). */
  columns: readonly (string | ColumnSpec)[];
  /** Context per row and column. Default `{ table, column, id }`. */
  context?: ContextBuilder;
  /** Extra columns the context builder reads (e.g. `tenant_id`). */
  contextColumns?: readonly string[];
  /**
   * A description of how `context` lays contexts out (the CLI passes its `--context`
   * template). Stored with a migrate job, which then refuses to resume under another
   * layout: values sealed under two layouts cannot all be opened by the app.
   */
  contextLayout?: string;
  /** Write changes. Default false: a dry run that reads and reports, and writes nothing. */
  apply?: boolean;
  /** Job id (≤ 100 chars). Default: derived from table, columns and targets, so rerunning the same command resumes. */
  jobId?: string;
  /** Rows per batch (one transaction each). Default 500. */
  batchSize?: number;
  /** Values processed at once within a batch (concurrent KMS calls). Default 8. */
  concurrency?: number;
  /** Worker loops in this process, each claiming ranges. Default 1. */
  workers?: number;
  /**
   * KMS calls per second for this process: the ceiling of an adaptive rate that backs off
   * when the KMS throttles (`ENVELOPE_KMS_THROTTLED`) and grows back after (see
   * `Limiter`). Default: no ceiling (the rate still adapts once the KMS throttles). Pass a
   * `Limiter` to share one quota between several jobs of this process.
   */
  rateLimit?: number | RateLimit | Limiter;
  /**
   * Primary keys per claimable range, fixed when the job is created (a resumed job keeps
   * its ranges). Integer keys: the width of each range in key values; other keys: the
   * number of keys. Default: adaptive, from the table's row estimate and `workers`, aiming
   * at 4 ranges per worker, each between 4 batches and 10,000 rows (see
   * {@link planRangeCount}). Set it when several processes share the job: rows / (4 ×
   * all workers).
   */
  rangeSize?: number;
  /** Prefix of the state tables. Default `envelope_rewrap`. */
  stateTablePrefix?: string;
  /** Name recorded with checkpoints. Default `<hostname>:<pid>:<n>`. */
  workerId?: string;
  /** Aborting stops cleanly after the batch in flight commits. */
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
  /** Retries per value for throttling / unavailable / timeout errors. Default 5. */
  retries?: number;
  /**
   * `sample` (default): before writing anything, fully decrypt a sample of values with
   * the given contexts and prove the targets can open the result. `all`: also decrypt
   * every new value with the target keys before it is written (one more KMS call each).
   */
  verify?: "sample" | "all";
  /** Values checked per column before the job starts. Default 16. */
  sampleSize?: number;
}

export interface RewrapTableOptions extends TableJobOptions {
  /** The key(s) every value must end up under. Several = multi-wrap. */
  to: KeyProvider | readonly KeyProvider[];
  /**
   * Authenticate every value's body (AES-GCM tag under the row's context) before it is
   * rewrapped. Default true: a corrupted value, or one moved from another row, is
   * recorded as a failure with its code (`ENVELOPE_DECRYPT_FAILED`,
   * `ENVELOPE_CONTEXT_MISMATCH`) and left byte-for-byte as it was, instead of being carried
   * forward under the new key and counted as done. `false` skips the check (one AES pass
   * over each body less, and a native rewrap then needs no local unwrap of the old entry).
   */
  verifyBody?: boolean;
  /** Keys that can unwrap the current values (old keys). The targets are tried too. */
  decrypt?: readonly KeyProvider[];
  /**
   * Rewrap the values on worker threads, so one process uses every core: for keys that are
   * all local (`local-aes`), whose rewrap is CPU work. Give the specs (key URIs or provider
   * configs) the providers of `to` and `decrypt` were built from: each thread builds its own
   * providers from them. Values go to the threads in batches (those of one event-loop turn);
   * reading, classifying, the preflight and the writes stay on the main thread. Applied runs
   * only (a dry run makes no key call). Not with `rateLimit`. Default: the main thread.
   *
   * @example
   * threads: { count: "auto", to: ["local-aes://env/NEW_KEY"], decrypt: ["local-aes://env/OLD_KEY"] }
   */
  threads?: RewrapThreads;
}

export interface MigrateTableOptions extends TableJobOptions {
  /** The key(s) new envelopes are sealed under. */
  to: KeyProvider | readonly KeyProvider[];
  /**
   * How legacy values are read: a decoder from @envelope/legacy (`legacyDecoder`,
   * `fernetDecoder`, `pgcryptoDecoder`, `versionedDecoder`, `mixedDecoder`, …).
   */
  from: AnyLegacyDecoder;
  /**
   * The table is read through `@envelope/records`: the app's schema and blind indexer, so
   * each value is written as the app writes it (type tag, padding, blind index column set
   * in the same compare-and-swap). The context is then `{ table: schema.table, column, id }`.
   */
  records?: MigrateRecordsOptions;
}
