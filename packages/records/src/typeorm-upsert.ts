import { EntityManager, type EntityMetadata, type EntityTarget, type ObjectLiteral } from "typeorm";
import type { RecordCipher } from "./record-cipher.js";

type Row = Record<string, unknown>;

/** Encrypted entity → the blind index column of each encrypted field that has one. */
const indexColumns = new WeakMap<EntityMetadata, [field: string, column: string][]>();
let installed = false;

/**
 * `upsert` picks the columns its update branch overwrites from the values it is given,
 * before the subscriber's `beforeInsert` adds the blind index columns: the update branch
 * would write the new ciphertext and keep the old index (a stale index `findBy` misses).
 * So `EntityManager.prototype.upsert` (which `Repository.upsert` calls) is wrapped once:
 * for an encrypted entity, a value that sets an encrypted field with a blind index also
 * names its index column (`null`, filled by the subscriber when it seals). Other entities
 * and other calls are untouched.
 */
export function indexColumnsOnUpsert(
  metadata: EntityMetadata,
  cipher: RecordCipher<string, "text" | "binary">,
): void {
  const pairs: [string, string][] = [];
  for (const f of cipher.schema.encrypted) {
    const column = cipher.indexColumn(f);
    if (column) pairs.push([f, column]);
  }
  if (pairs.length > 0) indexColumns.set(metadata, pairs);
  if (installed) return;
  installed = true;
  const upsert = EntityManager.prototype.upsert;
  EntityManager.prototype.upsert = function (
    this: EntityManager,
    target: EntityTarget<ObjectLiteral>,
    values: unknown,
    ...rest: unknown[]
  ) {
    const metadata = this.connection.hasMetadata(target)
      ? this.connection.getMetadata(target)
      : undefined;
    const pairs = metadata && indexColumns.get(metadata);
    if (pairs) {
      for (const value of [values].flat() as Row[]) {
        if (typeof value !== "object" || value === null) continue;
        for (const [f, column] of pairs) {
          if (value[f] !== undefined && value[column] === undefined) value[column] = null;
        }
      }
    }
    return (upsert as (...args: unknown[]) => ReturnType<EntityManager["upsert"]>).call(
      this,
      target,
      values,
      ...rest,
    );
  } as EntityManager["upsert"];
}
