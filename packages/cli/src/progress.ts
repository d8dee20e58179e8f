import type { Progress } from "@envelope/batch-rewrap";
import cliProgress from "cli-progress";
import type { CliIo } from "./io.js";

/**
 * Time left at the job's average rate, e.g. "45s", "3m05s", "2h07m"; "--" before the rate is
 * known. (cli-progress's own ETA starts from the first tick it sees, so on the first batch it
 * showed "0s" and then "NFs", and later it disagreed with the rate shown beside it.)
 */
export function formatEta(remaining: number, rowsPerSecond: number): string {
  if (!(rowsPerSecond > 0) || !Number.isFinite(remaining)) return "--";
  const s = Math.ceil(Math.max(remaining, 0) / rowsPerSecond);
  if (!Number.isFinite(s) || s > 1e7) return "--";
  const two = (n: number) => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${two(Math.floor((s % 3600) / 60))}m`;
}

/** A progress bar with rate and ETA on stderr, only on a TTY and never with --json. */
export function progressBar(
  io: CliIo,
  json: boolean,
  label: string,
): { onProgress?: (p: Progress) => void; stop: () => void } {
  if (json || !io.stderr.isTTY) return { stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} |{bar}| {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {timeLeft}`,
      stream: io.stderr as NodeJS.WritableStream,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress(p) {
      const total = Math.max(p.estimatedRows, p.scanned, 1);
      const perSecond = p.scanned / Math.max(p.elapsedMs / 1000, 0.001);
      const payload = {
        rate: perSecond.toFixed(0),
        timeLeft: formatEta(total - p.scanned, perSecond),
      };
      if (!started) {
        bar.start(total, p.scanned, payload);
        started = true;
      }
      bar.setTotal(total);
      bar.update(p.scanned, payload);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
