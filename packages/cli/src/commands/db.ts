import {
  connect,
  findJob,
  type JobReport,
  type JobState,
  jobIdFor,
  rewrapTable,
  type SqlAdapter,
  type TableJobOptions,
} from "@envelope/batch-rewrap";
import { ConfigError, EnvelopeError, type KeyProvider } from "@envelope/core";
import type { Command } from "commander";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { DEFAULT_ROW_TEMPLATE, templateContext } from "../config/encryption-context.js";
import { loadKeys, targetKeys } from "../config/load-keys.js";
import { EXIT_CODES } from "../exit-codes.js";
import { output, shown } from "../io.js";
import { progressBar } from "../progress.js";
import { registerMigrateCommand } from "./migrate.js";
import { rewrapFile } from "./rewrap-file.js";

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

export async function openDb(ctx: CliContext, flags: { db?: string }): Promise<SqlAdapter> {
  const url = flags.db ?? ctx.io.env.ENVELOPE_DB_URL;
  if (!url) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "Give the database with --db <url> or ENVELOPE_DB_URL (postgres://…, mysql://…, pglite://./dir).",
      {
        details: { field: "db" },
      },
    );
  }
  let db: SqlAdapter | undefined;
  try {
    db = await connect(url);
    // Drivers connect lazily: check now, so a wrong URL, a server that is down or a refused
    // login is a clear configuration error (exit 2), not an unexpected error mid-job.
    await db.query("SELECT 1");
    return db;
  } catch (cause) {
    await db?.close().catch(() => {});
    if (EnvelopeError.isInstance(cause)) throw cause;
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `Cannot connect to the database ${redactedUrl(url)}: ${driverReason(cause)}. Check --db / ENVELOPE_DB_URL (host, port, user, password, database name) and that the server is running.`,
      { cause, details: { field: "db" } },
    );
  }
}

/** The URL without its password (and without query parameters, which may hold one). */
function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    u.search = "";
    return u.toString();
  } catch {
    return `(${url.split(":")[0]} URL)`;
  }
}

/** The driver's own words (host, port, user, database — never a password) and its code. */
function driverReason(error: unknown): string {
  const e = error as { message?: string; code?: string; errors?: { message?: string }[] };
  const message = e?.message || e?.errors?.[0]?.message || String(error);
  return e?.code && !message.includes(e.code) ? `${message} (${e.code})` : message;
}

function need(value: unknown, flag: string): void {
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
function threaded(ctx: CliContext): CliContext {
  return { ...ctx, io: { ...ctx.io, env: { ENVELOPE_LOCAL_RSA_THREADS: "auto", ...ctx.io.env } } };
}

/** What the job's state tables held before this run (`--json`: `previously`), if the job existed. */
export interface PriorJob {
  rowsDone: number;
  rangesPending: number;
  rangesTotal: number;
  outstandingFailures: number;
  complete: boolean;
}

/**
 * Looks the job up before anything runs, and names it: the run then uses exactly this job
 * id, so what was checked is what runs. With `--resume` there must be an unfinished job
 * (else a usage error, and nothing is read beyond the state tables or written). Without it,
 * an unfinished job is resumed implicitly (same id = same job) and a finished one is left as
 * it is; either way the operator is told on stderr, before the work starts.
 */
export async function checkResume(
  ctx: CliContext,
  flags: DbFlags & GlobalFlags,
  db: SqlAdapter,
  job: { kind: "rewrap" | "migrate"; to: KeyProvider[]; legacy?: string },
): Promise<{ jobId: string; prior: PriorJob | undefined }> {
  need(flags.table, "--table");
  need(flags.column, "--column");
  const jobId =
    flags.job ??
    jobIdFor({
      kind: job.kind,
      table: flags.table!,
      primaryKey: flags.pk,
      columns: flags.column!,
      to: job.to,
      ...(job.legacy ? { legacy: job.legacy } : {}),
    });
  const state: JobState | undefined = await findJob(db, jobId, {
    stateTablePrefix: flags.statePrefix,
  });
  const command = `envelope ${job.kind}`;
  if (flags.resume && !state) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `--resume: there is no ${job.kind} job "${jobId}" in this database (state tables ${flags.statePrefix}_*), so nothing to resume. Run the command without --resume to start it, or give the --job, --table, --column, --to and --state-prefix of the job you mean. Nothing was written.`,
      { details: { field: "resume", jobId } },
    );
  }
  if (!state) return { jobId, prior: undefined };
  const prior: PriorJob = {
    rowsDone: state.rowsDone,
    rangesPending: state.ranges.pending,
    rangesTotal: state.ranges.total,
    outstandingFailures: state.outstandingFailures,
    complete: state.complete,
  };
  if (flags.resume && state.complete) {
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `--resume: job "${jobId}" is already complete (${prior.rowsDone} rows done, no failure outstanding), so nothing to resume. Run the same command without --resume: ${command} --apply goes over the table again and moves every value not yet on the target key (e.g. values written since under an old key). Nothing was written.`,
      { details: { field: "resume", jobId } },
    );
  }
  if (!flags.json) {
    const would = flags.apply ? "" : "dry run (nothing is written); an --apply run would be ";
    const failed = prior.outstandingFailures
      ? `; ${prior.outstandingFailures} failed value(s) to retry`
      : "";
    const again = flags.apply
      ? "this run goes over the table again and moves every value not yet on the target key"
      : "dry run (nothing is written); an --apply run goes over the table again and moves the values counted below";
    const line = state.complete
      ? `job ${jobId} is already complete (${prior.rowsDone} rows done): ${again}.`
      : prior.rangesPending === 0
        ? `job ${jobId} has every range done (${prior.rowsDone} rows${failed}): ${again}.`
        : `${would}resuming job ${jobId} (${prior.rowsDone} rows already done; ${prior.rangesPending} of ${prior.rangesTotal} range(s) left${prior.outstandingFailures ? `; ${prior.outstandingFailures} failed value(s) to retry` : ""})`;
    ctx.io.stderr.write(`envelope: ${line}\n`);
  }
  return { jobId, prior };
}

