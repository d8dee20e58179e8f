import { PassThrough, Readable } from "node:stream";
import type { JobReport } from "@envelope/batch-rewrap";
import { describe, expect, it } from "vitest";
import { EXIT_CODES } from "../src/exit-codes.js";
import { printReport } from "../src/report/job-report.js";

const counters = {
  scanned: 1000,
  rewrapped: 1000,
  skipped: 0,
  nulls: 0,
  conflicts: 0,
  failed: 0,
  kmsCalls: 2000,
};

function report(overrides: Partial<JobReport>): JobReport {
  return {
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
    kmsCallsPerValue: 0,
    preflightChecked: 10,
    durationMs: 1000,
    rowsPerSecond: 1000,
    ...overrides,
  };
}

function print(r: JobReport): { code: number; text: string } {
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on("data", (d) => chunks.push(Buffer.from(d)));
  const io = { stdin: Readable.from([]), stdout, stderr: new PassThrough(), env: {}, cwd: "/" };
  const code = printReport({ io, signal: new AbortController().signal }, false, r);
  return { code, text: Buffer.concat(chunks).toString("utf8") };
}

describe("printReport", () => {
  it("a worker of a shared job that ends while others hold ranges succeeds and says so", () => {
    const { code, text } = print(report({ complete: false, pendingRanges: 3 }));
    expect(code).toBe(EXIT_CODES.OK);
    expect(text).toContain("Other workers still hold 3 range(s)");
    expect(text).not.toContain("failed and were left");
  });

  it("failures make a partial run (exit 5) whether or not other workers are still running", () => {
    for (const pendingRanges of [0, 3]) {
      const { code, text } = print(
        report({ complete: false, pendingRanges, failures: { ENVELOPE_KMS_THROTTLED: 2 } }),
      );
      expect(code).toBe(EXIT_CODES.PARTIAL);
      expect(text).toContain("Some values failed");
    }
  });

  it("values the check found still to move after every range was done make a partial run (exit 5) that says why", () => {
    const { code, text } = print(
      report({ complete: false, pendingRanges: 0, verified: { scanned: 1000, remaining: 40 } }),
    );
    expect(code).toBe(EXIT_CODES.PARTIAL);
    expect(text).toContain("NOT complete");
    expect(text).toContain("found 40 value(s) still not on the target key");
    expect(text).toContain("Run the same command again");
    expect(text).not.toContain("Complete.");
    expect(text).not.toContain("Some values failed");
  });

  it("a complete job is exit 0", () => {
    const { code, text } = print(report({}));
    expect(code).toBe(EXIT_CODES.OK);
    expect(text).toContain("Complete.");
  });
});

describe("printReport: what a failure means for the value", () => {
  const failed = (failures: Record<string, number>) =>
    print(report({ complete: false, failures, run: { ...counters, failed: 1 } })).text;

  it("damaged or non-envelope values are said to be unreadable, not 'still readable'", () => {
    const text = failed({ ENVELOPE_BAD_FORMAT: 4 });
    expect(text).toContain(
      "FAILED ENVELOPE_BAD_FORMAT × 4: not an Envelope value, or damaged (e.g. truncated): left unchanged and NOT readable with any key",
    );
    expect(text).not.toMatch(/still readable/);
  });

  it.each([
    ["ENVELOPE_DECRYPT_FAILED", "its body or its context is wrong", /still readable/],
    ["ENVELOPE_NO_MATCHING_KEY", "still readable with that key; add it to the decrypt keys", null],
    ["ENVELOPE_KMS_THROTTLED", "left unchanged and still readable once the key is reachable", null],
    ["ENVELOPE_KMS_ACCESS_DENIED", "fix access if denied, then run again to retry", null],
  ] as const)("%s", (code, says, never) => {
    const text = failed({ [code]: 2 });
    expect(text).toContain(`FAILED ${code} × 2: `);
    expect(text).toContain(says);
    if (never) expect(text).not.toMatch(never);
  });

  it("a run on a finished job says it went over the table again, not 'already complete'", () => {
    const { code, text } = print(report({ reopened: true, run: { ...counters, rewrapped: 10 } }));
    expect(code).toBe(EXIT_CODES.OK);
    expect(text).toContain("(every range was done before: went over the table again)");
    expect(text).toContain(
      "Complete. The job had finished before: this run went over the table again and rewrapped 10 value(s) not yet on the target key.",
    );
  });
});
