import { decodeEnvelope, EnvelopeError, fromText } from "@envelope/core";
import type { Row, SqlAdapter } from "../adapters/types.js";
import { checkName, quote } from "../sql/identifiers.js";
import { describeTable, requireColumn } from "../sql/introspect.js";
import type { Runtime, TablePlan } from "./runtime.js";
import type { ValueTransform } from "./transform.js";
import { type ColumnPlan, toValue } from "./values.js";

/** What a read-only pass over a column found. */
export interface ScanResult {
  scanned: number;
  nulls: number;
  /** Values that need work (dry run: would be rewritten). */
  work: number;
  /** Values already done. */
  skipped: number;
  /** `provider:keyRef` → values carrying an entry under it (`legacy` for non-envelopes in migrate). */
  byKeyRef: Record<string, number>;
  /** Values that are not usable, by error code (e.g. not an envelope). */
  invalid: Record<string, number>;
  /** Up to 20 examples of invalid values: primary key, column, code. */
  invalidSamples: { pk: string; column: string; code: string }[];
}

/** Walks a table by keyset pagination (`WHERE pk > last ORDER BY pk LIMIT n`), never OFFSET. */
export async function* keysetRows(
  db: SqlAdapter,
  table: Pick<TablePlan, "q" | "pk" | "pkq" | "selectList">,
  batchSize: number,
  signal?: AbortSignal,
): AsyncGenerator<Row[]> {
  const { q: tq, pkq, selectList } = table;
  let last: unknown;
  for (;;) {
    if (signal?.aborted) return;
    const { rows } = await db.query(
      `SELECT ${selectList} FROM ${tq} ${last === undefined ? "" : `WHERE ${pkq} > ?`} ORDER BY ${pkq} LIMIT ?`,
      last === undefined ? [batchSize] : [last, batchSize],
    );
    if (rows.length === 0) return;
    yield rows;
    last = rows.at(-1)![table.pk];
  }
}

/** The job's table in key order, a batch at a time (the dry run and the preflight read it so). */
export function runtimeRows(rt: Runtime): AsyncGenerator<Row[]> {
  return keysetRows(rt.db, rt.table, rt.limits.batchSize, rt.options.signal);
}

/** The dry run: classify every value with no KMS call and no write. */
export async function scanTable(
  rt: Runtime,
  onBatch?: (r: ScanResult) => void,
): Promise<ScanResult> {
  const result = emptyScan();
  for await (const rows of runtimeRows(rt)) {
    for (const row of rows) classifyRow(row, rt.table.pk, rt.table.columns, rt.transform, result);
    onBatch?.(result);
  }
  return result;
}

function emptyScan(): ScanResult {
  return {
    scanned: 0,
    nulls: 0,
    work: 0,
    skipped: 0,
    byKeyRef: {},
    invalid: {},
    invalidSamples: [],
  };
}

function classifyRow(
  row: Row,
  pk: string,
  columns: ColumnPlan[],
  transform: Pick<ValueTransform, "classify" | "keyRefs"> | undefined,
  out: ScanResult,
) {
  out.scanned++;
  for (const column of columns) {
    const raw = row[column.name];
    if (raw === null || raw === undefined) {
      out.nulls++;
      continue;
    }
    try {
      const value = toValue(raw, column);
      for (const ref of transform ? transform.keyRefs(value) : envelopeRefs(value))
        out.byKeyRef[ref] = (out.byKeyRef[ref] ?? 0) + 1;
      if (transform) {
        if (transform.classify(value) === "skip") out.skipped++;
        else out.work++;
      }
    } catch (error) {
      const code = EnvelopeError.isInstance(error) ? error.code : "UNEXPECTED_ERROR";
      out.invalid[code] = (out.invalid[code] ?? 0) + 1;
      if (out.invalidSamples.length < 20)
        out.invalidSamples.push({ pk: String(row[pk]), column: column.name, code });
    }
  }
}

function envelopeRefs(value: string | Buffer): string[] {
  const parts = decodeEnvelope(typeof value === "string" ? fromText(value) : value);
  return parts.entries.map((e) => `${e.providerId}:${e.keyRef}`);
}

export interface CountKeyRefsOptions {
  db: SqlAdapter;
  table: string;
  primaryKey: string;
  columns: readonly (string | { name: string; form?: "binary" | "text" })[];
  batchSize?: number;
  signal?: AbortSignal;
}

/**
 * How many values each key reference protects in a table's encrypted column(s): the
 * `status` view of a rotation. Reads only, no KMS call. A value wrapped under two keys
 * counts for both; values that are not envelopes are counted under `invalid`.
 *
 * @example
 * const { byKeyRef } = await countKeyRefs({ db, table: "users", primaryKey: "id", columns: ["email"] });
 */
export async function countKeyRefs(options: CountKeyRefsOptions): Promise<ScanResult> {
  const { db } = options;
  const table = checkName(options.table, "table", true);
  const pk = checkName(options.primaryKey, "primaryKey");
  const described = await describeTable(db, table);
  requireColumn(described, table, pk, "primaryKey");
  const columns: ColumnPlan[] = options.columns.map((c) => {
    const spec = typeof c === "string" ? { name: c } : c;
    const info = requireColumn(described, table, checkName(spec.name, "columns"), "columns");
    return {
      name: spec.name,
      q: quote(db, spec.name),
      form: spec.form ?? (info.kind === "binary" ? "binary" : "text"),
      info,
    };
  });
  const selectList = [...new Set([pk, ...columns.map((c) => c.name)])]
    .map((c) => quote(db, c))
    .join(", ");
  const result = emptyScan();
  const plan = { q: quote(db, table), pk, pkq: quote(db, pk), selectList };
  for await (const rows of keysetRows(db, plan, options.batchSize ?? 1000, options.signal)) {
    for (const row of rows) classifyRow(row, pk, columns, undefined, result);
  }
  return result;
}
