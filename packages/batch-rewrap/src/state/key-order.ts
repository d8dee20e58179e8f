import { ConfigError } from "@envelope/core";
import type { SqlExecutor } from "../adapters/types.js";
import type { TablePlan } from "../engine/runtime.js";

/**
 * Primary keys kept as text in the state tables (range bounds) compared in the key's own
 * order, the order the scans' `pk > ?` / `pk < ?` use: as text "10" < "9", as keys not.
 */
export interface KeyOrder {
  /** The first of `keys` strictly between `lo` and `hi` (null: unbounded), or undefined. */
  firstBetween(
    q: SqlExecutor,
    keys: readonly string[],
    lo: string | null,
    hi: string | null,
  ): Promise<string | undefined>;
}

/** Candidates compared per query (two parameters each). */
const CHUNK = 500;

/**
 * Integer keys compare as BigInt, as planRanges computes their bounds. Other keys are
 * compared by the database: the candidates go through a UNION with the key column, which
 * gives them its type and collation (a bare `? < ?` would use the connection's collation,
 * case-insensitive on MariaDB by default where the column may be binary, or the reverse).
 */
export function keyOrder(table: Pick<TablePlan, "q" | "pkq" | "integerKey">): KeyOrder {
  return table.integerKey ? integerOrder : databaseOrder(table);
}

const integerOrder: KeyOrder = {
  async firstBetween(_q, keys, lo, hi) {
    const low = lo === null ? undefined : asInteger(lo);
    const high = hi === null ? undefined : asInteger(hi);
    let best: { text: string; n: bigint } | undefined;
    for (const text of keys) {
      const n = asInteger(text);
      if (low !== undefined && n <= low) continue;
      if (high !== undefined && n >= high) continue;
      if (best === undefined || n < best.n) best = { text, n };
    }
    return best?.text;
  },
};

function asInteger(text: string): bigint {
  if (!/^-?\d+$/.test(text.trim())) {
    throw new ConfigError(
      "ENVELOPE_BAD_CONFIG",
      "A range bound of this job is not an integer although the primary key is; its state tables were changed by hand.",
    );
  }
  return BigInt(text.trim());
}

function databaseOrder(table: Pick<TablePlan, "q" | "pkq">): KeyOrder {
  return {
    async firstBetween(q, keys, lo, hi) {
      let best: string | undefined;
      for (let i = 0; i < keys.length; i += CHUNK) {
        // The best so far competes again with the next chunk.
        const chunk = [...(best === undefined ? [] : [best]), ...keys.slice(i, i + CHUNK)];
        const where: string[] = [];
        const params: unknown[] = chunk.flatMap((k) => [k, k]);
        if (lo !== null) {
          where.push("c.k > ?");
          params.push(lo);
        }
        if (hi !== null) {
          where.push("c.k < ?");
          params.push(hi);
        }
        // `raw` returns the candidate as stored, whatever the driver makes of the key's type.
        const { rows } = await q.query(
          `SELECT c.raw FROM (SELECT ${table.pkq} AS k, NULL AS raw FROM ${table.q} WHERE 1 = 0${" UNION ALL SELECT ?, ?".repeat(chunk.length)}) AS c ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY c.k LIMIT 1`,
          params,
        );
        const raw = rows[0]?.raw;
        if (raw !== null && raw !== undefined) best = String(raw);
      }
      return best;
    },
  };
}
