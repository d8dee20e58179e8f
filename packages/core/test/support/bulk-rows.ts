import { randomBytes } from "node:crypto";
import { type Envelope, type KeyProvider, localAesProvider } from "../../src/index.js";

export interface PacedKmsOptions {
  /** Each unwrap's delay in ms, or a function of the call's number (from 1). Default 5. */
  delayMs?: number | ((call: number) => number);
  /** Receives `unwrap n` as call n starts and `returned n` as it ends. */
  log?: string[];
  /** Called with the call's number as each unwrap starts. */
  onUnwrap?: (call: number) => void;
}

/**
 * local-aes behind a delay, as a remote KMS is (no `unwrapNow`): counts unwraps and the most
 * in flight at once, for the bulk API's grouping and concurrency tests.
 */
export function pacedKms(options: PacedKmsOptions = {}) {
  const aes = localAesProvider({ keys: randomBytes(32) });
  const stats = { unwraps: 0, inFlight: 0, maxInFlight: 0 };
  const { delayMs = 5, log, onUnwrap } = options;
  const provider: KeyProvider = {
    id: aes.id,
    keyRef: aes.keyRef,
    handles: (e) => aes.handles(e),
    wrap: (k, r) => aes.wrap(k, r),
    async unwrap(entry, request) {
      const call = ++stats.unwraps;
      onUnwrap?.(call);
      log?.push(`unwrap ${call}`);
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      try {
        const ms = typeof delayMs === "number" ? delayMs : delayMs(call);
        await new Promise((r) => setTimeout(r, ms));
        log?.push(`returned ${call}`);
        return await aes.unwrap(entry, request);
      } finally {
        stats.inFlight--;
      }
    },
  };
  const reset = () => {
    stats.unwraps = stats.inFlight = stats.maxInFlight = 0;
  };
  return { provider, stats, reset };
}

/** The three PII columns of a row in the bulk tests. */
export const COLUMNS = ["email", "phone", "ssn"] as const;

/** A field's context: its table, column and row id. */
export const fieldContext = (id: number, column: string) => ({
  table: "users",
  column,
  id: String(id),
});

/** `records` rows of three fields each (COLUMNS, in order), every row under its own data key. */
export async function sealRows(envelope: Envelope, records: number) {
  const items: { sealed: Buffer; context: Record<string, string> }[] = [];
  for (let id = 0; id < records; id++) {
    const materials = await envelope.generateDataKey();
    for (const column of COLUMNS) {
      const context = fieldContext(id, column);
      items.push({
        sealed: envelope.encryptWithDataKey(materials, `${column}-${id}`, { context }),
        context,
      });
    }
    materials.dataKey.fill(0);
  }
  return items;
}
