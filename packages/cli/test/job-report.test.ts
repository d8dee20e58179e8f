import type { JobReport } from "@envelope/batch-rewrap";
import { describe, expect, it } from "vitest";
import { type PriorJob, resumeNotice } from "../src/db/resume.js";
import { EXIT_CODES } from "../src/exit-codes.js";
import { jobExitCode, jobReportBody, renderJobReport } from "../src/report/job-report.js";

const counters = {
  scanned: 10,
  rewrapped: 8,
  skipped: 2,
  nulls: 0,
  conflicts: 0,
  failed: 0,
  kmsCalls: 16,
};

const report = (over: Partial<JobReport> = {}): JobReport => ({
  jobId: "job-1",
  kind: "rewrap",
  apply: true,
  table: "users",
  columns: ["email"],
  targets: ["local-rsa:abc"],
  complete: true,
  pendingRanges: 0,
  stopped: false,
  run: counters,
  total: counters,
  failures: {},
  sampleFailures: [],
  kmsThrottled: 0,
  kmsCallsPerValue: 2,
  preflightChecked: 4,
  durationMs: 2000,
  rowsPerSecond: 5,
  ...over,
});

const prior = (over: Partial<PriorJob> = {}): PriorJob => ({
  rowsDone: 40,
  rangesPending: 2,
  rangesTotal: 4,
  outstandingFailures: 0,
  complete: false,
  ...over,
});

describe("jobExitCode", () => {
  it.each([
    ["complete", report(), EXIT_CODES.OK],
    ["dry run with work to do", report({ apply: false, complete: false }), EXIT_CODES.OK],
    ["stopped (Ctrl-C)", report({ stopped: true, complete: false }), EXIT_CODES.INTERRUPTED],
    [
      "failures left",
      report({ complete: false, failures: { ENVELOPE_KMS_THROTTLED: 1 } }),
      EXIT_CODES.PARTIAL,
    ],
    [
      "nothing failed, other workers still hold ranges",
      report({ complete: false, pendingRanges: 3 }),
      EXIT_CODES.OK,
    ],
    [
      "failures and ranges still held: failures win",
      report({ complete: false, pendingRanges: 3, failures: { CONFLICT: 1 } }),
      EXIT_CODES.PARTIAL,
    ],
  ])("%s", (_, r, code) => {
    expect(jobExitCode(r)).toBe(code);
  });
});

describe("jobReportBody", () => {
  it("a run on an unfinished job resumed it and says what the job held before", () => {
    expect(jobReportBody(report(), prior())).toMatchObject({ resumed: true, previously: prior() });
  });
  it("a dry run, a reopened job or no earlier job: not resumed", () => {
    expect(jobReportBody(report({ apply: false }), prior()).resumed).toBe(false);
    expect(jobReportBody(report({ reopened: true }), prior()).resumed).toBe(false);
    expect(jobReportBody(report())).toMatchObject({ resumed: false });
    expect(jobReportBody(report())).not.toHaveProperty("previously");
  });
  // The JSON tells the story of the stderr notice (resumeNotice): a dry run says what an
  // --apply run would do with the job, and `reopened` is always there.
  it.each([
    ["apply, unfinished job", report(), prior(), [true, false, false, false]],
    [
      "apply, job reopened",
      report({ reopened: true }),
      prior({ rangesPending: 0 }),
      [false, true, false, false],
    ],
    ["apply, new job", report({ reopened: false }), undefined, [false, false, false, false]],
    ["dry run, no job", report({ apply: false }), undefined, [false, false, false, false]],
    ["dry run, ranges pending", report({ apply: false }), prior(), [false, false, true, false]],
    [
      "dry run, every range done, failures left",
      report({ apply: false }),
      prior({ rangesPending: 0, outstandingFailures: 2 }),
      [false, false, false, true],
    ],
    [
      "dry run, complete job",
      report({ apply: false }),
      prior({ rangesPending: 0, complete: true }),
      [false, false, false, true],
    ],
  ] as const)("%s: resumed, reopened, wouldResume, wouldReopen", (_, r, p, flags) => {
    const body = jobReportBody(r, p);
    expect([body.resumed, body.reopened, body.wouldResume, body.wouldReopen]).toEqual(flags);
    if (p && !r.apply)
      expect(resumeNotice("job-1", p, false)).toContain(
        body.wouldResume
          ? "an --apply run would be resuming"
          : "an --apply run goes over the table again",
      );
  });
});

describe("renderJobReport", () => {
  it("a resumed apply run: header, counters, KMS calls per value, Complete.", () => {
    const text = renderJobReport(report(), prior());
    expect(text).toContain(
      "rewrap users.email → local-rsa:abc  [APPLIED] job job-1 (resumed: 40 rows were already done)",
    );
    expect(text).toContain("scanned 10 rows · rewrapped 8 · already done 2");
    expect(text).toContain("KMS calls 16 (2.00 per value)");
    expect(text.endsWith("  Complete.")).toBe(true);
  });
  it("a dry run of a migrate says what would be migrated", () => {
    const text = renderJobReport(report({ kind: "migrate", apply: false, wouldRewrite: 7 }));
    expect(text).toContain("[DRY RUN]");
    expect(text).toContain("Dry run: 7 value(s) would be migrated. Nothing was written");
  });
  it("a primary key read from the table is escaped", () => {
    const text = renderJobReport(
      report({
        complete: false,
        failures: { CONFLICT: 1 },
        sampleFailures: [{ pk: "7\u001b[2J", column: "email", code: "CONFLICT" }],
      }),
    );
    expect(text).toContain("FAILED CONFLICT × 1");
    expect(text).not.toContain("\u001b");
  });
});

describe("resumeNotice", () => {
  it("an unfinished job: resuming, with what is left", () => {
    expect(resumeNotice("job-1", prior({ outstandingFailures: 3 }), true)).toBe(
      "resuming job job-1 (40 rows already done; 2 of 4 range(s) left; 3 failed value(s) to retry)",
    );
  });
  it("a dry run on an unfinished job says an --apply run would resume", () => {
    expect(resumeNotice("job-1", prior(), false)).toMatch(
      /^dry run \(nothing is written\); an --apply run would be resuming job job-1/,
    );
  });
  it("a complete job: the run goes over the table again", () => {
    expect(resumeNotice("job-1", prior({ complete: true, rangesPending: 0 }), true)).toBe(
      "job job-1 is already complete (40 rows done): this run goes over the table again and moves every value not yet on the target key.",
    );
  });
  it("every range done but failures left: named", () => {
    expect(
      resumeNotice("job-1", prior({ rangesPending: 0, outstandingFailures: 2 }), true),
    ).toContain("has every range done (40 rows; 2 failed value(s) to retry)");
  });
});
