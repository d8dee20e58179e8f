import type { KeyRange } from "../state/jobs.js";
import type { Runtime } from "./runtime.js";

/**
 * Who is working and who waits, among the workers of one run (one process). A worker
 * that finds no range to claim while others still work waits here instead of ending; a
 * worker holding a range splits off the rest of it for the waiting one at its next batch.
 */
export class Demand {
  /** Workers holding a range. */
  busy = 0;
  /** Workers waiting for a split. */
  waiting = 0;
  #wake: (() => void)[] = [];

  /** Waits until a range was split or a worker finished one (then claim again). */
  async idle(): Promise<void> {
    this.waiting++;
    try {
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    } finally {
      this.waiting--;
    }
  }

  /** Wakes every waiting worker. */
  notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const w of wake) w();
  }
}

/** Rows counted at most when sizing what is left of a range (an index-only scan). */
export const SPLIT_COUNT_CAP = 200_000;

/**
 * The primary key in the middle of what is left of `range` after `after` (the last key
 * already read), or undefined when less than two batches are left: not worth a split.
 */
export async function splitPoint(
  rt: Pick<Runtime, "db" | "table" | "limits">,
  range: KeyRange,
  after: string | null,
): Promise<string | undefined> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (after !== null) {
    where.push(`${rt.table.pkq} > ?`);
    params.push(after);
  } else if (range.lo !== null) {
    where.push(`${rt.table.pkq} >= ?`);
    params.push(range.lo);
  }
  if (range.hi !== null) {
    where.push(`${rt.table.pkq} < ?`);
    params.push(range.hi);
  }
  const rest = `FROM ${rt.table.q} ${where.length ? `WHERE ${where.join(" AND ")}` : ""}`;
  const counted = await rt.db.query(
    `SELECT COUNT(*) AS n FROM (SELECT ${rt.table.pkq} ${rest} ORDER BY ${rt.table.pkq} LIMIT ?) AS left_keys`,
    [...params, SPLIT_COUNT_CAP],
  );
  const n = Number(counted.rows[0]?.n ?? 0);
  if (n < 2 * rt.limits.batchSize) return undefined;
  const mid = await rt.db.query(
    `SELECT ${rt.table.pkq} AS k ${rest} ORDER BY ${rt.table.pkq} LIMIT 1 OFFSET ?`,
    [...params, Math.floor(n / 2)],
  );
  const k = mid.rows[0]?.k;
  return k === null || k === undefined ? undefined : String(k);
}
