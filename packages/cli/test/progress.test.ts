import { Readable, Writable } from "node:stream";
import type { Progress } from "@envelope/batch-rewrap";
import { describe, expect, it } from "vitest";
import type { CliIo } from "../src/io.js";
import { formatEta, progressBar } from "../src/progress.js";

function tty(): { io: CliIo; frames: () => string[] } {
  let out = "";
  const stderr = Object.assign(
    new Writable({
      write(chunk, _encoding, done) {
        out += chunk;
        done();
      },
    }),
    { isTTY: true, columns: 160 },
  );
  const io: CliIo = { stdin: Readable.from([]), stdout: stderr, stderr, env: {}, cwd: "/" };
  const frames = () =>
    out
      // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
      .split(/\u001b\[1G|\r/)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
      .map((s) => s.replace(/\u001b(\[[0-9;?]*[a-zA-Z]|[78])/g, "").trim())
      .filter((s) => s.includes("rows/s"));
  return { io, frames };
}

const tick = (scanned: number, elapsedMs: number): Progress => ({
  jobId: "j",
  scanned,
  rewrapped: scanned,
  skipped: 0,
  failed: 0,
  conflicts: 0,
  estimatedRows: 5000,
  elapsedMs,
});

describe("progress bar", () => {
  it("shows an ETA from the job's own rate from the first batch on", async () => {
    const { io, frames } = tty();
    const bar = progressBar(io, false, "rewrap");
    bar.onProgress!(tick(500, 5000)); // 100 rows/s, 4500 left
    await new Promise((r) => setTimeout(r, 20));
    bar.onProgress!(tick(1000, 10_000));
    bar.stop();
    const shown = frames();
    expect(shown.length).toBeGreaterThan(0);
    for (const frame of shown) {
      expect(frame).toMatch(/ETA (\d+s|\d+m\d\ds|\d+h\d\dm)$/);
      expect(frame).toContain("100 rows/s");
    }
    expect(shown[0]).toMatch(/500\/5000 rows .* ETA 45s$/);
    expect(shown.at(-1)).toMatch(/1000\/5000 rows .* ETA 40s$/);
  });

  it("is silent off a TTY and with --json", () => {
    const { io, frames } = tty();
    expect(progressBar(io, true, "rewrap").onProgress).toBeUndefined();
    (io.stderr as { isTTY?: boolean }).isTTY = false;
    expect(progressBar(io, false, "rewrap").onProgress).toBeUndefined();
    expect(frames()).toEqual([]);
  });

  it("formats the time left", () => {
    expect(formatEta(4500, 100)).toBe("45s");
    expect(formatEta(18_500, 100)).toBe("3m05s");
    expect(formatEta(762_000, 100)).toBe("2h07m");
    expect(formatEta(0, 100)).toBe("0s");
    expect(formatEta(100, 0)).toBe("--");
    expect(formatEta(100, Number.NaN)).toBe("--");
  });
});
