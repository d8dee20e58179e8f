import { ConfigError } from "@envelope/core";
import { type EntityMetadata, FindOperator, SelectQueryBuilder } from "typeorm";

type Row = Record<string, unknown>;

/** Encrypted entity → its encrypted property names and the table named in errors. */
const encryptedOf = new WeakMap<EntityMetadata, { fields: Set<string>; table: string }>();
let installed = false;

/**
 * Find options (`find`, `findBy`, `findOne`, `count`, `exists`… all go through
 * `SelectQueryBuilder.setFindOptions`) whose `where` compares an encrypted property would
 * compare ciphertext with a plaintext, match nothing, and send that plaintext to the
 * database: refused with `ENVELOPE_BAD_INPUT` pointing to `findBy` on the blind index.
 * `IsNull()` (and `Not(IsNull())`) stay allowed. Relations in `where` are walked.
 * QueryBuilder wheres are guarded in typeorm-query-builder.ts.
 */
export function refuseEncryptedWhere(
  metadata: EntityMetadata,
  fields: readonly string[],
  table: string,
): void {
  encryptedOf.set(metadata, { fields: new Set(fields), table });
  if (installed) return;
  installed = true;
  const setFindOptions = SelectQueryBuilder.prototype.setFindOptions;
  SelectQueryBuilder.prototype.setFindOptions = function (
    this: SelectQueryBuilder<never>,
    options,
  ) {
    const main = this.expressionMap.mainAlias;
    if (main?.hasMetadata && options?.where) checkWhere(main.metadata, options.where, 0);
    return setFindOptions.call(this, options);
  };
}

/** Throws when a find-options / object `where` compares an encrypted property (relations walked). */
export function checkWhere(metadata: EntityMetadata, where: unknown, depth: number): void {
  if (depth > 8 || typeof where !== "object" || where === null) return;
  if (Array.isArray(where)) {
    for (const w of where) checkWhere(metadata, w, depth + 1);
    return;
  }
  const encrypted = encryptedOf.get(metadata);
  for (const [key, value] of Object.entries(where as Row)) {
    if (value === undefined) continue;
    if (encrypted?.fields.has(key) && !isNullCheck(value)) {
      throw new ConfigError(
        "ENVELOPE_BAD_INPUT",
        `where on the encrypted column "${key}" of "${encrypted.table}": the column holds ciphertext, so it would match nothing and send your value to the database. Find by its blind index with findBy("${key}", value) of encryptEntity, or filter on plain columns.`,
        { details: { table: encrypted.table, field: key } },
      );
    }
    const relation = metadata.findRelationWithPropertyPath(key);
    if (relation) checkWhere(relation.inverseEntityMetadata, value, depth + 1);
  }
}

/** `IsNull()`, `Not(IsNull())`: a null check is meaningful on a sealed column. */
function isNullCheck(value: unknown): boolean {
  if (value === null) return true;
  if (!(value instanceof FindOperator)) return false;
  if (value.type === "isNull") return true;
  return value.type === "not" && value.child?.type === "isNull";
}
