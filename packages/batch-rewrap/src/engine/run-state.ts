import { addCounters, type Counters } from "./counters.js";
import type { Demand } from "./split.js";

/** Shared by the worker loops of one run: counters, failures, who works and who waits. */
export interface RunState {
  run: Counters;
  onBatch: () => void;
  /**
   * Values (`pk \0 column`) this run left failed. `run.failed` is its size, so a value that
   * fails in a range and again in the retry step counts once, and one the retry step
   * fixes counts as not failed.
   */
  failedKeys: Set<string>;
  /** Rows a range of this run already counted as scanned (the retry step does not recount them). */
  failedRows: Set<string>;
  /** Workers of this run holding a range, and those waiting for one to be split. */
  demand: Demand;
}

const failureKey = (pk: string, column: string) => `${pk.slice(0, 255)}\u0000${column}`;

/** Adds a committed batch to the run's counters, counting each failed value once. */
export function account(
  state: RunState,
  counters: Counters,
  failed: readonly { pk: string; column: string }[],
  retried?: readonly { pk: string; column: string }[],
): void {
  for (const r of retried ?? []) state.failedKeys.delete(failureKey(r.pk, r.column));
  for (const f of failed) {
    state.failedKeys.add(failureKey(f.pk, f.column));
    state.failedRows.add(f.pk.slice(0, 255));
  }
  addCounters(state.run, { ...counters, failed: 0 });
  state.run.failed = state.failedKeys.size;
}
