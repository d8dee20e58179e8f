/** What a job (or one run of it) did. Values = row × encrypted column. */
export interface Counters {
  /** Rows read. */
  scanned: number;
  /** Values rewritten (rewrapped; for migrate: legacy values sealed into envelopes). */
  rewrapped: number;
  /** Values already on the target keys (or, for migrate, already envelopes). */
  skipped: number;
  /** NULL values (nothing to do). */
  nulls: number;
  /** Compare-and-swap misses: the application changed the value meanwhile; re-read and redone. */
  conflicts: number;
  /** Values that failed (recorded in the failures table with their error code). */
  failed: number;
  /** KMS / provider calls made. */
  kmsCalls: number;
}

export const zeroCounters = (): Counters => ({
  scanned: 0,
  rewrapped: 0,
  skipped: 0,
  nulls: 0,
  conflicts: 0,
  failed: 0,
  kmsCalls: 0,
});

export function addCounters(into: Counters, more: Partial<Counters>): void {
  for (const k of Object.keys(into) as (keyof Counters)[]) into[k] += more[k] ?? 0;
}
