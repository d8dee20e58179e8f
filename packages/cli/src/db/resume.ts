import {
  delegatingAdapter,
  findJob,
  type JobState,
  jobIdFor,
  type SqlAdapter,
  stopJob,
} from "@envelope/batch-rewrap";
import { ConfigError, type KeyProvider } from "@envelope/core";
import type { CliContext, GlobalFlags } from "../command-context.js";
import { onQuit } from "../quit.js";
import { type DbFlags, need } from "./job-flags.js";

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
  if (!flags.json)
    ctx.io.stderr.write(`envelope: ${resumeNotice(jobId, prior, Boolean(flags.apply))}\n`);
  return { jobId, prior };
}

/**
 * What an `--apply` run does with an existing job: continue it at its checkpoints while
 * ranges are pending, else go over the whole table again (batch-rewrap's reopenIfFinished).
 * The stderr notice and a dry run's `--json` (`wouldResume` / `wouldReopen`) both say this.
 */
export function applyRunOn(prior: PriorJob): "resume" | "reopen" {
  return prior.complete || prior.rangesPending === 0 ? "reopen" : "resume";
}

/** What the operator is told before a run on an existing job: resumed, or gone over again. */
export function resumeNotice(jobId: string, prior: PriorJob, apply: boolean): string {
  const would = apply ? "" : "dry run (nothing is written); an --apply run would be ";
  const failed = prior.outstandingFailures
    ? `; ${prior.outstandingFailures} failed value(s) to retry`
    : "";
  const again = apply
    ? "this run goes over the table again and moves every value not yet on the target key"
    : "dry run (nothing is written); an --apply run goes over the table again and moves the values counted below";
  return prior.complete
    ? `job ${jobId} is already complete (${prior.rowsDone} rows done): ${again}.`
    : applyRunOn(prior) === "reopen"
      ? `job ${jobId} has every range done (${prior.rowsDone} rows${failed}): ${again}.`
      : `${would}resuming job ${jobId} (${prior.rowsDone} rows already done; ${prior.rangesPending} of ${prior.rangesTotal} range(s) left${prior.outstandingFailures ? `; ${prior.outstandingFailures} failed value(s) to retry` : ""})`;
}

/**
 * For an apply run: marks its job stopped if the process quits on a second Ctrl-C without
 * waiting for its batches (cli.ts), so `retire` and `status` see it as incomplete at once
 * rather than running until the lease passes. Returns the adapter the job must use and the
 * function that unregisters the hook.
 *
 * The job's batch transactions stop committing once the mark is made, before the mark's
 * COMMIT is sent: InnoDB releases the job row before it acknowledges a COMMIT, so a batch
 * waiting on that row could otherwise commit while the answer is on its way, and the job
 * would read as running (progress after the stop) until the lease passed.
 */
export function stopJobOnQuit(
  db: SqlAdapter,
  flags: DbFlags,
  jobId: string,
): { db: SqlAdapter; off: () => void } {
  if (!flags.apply) return { db, off: () => {} };
  let leaving = false;
  const job = delegatingAdapter(db, {
    transaction: (fn) =>
      db.transaction(async (tx) => {
        const result = await fn(tx);
        // The process is leaving: this batch never commits (it rolls back when the
        // connection closes at exit).
        if (leaving) await new Promise(() => {});
        return result;
      }),
    // A statement outside a batch (the job marked running again) is held back too.
    query: (sql, params) => (leaving ? new Promise<never>(() => {}) : db.query(sql, params)),
  });
  const stopper = delegatingAdapter(db, {
    transaction: (fn) =>
      db.transaction(async (tx) => {
        const result = await fn(tx); // the job row is locked and marked stopped
        leaving = true;
        return result;
      }),
  });
  const off = onQuit(() => stopJob(stopper, { jobId, stateTablePrefix: flags.statePrefix }));
  return { db: job, off };
}
