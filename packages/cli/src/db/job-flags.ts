import type { SqlAdapter, TableJobOptions } from "@envelope/batch-rewrap";
import { ConfigError } from "@envelope/core";
import type { Command } from "commander";
import type { CliContext } from "../command-context.js";
import { DEFAULT_ROW_TEMPLATE, templateContext } from "../config/encryption-context.js";

/** A repeatable, comma-separated flag. */
export const collect = (value: string, previous: string[] = []) => [
  ...previous,
  ...value.split(",").filter(Boolean),
];

/** Flags shared by every database command. */
export interface DbFlags {
  db?: string;
  table?: string;
  column?: string[];
  pk: string;
  context: string;
  contextColumns?: string[];
  apply?: boolean;
  batchSize: string;
  concurrency: string;
  workers: string;
  rateLimit?: string;
  rangeSize?: string;
  job?: string;
  resume?: boolean;
  statePrefix: string;
  verify: string;
  to?: string[];
}

/** The flags of database commands: --db/--table/--column/--pk, and with `apply` the job flags. */
export function addDbOptions(cmd: Command, apply = true): Command {
  cmd
    .option(
      "--db <url>",
      "database: postgres://…, mysql://…, mariadb://…, pglite://./dir (default: $ENVELOPE_DB_URL)",
    )
    .option("--table <name>", "table (or schema.table)")
    .option("--column <name>", "encrypted column(s), repeatable or comma-separated", collect)
    .option("--pk <name>", "primary key column (single column: integer, text or uuid)", "id");
  if (!apply) return cmd;
  return cmd
    .option(
      "--context <template>",
      "context per value; {table} {column} {pk} and {<row column>} are filled in",
      DEFAULT_ROW_TEMPLATE,
    )
    .option("--context-columns <names>", "row columns the context template reads", collect)
    .option("--apply", "write changes (without it: a dry run that writes nothing)")
    .option("--batch-size <n>", "rows per batch transaction", "500")
    .option("--concurrency <n>", "values processed at once per worker (concurrent KMS calls)", "8")
    .option(
      "--workers <n>",
      "worker loops in this process (run more processes with the same --job to scale out)",
      "1",
    )
    .option(
      "--rate-limit <n>",
      "KMS calls per second for this process: the ceiling of an adaptive rate that backs off when the KMS throttles and grows back after (default: no ceiling)",
    )
    .option(
      "--range-size <n>",
      "primary keys per claimable range, fixed when the job is created (default: adaptive, about 4 ranges per worker, 500–10,000 rows each)",
    )
    .option(
      "--job <id>",
      "job id; default derived from table, columns and target, so rerunning resumes",
    )
    .option(
      "--resume",
      "continue an unfinished job (interrupted, crashed, or left with failures); refuse if there is none",
    )
    .option("--state-prefix <prefix>", "prefix of the job state tables", "envelope_rewrap")
    .option(
      "--verify <mode>",
      "sample (check a sample before writing) or all (also decrypt every new value before it is written)",
      "sample",
    );
}

export function need(value: unknown, flag: string): void {
  if (value === undefined || (Array.isArray(value) && value.length === 0)) {
    throw new ConfigError("ENVELOPE_BAD_INPUT", `${flag} is required for a database job.`, {
      details: { field: flag },
    });
  }
}

function int(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new ConfigError("ENVELOPE_BAD_INPUT", `${flag} must be a positive integer.`, {
      details: { field: flag },
    });
  return n;
}

/** The batch-rewrap options of a job from its flags. */
export async function jobOptions(
  ctx: CliContext,
  flags: DbFlags,
  db: SqlAdapter,
  jobId: string,
  onProgress: TableJobOptions["onProgress"],
): Promise<TableJobOptions> {
  need(flags.table, "--table");
  need(flags.column, "--column");
  if (flags.verify !== "sample" && flags.verify !== "all")
    throw new ConfigError("ENVELOPE_BAD_INPUT", "--verify is sample or all.");
  const template = templateContext(flags.context, flags.table!, flags.pk);
  return {
    db,
    table: flags.table!,
    primaryKey: flags.pk,
    columns: flags.column!,
    context: template.build,
    contextLayout: flags.context,
    contextColumns: [...new Set([...(flags.contextColumns ?? []), ...template.columns])],
    apply: Boolean(flags.apply),
    batchSize: int(flags.batchSize, "--batch-size"),
    concurrency: int(flags.concurrency, "--concurrency"),
    workers: int(flags.workers, "--workers"),
    ...(flags.rateLimit ? { rateLimit: Number(flags.rateLimit) } : {}),
    ...(flags.rangeSize ? { rangeSize: int(flags.rangeSize, "--range-size") } : {}),
    jobId,
    stateTablePrefix: flags.statePrefix,
    signal: ctx.signal,
    verify: flags.verify as "sample" | "all",
    ...(onProgress ? { onProgress } : {}),
  };
}

/**
 * A table rewrap unwraps many values at once: local-rsa keys then unwrap on one worker
 * thread per core (`ENVELOPE_LOCAL_RSA_THREADS=auto`) unless the environment or the key's
 * `?threads=` says otherwise (`ENVELOPE_LOCAL_RSA_THREADS=off` keeps them on the main thread).
 */
export function threaded(ctx: CliContext): CliContext {
  return { ...ctx, io: { ...ctx.io, env: { ENVELOPE_LOCAL_RSA_THREADS: "auto", ...ctx.io.env } } };
}
