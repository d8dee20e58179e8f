import type { Progress } from "@envelope/batch-rewrap";
import cliProgress from "cli-progress";
import type { CliIo } from "./io.js";

/** A progress bar with rate and ETA on stderr, only on a TTY and never with --json. */
export function progressBar(
  io: CliIo,
  json: boolean,
  label: string,
): { onProgress?: (p: Progress) => void; stop: () => void } {
  if (json || !io.stderr.isTTY) return { stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} |{bar}| {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {eta_formatted}`,
      stream: io.stderr as NodeJS.WritableStream,
      etaBuffer: 40,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress(p) {
      const total = Math.max(p.estimatedRows, p.scanned, 1);
      const rate = (p.scanned / Math.max(p.elapsedMs / 1000, 0.001)).toFixed(0);
      if (!started) {
        bar.start(total, p.scanned, { rate });
        started = true;
      }
      bar.setTotal(total);
      bar.update(p.scanned, { rate });
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
