import { SelectQueryBuilder } from "typeorm";
import { aliasesOf, type Builder, refused } from "./typeorm-query-builder.js";
import { referencedColumn } from "./typeorm-sql-refs.js";

type Selects = { expressionMap: { selects: { selection: unknown }[] } };
let installed = false;

// A name, "quoted" or `quoted`; a path of names (alias.property, embedded properties).
const IDENT = '(?:[\\w$]+|"[^"]+"|`[^`]+`)';
const PATH = `${IDENT}(?:\\s*\\.\\s*${IDENT})*`;
/** `m`, `m.email`, `"m"."email"`, `m.*`: the column itself, opened after a load. */
const PLAIN = new RegExp(`^\\s*${PATH}(?:\\s*\\.\\s*\\*)?\\s*$`);
/** `COUNT(m.email)` counts non-null values: right on ciphertext too. */
const COUNT = new RegExp(`^\\s*COUNT\\s*\\(\\s*${PATH}\\s*\\)\\s*$`, "i");

const COMPUTE =
  "SQL functions and operators would work on the ciphertext (random bytes), not the value. Select the column itself (m.email: entities are opened in afterLoad, raw rows with cipher.open) and compute in the app.";

/**
 * A `select` / `addSelect` expression that applies SQL to an encrypted column
 * (`UPPER(m.email)`, `m.email || 'x'`, `LENGTH(m.phone)`) returns noise computed from
 * ciphertext: refused when the SELECT is built (`createSelectExpression`, so a
 * `select(...)` given before `from(...)` is seen too). The column itself, `alias.*`,
 * `COUNT(column)` and `column IS [NOT] NULL` pass; names inside string literals and
 * parameters do not count (see typeorm-sql-refs). Subquery selections are checked as their
 * own builders build them, and again here as SQL text.
 */
export function guardSelects(): void {
  if (installed) return;
  installed = true;
  const proto = SelectQueryBuilder.prototype as unknown as Record<
    string,
    (...a: unknown[]) => unknown
  >;
  const original = proto.createSelectExpression!;
  proto.createSelectExpression = function (this: Builder & Selects, ...args: unknown[]) {
    const aliases = aliasesOf(this);
    if (aliases.length > 0) {
      for (const { selection } of this.expressionMap.selects) {
        if (typeof selection !== "string" || PLAIN.test(selection) || COUNT.test(selection))
          continue;
        const hit = referencedColumn(selection, aliases);
        if (hit) throw refused(hit[1], hit[0], "A QueryBuilder select expression", COMPUTE);
      }
    }
    return original.apply(this, args);
  };
}
