import { unwrapSet } from "./prisma-args.js";
import { bad, type WhereScope } from "./prisma-where.js";

// `data` the extension refuses before any SQL, whatever else it holds.

type Row = Record<string, unknown>;

const CREATES = new Set(["create", "createMany", "createManyAndReturn"]);
const UPDATES = new Set(["update", "updateMany", "updateManyAndReturn"]);

/**
 * - A change of the id: every encrypted value of the row is bound to it (it is in each
 *   field's encryption context), so the moved row could never be opened again — even when
 *   `data` holds no encrypted field.
 * - A blind index column: the extension computes it from the value it seals; one set by the
 *   caller would make a lookup by the field find a row whose value does not match (or a row
 *   with no value at all), and hide the row from a lookup by its real value.
 */
export function refuseData(scope: WhereScope, operation: string, args: Row): void {
  const writes: { data: unknown; id: "allowed" | "unchanged" | "refused" }[] = [];
  if (CREATES.has(operation)) {
    for (const data of Array.isArray(args.data) ? args.data : [args.data]) {
      writes.push({ data, id: "allowed" });
    }
  } else if (UPDATES.has(operation)) {
    writes.push({ data: args.data, id: operation === "update" ? "unchanged" : "refused" });
  } else if (operation === "upsert") {
    writes.push({ data: args.create, id: "allowed" }, { data: args.update, id: "unchanged" });
  }
  const { cipher } = scope;
  const idField = cipher.schema.idField ?? "id";
  for (const { data, id } of writes) {
    if (typeof data !== "object" || data === null) continue;
    const row = data as Row;
    for (const field of cipher.schema.encrypted) {
      const column = cipher.indexColumn(field);
      // Given with its field (a row read and written back, `{ ...user, name }`), the index
      // is recomputed from the field: withoutGivenIndexes drops the given one.
      if (column === undefined || row[column] === undefined || row[field] !== undefined) continue;
      throw bad(
        scope,
        field,
        operation,
        `${operation}: "${column}" is the blind index of "${field}", which the extension computes from the value it seals, and is given without "${field}". Set "${field}" instead (or leave both out): an index written on its own would make a lookup by "${field}" find a row whose value does not match, and miss the row by its real value.`,
      );
    }
    const value = unwrapSet(row[idField]);
    if (value === undefined || id === "allowed") continue;
    const where = (args.where as Row | undefined)?.[idField];
    const same =
      id === "unchanged" &&
      (typeof value === "string" || typeof value === "number" || typeof value === "bigint") &&
      (typeof where === "string" || typeof where === "number" || typeof where === "bigint") &&
      String(value) === String(where);
    if (same) continue;
    throw bad(
      scope,
      idField,
      operation,
      `${operation} cannot change "${idField}" of "${cipher.schema.table}": every encrypted value of the row is bound to its id, so the row could no longer be opened. Create the record under the new id (read it, create() it with the new ${idField}, delete the old one).`,
    );
  }
}

/**
 * The data of a write with each blind index column given beside its field removed (copies;
 * the caller's objects are left alone): the extension computes the index from the field,
 * and a stale or forged one must not be written, e.g. when the field's value is unchanged.
 * Call after refuseData, which refuses an index given without its field.
 */
export function withoutGivenIndexes(scope: WhereScope, operation: string, args: Row): void {
  const { cipher } = scope;
  const strip = (data: unknown): unknown => {
    if (typeof data !== "object" || data === null || Array.isArray(data)) return data;
    const row = data as Row;
    const drop = cipher.schema.encrypted
      .filter((f) => row[f] !== undefined)
      .map((f) => cipher.indexColumn(f))
      .filter((c): c is string => c !== undefined && c in row);
    if (drop.length === 0) return data;
    const out: Row = { ...row };
    for (const c of drop) delete out[c];
    return out;
  };
  if (CREATES.has(operation) || UPDATES.has(operation)) {
    args.data = Array.isArray(args.data) ? args.data.map(strip) : strip(args.data);
  } else if (operation === "upsert") {
    args.create = strip(args.create);
    args.update = strip(args.update);
  }
}
