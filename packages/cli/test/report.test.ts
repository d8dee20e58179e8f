import { PassThrough, Readable } from "node:stream";
import type { JobReport } from "@envelope/batch-rewrap";
import { describe, expect, it } from "vitest";
import { printReport } from "../src/commands/db.js";
import { EXIT_CODES } from "../src/exit-codes.js";

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

  it("a complete job is exit 0", () => {
    const { code, text } = print(report({}));
    expect(code).toBe(EXIT_CODES.OK);
    expect(text).toContain("Complete.");
  });
});
