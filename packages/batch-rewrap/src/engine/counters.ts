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

/** Counters from a `SELECT SUM(scanned) AS scanned, …, SUM(kms_calls) AS kms_calls` row of the checkpoints table. */
export function countersFromSums(row: Record<string, unknown> | undefined): Counters {
  const n = (v: unknown) => Number(v ?? 0);
  const s = row ?? {};
  return {
    scanned: n(s.scanned),
    rewrapped: n(s.rewrapped),
    skipped: n(s.skipped),
    nulls: n(s.nulls),
    conflicts: n(s.conflicts),
    failed: n(s.failed),
    kmsCalls: n(s.kms_calls),
  };
}