/** Prints a job report and returns the exit code it implies. */
export function printReport(
  ctx: CliContext,
  json: boolean,
  report: JobReport,
  prior?: PriorJob,
): number {
  // A run on a job whose ranges were all done goes over the table again: not a resume.
  const resumed = Boolean(report.apply && prior && !prior.complete && !report.reopened);
  const body = { ...report, resumed, ...(prior ? { previously: prior } : {}) };
  output(ctx.io, json, body, () => {
    const r = report.run;
    const verb = report.kind === "rewrap" ? "rewrapped" : "migrated";
    const lines = [
      `${report.kind} ${shown(report.table)}.${shown(report.columns.join(","))} → ${shown(report.targets.join(", "))}  [${report.apply ? "APPLIED" : "DRY RUN"}] job ${report.jobId}${resumed ? ` (resumed: ${prior!.rowsDone} rows were already done)` : ""}${report.reopened ? " (every range was done before: went over the table again)" : ""}`,
      `  scanned ${r.scanned} rows · ${verb} ${r.rewrapped} · already done ${r.skipped} · null ${r.nulls} · conflicts ${r.conflicts} · failed ${r.failed}`,
      `  KMS calls ${r.kmsCalls}${report.kmsCallsPerValue ? ` (${report.kmsCallsPerValue.toFixed(2)} per value)` : ""} (throttled ${report.kmsThrottled}) · ${(report.durationMs / 1000).toFixed(1)} s · ${report.rowsPerSecond.toFixed(0)} rows/s`,
    ];
    if (report.total)
      lines.push(
        `  whole job: ${verb} ${report.total.rewrapped}, already done ${report.total.skipped}, conflicts ${report.total.conflicts}`,
      );
    if (report.byKeyRef)
      for (const [ref, n] of Object.entries(report.byKeyRef))
        lines.push(`  ${shown(ref)}: ${n} value(s)`);
    for (const [code, n] of Object.entries(report.failures))
      lines.push(`  FAILED ${shown(code)} × ${n}: ${failureMeaning(code, report.kind)}`);
    for (const f of report.sampleFailures.slice(0, 5))
      lines.push(
        `    e.g. ${shown(f.column)} at ${shown(report.table)} pk=${shown(f.pk)}: ${shown(f.code)}`,
      );
    if (!report.apply)
      lines.push(
        `  Dry run: ${report.wouldRewrite ?? 0} value(s) would be ${verb}. Nothing was written; run again with --apply.`,
      );
    else if (report.stopped)
      lines.push(
        "  Stopped at a checkpoint. Run the same command again (or add --resume) to continue.",
      );
    else if (othersStillWorking(report))
      lines.push(
        `  This worker is done: nothing left to claim, no failures. Other workers still hold ${report.pendingRanges} range(s); the job completes when they finish (run again with --resume afterwards to check).`,
      );
    else if (!report.complete)
      lines.push(
        "  Some values failed: none of them was changed (what each code means for the value is above). Fix the cause, then run the same command again (or add --resume) to retry them.",
      );
    else if (report.reopened)
      lines.push(
        `  Complete. The job had finished before: this run went over the table again and ${verb} ${r.rewrapped} value(s) not yet on the target key.`,
      );
    else lines.push("  Complete.");
    return lines.join("\n");
  });
  if (report.stopped) return EXIT_CODES.INTERRUPTED;
  if (report.apply && !report.complete && !othersStillWorking(report)) return EXIT_CODES.PARTIAL;
  return EXIT_CODES.OK;
}

/**
 * What a failure code says about the value it was recorded for: the job never changes a
 * failed value, but whether the value is still readable depends on why it failed.
 */
