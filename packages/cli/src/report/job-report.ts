import type { JobReport } from "@envelope/batch-rewrap";
import type { CliContext } from "../command-context.js";
import { applyRunOn, type PriorJob } from "../db/resume.js";
import { EXIT_CODES } from "../exit-codes.js";
import { output, shown } from "../io.js";

/**
 * Prints a job report (`--json`: {@link jobReportBody}; else {@link renderJobReport}) and
 * returns the exit code it implies ({@link jobExitCode}).
 */
export function printReport(
  ctx: CliContext,
  json: boolean,
  report: JobReport,
  prior?: PriorJob,
): number {
  output(ctx.io, json, jobReportBody(report, prior), () => renderJobReport(report, prior));
  return jobExitCode(report);
}

/** A run on a job whose ranges were all done goes over the table again: not a resume. */
function resumed(report: JobReport, prior: PriorJob | undefined): boolean {
  return Boolean(report.apply && prior && !prior.complete && !report.reopened);
}

/**
 * The `--json` output: the report; whether this run resumed the job or went over the table
 * again (`resumed`, `reopened`: an apply run's, always false in a dry run); for a dry run on
 * an existing job, which of the two an `--apply` run would do, as the stderr notice says
 * (`wouldResume`, `wouldReopen`: always false in an apply run); and what it found before.
 */
export function jobReportBody(report: JobReport, prior?: PriorJob) {
  const next = !report.apply && prior ? applyRunOn(prior) : undefined;
  return {
    ...report,
    resumed: resumed(report, prior),
    reopened: Boolean(report.reopened),
    wouldResume: next === "resume",
    wouldReopen: next === "reopen",
    ...(prior ? { previously: prior } : {}),
  };
}

/** The human text of a job report. Strings read from the table are escaped and capped. */
export function renderJobReport(report: JobReport, prior?: PriorJob): string {
  const wasResumed = resumed(report, prior);
  const r = report.run;
  const verb = report.kind === "rewrap" ? "rewrapped" : "migrated";
  const lines = [
    `${report.kind} ${shown(report.table)}.${shown(report.columns.join(","))} → ${shown(report.targets.join(", "))}  [${report.apply ? "APPLIED" : "DRY RUN"}] job ${report.jobId}${wasResumed ? ` (resumed: ${prior!.rowsDone} rows were already done)` : ""}${report.reopened ? " (every range was done before: went over the table again)" : ""}`,
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
  else if (leftAfterCheck(report))
    lines.push(
      `  NOT complete: every range of the job is done and nothing failed, but reading the column(s) again (no KMS call) found ${report.verified!.remaining} value(s) still not on the target key. Either they were written under an old key while this run went on (an application instance still on the old config), or the job's state tables (<state-prefix>_*) were changed to mark work done that was not: check who can write to them. Run the same command again (without --resume): every range is done, so it goes over the whole table.`,
    );
  else if (!report.complete)
    lines.push(
      "  Some values failed: none of them was changed (what each code means for the value is above). Fix the cause, then run the same command again (or add --resume) to retry them.",
    );
  else if (report.reopened)
    lines.push(
      `  Complete. The job had finished before: this run went over the table again and ${verb} ${r.rewrapped} value(s) not yet on the target key.`,
    );
  else if (report.swept)
    lines.push(
      `  Complete. After resuming at the job's checkpoints, this run went over the whole table once more (for values written under an old key behind them while the job was stopped) and ${verb} ${report.swept.rewrapped} value(s) in that pass.`,
    );
  else lines.push("  Complete.");
  return lines.join("\n");
}

/**
 * Interrupted → 130; failures left, or values the check before `complete` found still to
 * move (and no other worker still at it) → 5; else 0.
 */
export function jobExitCode(report: JobReport): number {
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
/**
 * The job's own state says done (every range, no failure), but the check that reads the
 * column before `complete` is claimed found values still to move.
 */
function leftAfterCheck(report: JobReport): boolean {
  return (
    report.apply &&
    !report.complete &&
    (report.verified?.remaining ?? 0) > 0 &&
    Object.keys(report.failures).length === 0
  );
}

function othersStillWorking(report: JobReport): boolean {
  return (
    report.apply &&
    !report.complete &&
    (report.pendingRanges ?? 0) > 0 &&
    Object.keys(report.failures).length === 0
  );
}
