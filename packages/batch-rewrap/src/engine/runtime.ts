import type { SqlAdapter } from "../adapters/types.js";
import type { JobSpec } from "../state/jobs.js";
import type { Limiter } from "./limiter.js";
import type { ContextBuilder, TableJobOptions } from "./options.js";
import type { ValueTransform } from "./transform.js";
import type { ColumnPlan } from "./values.js";

/** The job's table, its names checked against the database and quoted once. */
export interface TablePlan {
  /** As given (`schema.table` or `table`), for messages. */
  name: string;
  /** Quoted for SQL. */
  q: string;
  pk: string;
  pkq: string;
  /** Integer primary key: ranges are planned arithmetically. */
  integerKey: boolean;
  /** The primary key's SQL type, as information_schema names it (e.g. `bigint`). */
  pkType: string;
  columns: ColumnPlan[];
  /** Quoted SELECT list: primary key, encrypted columns, context columns. */
  selectList: string;
}

/** Which job this is: the stored spec, its id, and the prefix of this process's worker ids. */
export interface JobIdentity {
  id: string;
  spec: JobSpec;
  /** `host:pid`; worker loops append `:n`. */
  workerBase: string;
}

/** How hard the job may push the database and the KMS. */
export interface WorkLimits {
  limiter: Limiter;
  /** Rows per batch (one transaction each). */
  batchSize: number;
  /** KMS calls in flight per worker. */
  concurrency: number;
  /** Retries of a throttled / unavailable / timed-out KMS call. */
  retries: number;
}

/** Everything a worker needs, resolved and checked once before a job starts. */
export interface Runtime {
  db: SqlAdapter;
  /** The caller's options (signal, progress callback, state-table prefix, …). */
  options: TableJobOptions;
  table: TablePlan;
  job: JobIdentity;
  limits: WorkLimits;
  /** The encryption context of a value from its row. */
  context: ContextBuilder;
  /** What the job does to one value (rewrap, or seal a legacy value). */
  transform: ValueTransform;
  /** Releases what the job started (its rewrap threads); called once the job ends. */
  close?: () => Promise<void>;
}
