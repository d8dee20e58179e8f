import type { SqlExecutor } from "../adapters/types.js";
import type { RowOutcome } from "./process.js";
import type { Runtime } from "./runtime.js";

/** What the compare-and-swap writes need: the dialect and the table. */
type CasScope = Pick<Runtime, "db" | "table">;

import type { ColumnPlan } from "./values.js";

type Update = RowOutcome["updates"][number];

/** Rows per multi-row UPDATE at most (PostgreSQL allows 65,535 parameters per statement). */
export const CAS_MAX_ROWS = 500;
/**
 * Bytes of old + new values per multi-row UPDATE at most: MySQL sends parameters inline
 * (hex for binary, so twice this), and MariaDB's default max_allowed_packet is 16 MiB.
 */
export const CAS_MAX_BYTES = 2 * 1024 * 1024;

/**
 * Compare-and-swap writes for a whole batch: `UPDATE … SET col = new WHERE pk = ? AND
 * col = old` for many rows in one statement (byte-exact compare). Rows that change the
 * same columns share a statement:
 *
 *   UPDATE t SET c = CASE pk WHEN ? THEN ? … END
 *    WHERE pk IN (?, …) AND c = CASE pk WHEN ? THEN ? … END
 *
 * A row is written only when every column still holds the value the job read (the old
 * value is picked by the same primary key as the new one); `setOnly` columns (a blind
 * index written with its value) are set, not compared. When fewer rows changed than
 * were sent, the rows are read back in the same transaction to find which ones the
 * application wrote meanwhile. Returns those: the caller locks and redoes them.
 */
export async function casUpdateMany(
  rt: CasScope,
  tx: SqlExecutor,
  outcomes: readonly RowOutcome[],
): Promise<Set<RowOutcome>> {
  const missed = new Set<RowOutcome>();
  for (const group of groupByColumns(outcomes)) {
    for (const chunk of chunks(group)) {
      const affected = await updateChunk(rt, tx, chunk);
      if (affected === chunk.length) continue;
      for (const o of await notWritten(rt, tx, chunk)) missed.add(o);
    }
  }
  return missed;
}

/** Single-row compare-and-swap (the conflict path, under a row lock). True if it applied. */
export async function casUpdateOne(
  rt: CasScope,
  tx: SqlExecutor,
  outcome: RowOutcome,
): Promise<boolean> {
  return (await updateChunk(rt, tx, [outcome])) === 1;
}

function groupByColumns(outcomes: readonly RowOutcome[]): RowOutcome[][] {
  const groups = new Map<string, RowOutcome[]>();
  for (const o of outcomes) {
    if (o.updates.length === 0) continue;
    const key = o.updates.map((u) => u.column.name).join("\u0000");
    const group = groups.get(key);
    if (group) group.push(o);
    else groups.set(key, [o]);
  }
  return [...groups.values()];
}