export function failureMeaning(code: string, kind: "rewrap" | "migrate"): string {
  const unchanged = "left unchanged";
  if (code === "ENVELOPE_BAD_FORMAT" || code === "ENVELOPE_UNSUPPORTED_VERSION")
    return kind === "migrate"
      ? `not in the legacy format given (--from), or damaged: ${unchanged}; check --from`
      : `not an Envelope value, or damaged (e.g. truncated): ${unchanged} and NOT readable with any key; restore it from a backup or write it again`;
  if (
    code === "ENVELOPE_DECRYPT_FAILED" ||
    code === "ENVELOPE_CONTEXT_MISMATCH" ||
    code === "ENVELOPE_KMS_CONTEXT_MISMATCH"
  )
    return kind === "migrate"
      ? `the legacy key does not decrypt it (wrong key, or a damaged value): ${unchanged}`
      : `its body or its context is wrong (the value was altered or moved to another row, or --context does not build the context it was sealed with): ${unchanged}; it does not decrypt as stored`;
  if (code === "ENVELOPE_LEGACY_UNRECOGNIZED")
    return `in none of the legacy formats given (--from), and plaintext not allowed: ${unchanged}; add its format to --from, or --allow-plaintext if it is plaintext`;
  if (code === "ENVELOPE_NO_MATCHING_KEY")
    return `wrapped under a key that is not in your config: ${unchanged}, still readable with that key; add it to the decrypt keys and run again`;
  if (
    code.startsWith("ENVELOPE_KMS_") ||
    code === "ENVELOPE_KEY_DISABLED" ||
    code === "ENVELOPE_KEY_NOT_FOUND"
  )
    return `the KMS refused or failed: ${unchanged} and still readable once the key is reachable; fix access if denied, then run again to retry`;
  if (code === "ENVELOPE_LIMIT_EXCEEDED")
    return `the new value does not fit the column: ${unchanged} and still readable; widen the column, then run again`;
  if (code === "CONFLICT")
    return `the row kept changing while the job held its lock: ${unchanged} and still readable; run again`;
  return `${unchanged}; see docs/ERRORS.md for what the code means`;
}

/** A worker of a shared job ended with ranges still claimed by others, and nothing failed. */
function othersStillWorking(report: JobReport): boolean {
  return (
    report.apply &&
    !report.complete &&
    (report.pendingRanges ?? 0) > 0 &&
    Object.keys(report.failures).length === 0
  );
}

export function registerDbCommands(
  program: Command,
  ctx: CliContext,
  setExit: (code: number) => void,
): void {
  const rewrap = program
    .command("rewrap")
    .description(
      "Re-protect data keys under the current encrypting key(s): a file (header only), or a database column (batch job; dry run unless --apply).",
    )
    .argument("[file]", "a stream or single-envelope file; omit with --db")
    .option("-o, --output <file>", "file mode: output file (- = stdout)")
    .option("--in-place", "file mode: replace the file (written to a temp file, then renamed)")
    .option(
      "-c, --file-context <key=value>",
      "file mode: the context given at encrypt",
      (v: string, p: string[] = []) => [...p, v],
    )
    .option("--to <uri>", "target key URI(s) instead of the config's encrypting keys", collect)
    .option(
      "--no-verify-body",
      "skip authenticating each value's body (GCM tag under its context) before it is rewrapped; by default a corrupted or moved value is reported as a failure and left unchanged",
    );
  addDbOptions(rewrap).addHelpText(
    "after",
    "\nExamples:\n  envelope rewrap backup.sql.env --in-place -c file=backup.sql\n  envelope rewrap --db postgres://localhost/app --table users --column email            # dry run\n  envelope rewrap --db postgres://localhost/app --table users --column email --apply    # do it\n  envelope rewrap --db $DB --table users --column email,phone --context 'table=users,column={column},id={id}' --apply --workers 4 --rate-limit 500",
  );
  rewrap.action(
    async (
      file: string | undefined,
      opts: DbFlags & {
        output?: string;
        inPlace?: boolean;
        fileContext?: string[];
        verifyBody?: boolean;
      },
      cmd: Command,
    ) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & DbFlags>();
      if (file) {
        if (opts.db || opts.table)
          throw new ConfigError(
            "ENVELOPE_BAD_INPUT",
            "rewrap: give a file or --db/--table, not both.",
          );
        return rewrapFile(ctx, flags, file, {
          output: opts.output,
          inPlace: opts.inPlace,
          context: opts.fileContext,
          to: opts.to,
          verifyBody: opts.verifyBody !== false,
        });
      }
      const keys = await loadKeys(threaded(ctx), flags);
      const to = await targetKeys(threaded(ctx), keys, opts.to);
      const db = await openDb(ctx, opts);
      let bar: ReturnType<typeof progressBar> | undefined;
      try {
        const { jobId, prior } = await checkResume(ctx, flags, db, { kind: "rewrap", to });
        bar = progressBar(ctx.io, Boolean(flags.json), "rewrap");
        const report = await rewrapTable({
          ...(await jobOptions(ctx, opts, db, jobId, bar.onProgress)),
          to,
          decrypt: [...keys.encrypt, ...keys.decrypt],
          verifyBody: opts.verifyBody !== false,
        });
        bar.stop();
        setExit(printReport(ctx, Boolean(flags.json), report, prior));
      } finally {
        bar?.stop();
        await db.close();
      }
    },
  );

  registerMigrateCommand(program, ctx, setExit);
}
