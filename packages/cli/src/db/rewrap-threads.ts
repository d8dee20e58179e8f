import { availableParallelism } from "node:os";
import { isThreadableSpec, MAX_THREADS, type RewrapThreads } from "@envelope/batch-rewrap";
import { ConfigError, type KeySpec } from "@envelope/core";

/** The keys of a table rewrap as specs (URIs or provider configs), before they are resolved. */
export interface RewrapSpecs {
  to: readonly KeySpec[];
  decrypt: readonly KeySpec[];
}

/**
 * `--threads`: `auto` (one rewrap thread per core), a count, or `off`. Without the flag,
 * `auto` when every key is a local-aes key given as plain data (a URI or a JSON config), the
 * machine has more than one core and no `--rate-limit` is set; otherwise the main thread
 * (KMS keys wait on the network, not on this CPU). An explicit setting the keys cannot
 * honour fails with the engine's ENVELOPE_BAD_CONFIG.
 */
export function rewrapThreads(
  flag: string | undefined,
  specs: RewrapSpecs,
  env: Readonly<Record<string, string | undefined>>,
  rateLimit: string | undefined,
): RewrapThreads | undefined {
  const threads = (count: RewrapThreads["count"]): RewrapThreads => ({
    count,
    to: specs.to,
    decrypt: specs.decrypt,
    env,
  });
  if (flag === undefined) {
    const all = [...specs.to, ...specs.decrypt];
    const local = all.length > 0 && all.every(isThreadableSpec);
    return local && availableParallelism() > 1 && rateLimit === undefined
      ? threads("auto")
      : undefined;
  }
  const v = flag.trim().toLowerCase();
  if (v === "off" || v === "0") return undefined;
  if (v === "auto") return threads("auto");
  const n = Number(v);
  if (/^[0-9]{1,3}$/.test(v) && n >= 1 && n <= MAX_THREADS) return threads(n);
  throw new ConfigError(
    "ENVELOPE_BAD_INPUT",
    `--threads must be auto (one per core), a count from 1 to ${MAX_THREADS}, or off.`,
    { details: { field: "--threads" } },
  );
}