function* chunks(group: RowOutcome[]): Generator<RowOutcome[]> {
  let chunk: RowOutcome[] = [];
  let bytes = 0;
  for (const o of group) {
    const size = o.updates.reduce((n, u) => n + byteLength(u.next) + byteLength(u.old), 0);
    if (chunk.length > 0 && (chunk.length >= CAS_MAX_ROWS || bytes + size > CAS_MAX_BYTES)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(o);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

function byteLength(v: unknown): number {
  if (typeof v === "string") return Buffer.byteLength(v);
  if (v instanceof Uint8Array) return v.length;
  return 16;
}

/**
 * PostgreSQL array types for a primary key, by information_schema type name: keys of
 * these types are written with {@link updateUnnest}. Other types (char(n), enums, …) take
 * the portable CASE statement.
 */
const PG_KEY_ARRAYS: Record<string, string> = {
  smallint: "smallint[]",
  integer: "integer[]",
  bigint: "bigint[]",
  numeric: "numeric[]",
  text: "text[]",
  "character varying": "text[]",
  uuid: "uuid[]",
};

/** One statement for rows that all update the same columns; returns the rows it changed. */
async function updateChunk(rt: CasScope, tx: SqlExecutor, chunk: RowOutcome[]): Promise<number> {
  const keyArray = rt.db.dialect === "postgres" ? PG_KEY_ARRAYS[rt.table.pkType] : undefined;
  if (keyArray) return updateUnnest(rt, tx, chunk, keyArray);
  return updateCase(rt, tx, chunk);
}

/**
 * PostgreSQL: the batch as arrays joined to the table, a fixed number of parameters
 * whatever the row count (the CASE form costs PostgreSQL a scan of every arm per row).
 * Binary values travel as one bytea of all of them with int arrays of offsets and lengths
 * (a bytea[] would go as hex text, parsed back by PostgreSQL); text values as text[]:
 *
 *   UPDATE t SET c = substring(? FROM v.n0 FOR v.m0)
 *     FROM unnest(?::bigint[], ?::int[], ?::int[], ?::int[], ?::int[]) AS v(k, o0, p0, n0, m0)
 *    WHERE t.pk = v.k AND t.c = substring(? FROM v.o0 FOR v.p0)
 */
async function updateUnnest(
  rt: CasScope,
  tx: SqlExecutor,
  chunk: RowOutcome[],
  keyArray: string,
): Promise<number> {
  const columns = chunk[0]!.updates.map((u) => u.column);
  const sets: { sql: string; params: unknown[] }[] = [];
  const checks: { sql: string; params: unknown[] }[] = [];
  const arrays: string[] = [`CAST(? AS ${keyArray})`];
  const arrayParams: unknown[] = [keyArrayParam(chunk.map((o) => o.row[rt.table.pk]))];
  const names = ["k"];
  for (const [i, c] of columns.entries()) {
    const olds = chunk.map((o) => o.updates[i]!.old);
    const news = chunk.map((o) => o.updates[i]!.next);
    if (chunk[0]!.updates[i]!.setOnly) {
      arrays.push(`CAST(? AS ${c.info.kind === "binary" ? "bytea[]" : "text[]"})`);
      arrayParams.push(news);
      names.push(`n${i}`);
      sets.push({ sql: `${c.q} = v.n${i}`, params: [] });
    } else if (
      c.info.kind === "binary" &&
      olds.every(Buffer.isBuffer) &&
      news.every(Buffer.isBuffer)
    ) {
      const [oldBlob, oldAt, oldLen] = packed(olds as Buffer[]);
      const [newBlob, newAt, newLen] = packed(news as Buffer[]);
      arrays.push("CAST(? AS int[])", "CAST(? AS int[])", "CAST(? AS int[])", "CAST(? AS int[])");
      arrayParams.push(intArray(oldAt), intArray(oldLen), intArray(newAt), intArray(newLen));
      names.push(`o${i}`, `p${i}`, `n${i}`, `m${i}`);
      sets.push({
        sql: `${c.q} = substring(CAST(? AS bytea) FROM v.n${i} FOR v.m${i})`,
        params: [newBlob],
      });
      checks.push({
        sql: `t.${c.q} = substring(CAST(? AS bytea) FROM v.o${i} FOR v.p${i})`,
        params: [oldBlob],
      });
    } else {
      const type = c.info.kind === "binary" ? "bytea[]" : "text[]";
      arrays.push(`CAST(? AS ${type})`, `CAST(? AS ${type})`);
      arrayParams.push(olds, news);
      names.push(`o${i}`, `n${i}`);
      sets.push({ sql: `${c.q} = v.n${i}`, params: [] });
      checks.push({ sql: `t.${c.q} = v.o${i}`, params: [] });
    }
  }
  // Parameters in the order their `?` appear: SET, FROM, WHERE.
  const sql = `UPDATE ${rt.table.q} AS t SET ${sets.map((x) => x.sql).join(", ")} FROM unnest(${arrays.join(", ")}) AS v(${names.join(", ")}) WHERE t.${rt.table.pkq} = v.k AND ${checks.map((x) => x.sql).join(" AND ")}`;
  const params = [
    ...sets.flatMap((x) => x.params),
    ...arrayParams,
    ...checks.flatMap((x) => x.params),
  ];
  return (await tx.query(sql, params)).affected;
}

/**
 * An int[] parameter as its PostgreSQL literal (`{1,151,301}`): the driver would quote
 * and escape each element of a JS array (two regex replaces per number, 2,000 numbers
 * per 500-row batch); the database reads the same array either way.
 */
function intArray(values: readonly (number | bigint | string)[]): string {
  return `{${values.join(",")}}`;
}

const INTEGER = /^-?\d+$/;

/** The keys as an array literal when they are all integers (see intArray), else as given. */
function keyArrayParam(keys: unknown[]): unknown {
  for (const k of keys) {
    const integer =
      (typeof k === "number" && Number.isSafeInteger(k)) ||
      typeof k === "bigint" ||
      (typeof k === "string" && INTEGER.test(k));
    if (!integer) return keys;
  }
  return intArray(keys as (number | bigint | string)[]);
}

/** One buffer of `values` end to end, with each one's 1-based offset and length (SQL substring). */
function packed(values: Buffer[]): [Buffer, number[], number[]] {
  const at: number[] = [];
  const len: number[] = [];
  let offset = 1;
  for (const v of values) {
    at.push(offset);
    len.push(v.length);
    offset += v.length;
  }
  return [Buffer.concat(values), at, len];
}

/** The portable form: one `CASE pk WHEN ? THEN ? … END` per column (MySQL, other key types). */
async function updateCase(rt: CasScope, tx: SqlExecutor, chunk: RowOutcome[]): Promise<number> {
  const columns = chunk[0]!.updates.map((u) => u.column);
  const pkOf = (o: RowOutcome) => o.row[rt.table.pk];
  const params: unknown[] = [];
  // One `CASE pk WHEN ? THEN ? … END` per column: its new values for SET, its old ones for WHERE.
  const byPk = (i: number, pick: (u: Update) => unknown) => {
    const arms = chunk.map((o) => {
      params.push(pkOf(o), pick(o.updates[i]!));
      return `WHEN ? THEN ${valueParam(rt, columns[i]!)}`;
    });
    return `CASE ${rt.table.pkq} ${arms.join(" ")} END`;
  };
  const sets = columns.map((c, i) => `${c.q} = ${byPk(i, (u) => u.next)}`);
  const inList = chunk.map((o) => {
    params.push(pkOf(o));
    return "?";
  });
  const checks = columns.flatMap((c, i) =>
    chunk[0]!.updates[i]!.setOnly ? [] : [`${compared(rt, c)} = ${byPk(i, (u) => u.old)}`],
  );
  const sql = `UPDATE ${rt.table.q} SET ${sets.join(", ")} WHERE ${rt.table.pkq} IN (${inList.join(", ")}) AND ${checks.join(" AND ")}`;
  return (await tx.query(sql, params)).affected;
}

/**
 * PostgreSQL infers a parameter's type from its use; a CASE result has none, so the value
 * is cast to the column's kind (bytea, or text which every text type accepts).
 */
function valueParam(rt: CasScope, column: ColumnPlan): string {
  if (rt.db.dialect !== "postgres") return "?";
  return column.info.kind === "binary" ? "CAST(? AS bytea)" : "CAST(? AS text)";
}

/** MySQL compares text case- and accent-insensitively by default: compare bytes instead. */
function compared(rt: CasScope, column: ColumnPlan): string {
  return rt.db.dialect === "mysql" && column.info.kind === "text" ? `BINARY ${column.q}` : column.q;
}

/** The rows of `chunk` that do not hold the new values now (read in the writing transaction). */
async function notWritten(
  rt: CasScope,
  tx: SqlExecutor,
  chunk: RowOutcome[],
): Promise<RowOutcome[]> {
  const columns = chunk[0]!.updates.map((u) => u.column);
  const list = [rt.table.pkq, ...columns.map((c) => c.q)].join(", ");
  const { rows } = await tx.query(
    `SELECT ${list} FROM ${rt.table.q} WHERE ${rt.table.pkq} IN (${chunk.map(() => "?").join(", ")})`,
    chunk.map((o) => o.row[rt.table.pk]),
  );
  const now = new Map(rows.map((r) => [String(r[rt.table.pk]), r]));
  return chunk.filter((o) => {
    const row = now.get(o.pkText);
    return !row || !o.updates.every((u) => sameValue(row[u.column.name], u.next));
  });
}

function sameValue(stored: unknown, written: string | Buffer): boolean {
  if (typeof written === "string") {
    if (typeof stored === "string") return stored === written;
    return Buffer.isBuffer(stored) && stored.toString("utf8") === written;
  }
  return stored instanceof Uint8Array && Buffer.compare(stored, written) === 0;
}
