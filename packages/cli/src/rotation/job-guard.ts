import {
  DEFAULT_STALE_AFTER_SECONDS,
  findUnfinishedJobs,
  requireTableColumns,
  type SqlAdapter,
  type UnfinishedJob,
} from "@envelope/batch-rewrap";
import { ConfigError, EnvelopeError } from "@envelope/core";
import type { Command } from "commander";
import type { CliContext } from "../command-context.js";
import { dbFlagHint } from "../db/open-db.js";
import { shown } from "../io.js";

/** The flags of the job guard of `retire` and `rotate`. */
export interface GuardFlags {
  statePrefix: string;
  staleAfter: string;
  force?: boolean;
  /** No --force warning (already given by an earlier check of the same command). */
  quiet?: boolean;
  /** The command's --db, for the resume hint (printed as `--db <url>`, never the URL). */
  db?: string;
}

export function addGuardOptions(cmd: Command): Command {
  return cmd
    .option("--state-prefix <prefix>", "prefix of the rewrap job state tables", "envelope_rewrap")
    .option(
      "--stale-after <seconds>",
      "a job with no progress for this long is incomplete (its process stopped or was killed), not running",
      String(DEFAULT_STALE_AFTER_SECONDS),
    )
    .option(
      "--force",
      "go ahead despite an incomplete (stopped, not running) job on these columns, with a warning; never despite a running one",
    );
}

/**
 * Refuses (ENVELOPE_JOB_IN_PROGRESS, exit 10) while the state tables hold a rewrap or
 * migrate job on the given table/columns that is running, or incomplete unless `--force`:
 * a retire could pass its count between two batches of a job that writes under the key,
 * and a rotate would change the target under a job. Returns the jobs overridden by --force.
 */
export async function refuseDuringJobs(
  ctx: CliContext,
  db: SqlAdapter,
  command: "retire" | "rotate",
  where: { table?: string; columns?: string[] },
  flags: GuardFlags,
): Promise<UnfinishedJob[]> {
  const staleAfter = Number(flags.staleAfter);
  if (!Number.isFinite(staleAfter) || staleAfter < 0)
    throw new ConfigError("ENVELOPE_BAD_INPUT", "--stale-after is a number of seconds (≥ 0).", {
      details: { field: "stale-after" },
    });
  if (where.columns?.length && !where.table)
    throw new ConfigError(
      "ENVELOPE_BAD_INPUT",
      `${command}: --column needs --table (a column alone could match no job). Nothing was changed.`,
      { details: { field: "table" } },
    );
  let jobs: UnfinishedJob[];
  try {
    // A typo in --table or --column would match no job and pass the guard unseen.
    if (where.table) await requireTableColumns(db, where.table, where.columns ?? []);
    jobs = await findUnfinishedJobs(db, {
      stateTablePrefix: flags.statePrefix,
      ...(where.table ? { table: where.table } : {}),
      ...(where.columns?.length ? { columns: where.columns } : {}),
      staleAfterSeconds: staleAfter,
    });
  } catch (cause) {
    if (EnvelopeError.isInstance(cause)) throw cause;
    // The connection was checked a moment ago: the server went away, or the tables cannot
    // be read (permissions, a table of that name that is not a state table).
    const reason = (cause as { message?: string })?.message || String(cause);
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      `${command} could not read the rewrap job state tables ${flags.statePrefix}_jobs/_ranges/_checkpoints on the ${db.name} database: ${reason}. Check that the server is up and this user can read those tables (or give the right --state-prefix), then retry. Nothing was changed.`,
      { cause, details: { field: "db", statePrefix: flags.statePrefix } },
    );
  }
  if (jobs.length === 0) return [];
  const running = jobs.filter((j) => j.state === "running");
  if (running.length === 0 && flags.force) {
    if (!flags.quiet)
      for (const job of jobs)
        ctx.io.stderr.write(
          `envelope: WARNING: --force: ${command} goes ahead although job ${shown(job.jobId)} on ${describe(job)} is incomplete; resume it later only with the keys it was started with.\n`,
        );
    return jobs;
  }
  const job = running[0] ?? jobs[0]!;
  const what = job.state === "running" ? "is running" : "is incomplete";
  const advice =
    job.state === "running"
      ? `Wait for it to finish, then retry. If its process is gone (killed, crashed), resume it now with \`${resumeHint(job, flags.statePrefix, dbFlagHint(ctx, flags))}\` (a resume joins the job at once); it counts as incomplete only once ${staleAfter} s have passed without progress`
      : `Resume it to the end with \`${resumeHint(job, flags.statePrefix, dbFlagHint(ctx, flags))}\` (or finish it from the process that ran it), then retry; --force goes ahead anyway (not advised)`;
  throw new EnvelopeError(
    "ENVELOPE_JOB_IN_PROGRESS",
    `${command} refused: ${shown(job.spec.kind)} job ${shown(job.jobId)} on ${describe(job)} ${what} (last progress ${job.idleSeconds < 0 ? "unknown" : `${job.idleSeconds} s ago`}, ${job.ranges.pending} of ${job.ranges.total} range(s) left${jobs.length > 1 ? `; ${jobs.length} unfinished job(s) in all` : ""}). ${advice}. Nothing was changed.`,
    {
      details: {
        jobId: job.jobId,
        state: job.state,
        table: job.spec.table,
        jobs: jobs.length,
        running: running.length,
      },
    },
  );
}

// A job's spec is read from the state tables, which whoever can write the database can
// change: every string of it is shown escaped (the --force warning is written directly).
const describe = (job: UnfinishedJob) =>
  `${shown(job.spec.table)}(${shown(job.spec.columns.join(","))})`;

const resumeHint = (job: UnfinishedJob, prefix: string, db: string) =>
  [
    `envelope ${shown(job.spec.kind)}${db ? ` ${db}` : ""} --table ${shown(job.spec.table)} --column ${shown(job.spec.columns.join(","))}`,
    job.spec.primaryKey !== "id" ? ` --pk ${shown(job.spec.primaryKey)}` : "",
    // A migrate job also needs its legacy format and that format's key options again.
    job.spec.kind === "migrate" && job.spec.legacy
      ? ` --from ${shown(job.spec.legacy)} <its legacy-key options>`
      : "",
    prefix !== "envelope_rewrap" ? ` --state-prefix ${prefix}` : "",
    ` --apply --resume --job ${shown(job.jobId)}`,
  ].join("");
