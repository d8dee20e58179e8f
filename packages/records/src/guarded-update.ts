import { ConfigError } from "@envelope/core";
import type { RecordCipher } from "./record-cipher.js";

type Row = Record<string, unknown>;

/** What a guarded update needs from the query layer (plain pg SQL, Drizzle, …) for one row. */
export interface RowAccess {
  /** The stored row, or undefined when there is none. */
  read(): Promise<Row | undefined>;
  /**
   * `UPDATE … SET <set> WHERE id = … AND <column> IS NOT DISTINCT FROM <value>` for every
   * entry of `guards`; the stored row after the write, or undefined when no row matched.
   */
  write(set: Row, guards: Row): Promise<Row | undefined>;
}

const ATTEMPTS = 3;

/**
 * Applies `changes` to one stored row through the record cipher's `update` and returns the
 * stored row after the write (not opened), or undefined when there is no such row.
 *
 * Normally only the changed columns are written, so a concurrent update of other fields
 * survives. A record moved to the current key (a master key rotation is under way) also
 * rewrites fields the caller did not change: that write lands only if they still hold what
 * was read (compare-and-swap); otherwise the row is read again and the update retried, at
 * most 3 times.
 */
export async function guardedUpdate(
  cipher: RecordCipher<string, "text" | "binary">,
  changes: Row,
  access: RowAccess,
): Promise<Row | undefined> {
  for (let attempt = 1; ; attempt++) {
    const row = await access.read();
    if (!row) return undefined;
    const patch = await cipher.update(row, changes);
    const set: Row = {};
    for (const [k, v] of Object.entries(patch)) if (v !== undefined) set[k] = v;
    if (Object.keys(set).length === 0) return row;
    const guards: Row = {};
    for (const f of cipher.schema.encrypted) {
      if (f in set && !(f in changes)) guards[f] = row[f] ?? null;
    }
    const written = await access.write(set, guards);
    if (written) return written;
    if (Object.keys(guards).length === 0) return undefined; // deleted meanwhile
    if (attempt === ATTEMPTS) {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `update: row of "${cipher.schema.table}" kept changing while it was re-sealed under the current key (${ATTEMPTS} attempts). Retry the update.`,
        { details: { table: cipher.schema.table } },
      );
    }
  }
}
